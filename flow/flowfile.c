/* The flow file format: encoding and decoding only, because the front end
 * does the file I/O and writes atomically. Numbers are stored in the byte
 * order of the machine that wrote them, and a marker lets a reader on
 * another order reject the file instead of misreading it.
 *
 *   "AFMFLOW\0"                    8-byte magic
 *   u32 version, u32 0x01020304    format version, byte-order marker
 *   u64 model, data, settings      af_flow_identity
 *   u64 d, h1, h2, substeps        network shape and RK4 steps
 *   f64 sharpness
 *   u64 blocks, u64 complete        block count, 1 when training finished
 *   u64 n, char settings[n]         training settings text, no NUL (version 3 on)
 *   u64 standardised               1 when an affine map follows (version 2 on)
 *   [f64 shift[d], f64 root[d * d]]  the map x = shift + root z
 *   blocks x (f64 beta, f64 weights[n_params])
 *   u64 checksum                   FNV-1a of every byte before it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_flow.h"
#include "flow_internal.h"

static const char flow_magic[8] = {'A', 'F', 'M', 'F', 'L', 'O', 'W', '\0'};

/* Version 1 had no standardisation field and versions 1 and 2 had no
 * settings text; both are still read. */
enum { FLOW_VERSION = 3, HEADER_SIZE = 8 + 4 + 4 + 3 * 8 + 4 * 8 + 8 + 8 + 8 };

#define BYTE_ORDER_MARK 0x01020304u

/* Largest hidden width or dimension a file may declare, so a corrupt header
 * cannot request a huge allocation. */
#define FLOW_MAX_SIZE 1000000u

uint64_t af_flow_hash(uint64_t hash, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

int af_flow_has_magic(const unsigned char *bytes, size_t size)
{
    return size >= sizeof flow_magic && memcmp(bytes, flow_magic, sizeof flow_magic) == 0;
}

/* Sequential writer and reader over a byte buffer. */
typedef struct {
    unsigned char *data;
    size_t pos, size;
} cursor;

static void put(cursor *c, const void *src, size_t n)
{
    memcpy(c->data + c->pos, src, n);
    c->pos += n;
}

static void put_u64(cursor *c, uint64_t v)
{
    put(c, &v, sizeof v);
}

static int get(cursor *c, void *dst, size_t n)
{
    if (c->size - c->pos < n)
        return -1;
    memcpy(dst, c->data + c->pos, n);
    c->pos += n;
    return 0;
}

static int get_u64(cursor *c, uint64_t *v)
{
    return get(c, v, sizeof *v);
}

int af_flow_serialize(const af_flow *flow, const af_flow_identity *id, unsigned char **bytes,
                      size_t *size)
{
    const net_shape *sh = flow_shape(flow);
    const size_t count = af_flow_block_count(flow);
    const flow_affine *map = flow_get_affine(flow);
    const size_t map_size = map ? (sh->d + sh->d * sh->d) * 8 : 0;
    const char *settings_end = memchr(id->settings, '\0', AF_FLOW_SETTINGS_MAX);
    const size_t settings_size =
        settings_end ? (size_t)(settings_end - id->settings) : AF_FLOW_SETTINGS_MAX;
    const size_t total = HEADER_SIZE + 8 + settings_size + 8 + map_size +
                         count * (1 + sh->n_params) * 8 + 8;
    cursor c = {malloc(total), 0, total};
    uint32_t version = FLOW_VERSION, mark = BYTE_ORDER_MARK;

    *bytes = NULL;
    if (!c.data)
        return -1;

    put(&c, flow_magic, sizeof flow_magic);
    put(&c, &version, 4);
    put(&c, &mark, 4);
    put_u64(&c, id->model_hash);
    put_u64(&c, id->data_hash);
    put_u64(&c, id->settings_hash);
    put_u64(&c, sh->d);
    put_u64(&c, sh->h1);
    put_u64(&c, sh->h2);
    put_u64(&c, flow_substeps(flow));
    put(&c, &sh->sharpness, 8);
    put_u64(&c, count);
    put_u64(&c, (uint64_t)af_flow_complete(flow));
    put_u64(&c, settings_size);
    put(&c, id->settings, settings_size);
    put_u64(&c, map != NULL);
    if (map) {
        put(&c, map->shift, sh->d * 8);
        put(&c, map->root, sh->d * sh->d * 8);
    }
    for (size_t k = 0; k < count; k++) {
        double beta = af_flow_block_beta(flow, k);
        put(&c, &beta, 8);
        put(&c, flow_block_weights(flow, k), sh->n_params * 8);
    }
    put_u64(&c, af_flow_hash(AF_FLOW_HASH_INIT, c.data, c.pos));

    *bytes = c.data;
    *size = c.pos;
    return 0;
}

/* Reads and checks the fixed header; fills the shape fields and *COUNT. */
static int read_header(cursor *c, af_flow_identity *id, uint64_t shape[4], double *sharpness,
                       uint64_t *count, uint64_t *complete, uint32_t *version, char *msg,
                       size_t len)
{
    char magic[8];
    uint32_t mark;

    if (get(c, magic, 8) || memcmp(magic, flow_magic, 8) != 0) {
        snprintf(msg, len, "not an afm flow file (wrong magic number)");
        return -1;
    }
    if (get(c, version, 4) || get(c, &mark, 4)) {
        snprintf(msg, len, "truncated flow file (%zu bytes)", c->size);
        return -1;
    }
    if (mark != BYTE_ORDER_MARK) {
        snprintf(msg, len, "flow file written on a machine of another byte order");
        return -1;
    }
    if (*version < 1 || *version > FLOW_VERSION) {
        snprintf(msg, len, "flow file version %u is not supported (this afrun reads versions 1 "
                 "to %d); run again with --retrain", (unsigned)*version, FLOW_VERSION);
        return -1;
    }

    int short_read = get_u64(c, &id->model_hash) || get_u64(c, &id->data_hash) ||
                     get_u64(c, &id->settings_hash);
    for (int i = 0; i < 4; i++)
        short_read = short_read || get_u64(c, &shape[i]);
    if (short_read || get(c, sharpness, 8) || get_u64(c, count) || get_u64(c, complete)) {
        snprintf(msg, len, "truncated flow file (%zu bytes)", c->size);
        return -1;
    }
    for (int i = 0; i < 4; i++)
        if (shape[i] == 0 || shape[i] > FLOW_MAX_SIZE) {
            snprintf(msg, len, "corrupt flow file: invalid network shape");
            return -1;
        }
    if (!(*sharpness > 0)) {
        snprintf(msg, len, "corrupt flow file: invalid softplus sharpness");
        return -1;
    }
    return 0;
}

/* Reads the settings text of a version 3 file into ID->settings. Returns 0,
 * or -1 with a message. */
static int read_settings(cursor *c, af_flow_identity *id, char *msg, size_t len)
{
    uint64_t n;

    if (get_u64(c, &n)) {
        snprintf(msg, len, "truncated flow file (%zu bytes)", c->size);
        return -1;
    }
    if (n > AF_FLOW_SETTINGS_MAX) {
        snprintf(msg, len, "corrupt flow file: settings text of %llu bytes (at most %d)",
                 (unsigned long long)n, AF_FLOW_SETTINGS_MAX);
        return -1;
    }
    if (get(c, id->settings, n)) {
        snprintf(msg, len, "truncated flow file (%zu bytes)", c->size);
        return -1;
    }
    id->settings[n] = '\0';
    if (strlen(id->settings) != n) {
        snprintf(msg, len, "corrupt flow file: NUL byte in the settings text");
        return -1;
    }
    return 0;
}

/* Reads the standardisation field of a version 2 file into *MAP (NULL
 * when there is none), unchecked. Returns 0, or -1 with a message. */
static int read_affine(cursor *c, size_t d, flow_affine **map, char *msg, size_t len)
{
    uint64_t present;

    *map = NULL;
    if (get_u64(c, &present) || present > 1) {
        snprintf(msg, len, "corrupt flow file: invalid standardisation field");
        return -1;
    }
    if (!present)
        return 0;
    if (d > (c->size - c->pos) / 8 / (d + 1)) {
        snprintf(msg, len, "truncated flow file (%zu bytes)", c->size);
        return -1;
    }
    *map = flow_affine_new(d);
    if (!*map) {
        snprintf(msg, len, "out of memory reading a flow of dimension %zu", d);
        return -1;
    }
    get(c, (*map)->shift, d * 8);
    get(c, (*map)->root, d * d * 8);
    return 0;
}

int af_flow_deserialize(const unsigned char *bytes, size_t size, af_flow_identity *id,
                        af_flow **out, char *msg, size_t len)
{
    cursor c = {(unsigned char *)bytes, 0, size};
    uint64_t shape[4], count, complete, stored;
    uint32_t version;
    double sharpness;
    net_shape sh;
    flow_affine *map = NULL;

    *out = NULL;
    id->settings[0] = '\0';
    if (read_header(&c, id, shape, &sharpness, &count, &complete, &version, msg, len))
        return -1;
    if (size - c.pos < 8) {
        snprintf(msg, len, "truncated flow file (%zu bytes)", size);
        return -1;
    }
    c.size = size - 8;  /* the blocks end at the checksum */
    if (version >= 3 && read_settings(&c, id, msg, len))
        return -1;
    if (version >= 2 && read_affine(&c, shape[0], &map, msg, len))
        return -1;

    net_shape_init(&sh, shape[0], shape[1], shape[2], sharpness);
    size_t block_bytes = (1 + sh.n_params) * 8;
    if (count > (c.size - c.pos) / block_bytes || c.size - c.pos != count * block_bytes) {
        snprintf(msg, len, "truncated or corrupt flow file: %zu bytes do not hold %llu blocks",
                 size, (unsigned long long)count);
        flow_affine_free(map);
        return -1;
    }
    memcpy(&stored, bytes + size - 8, 8);
    if (stored != af_flow_hash(AF_FLOW_HASH_INIT, bytes, size - 8)) {
        snprintf(msg, len, "corrupt flow file: checksum mismatch");
        flow_affine_free(map);
        return -1;
    }
    if (map && flow_affine_finish(map)) {
        snprintf(msg, len, "corrupt flow file: invalid standardisation map");
        flow_affine_free(map);
        return -1;
    }

    af_flow *flow = flow_new(&sh, shape[3], count ? count : 1);
    if (!flow) {
        snprintf(msg, len, "out of memory reading a flow of %llu blocks",
                 (unsigned long long)count);
        flow_affine_free(map);
        return -1;
    }
    for (uint64_t k = 0; k < count; k++) {
        double beta = 0.0;
        get(&c, &beta, 8);  /* within the size checked above */
        flow_append(flow, beta, (const double *)(bytes + c.pos));  /* within capacity */
        c.pos += sh.n_params * 8;
    }
    flow_mark_complete(flow, complete != 0);
    flow_set_affine(flow, map);
    *out = flow;
    return 0;
}
