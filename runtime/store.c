/* Flow files on disk: identity hashes, loading with every check a reused
 * flow needs, and atomic saving through af_output. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_output.h"
#include "af_store.h"

/* Largest flow file read into memory: far above any real flow (a 50-D flow
 * of 20 blocks is about 700 KB), so a wrong path cannot exhaust memory. */
#define STORE_MAX_BYTES (1024L * 1024L * 1024L)

/* Reads the whole file PATH. Returns 0, 1 when it does not exist, or -1
 * with a message. */
static int read_file(const char *path, unsigned char **bytes, size_t *size, char *msg,
                     size_t len)
{
    FILE *f = fopen(path, "rb");
    *bytes = NULL;
    if (!f) {
        if (errno == ENOENT)
            return 1;
        snprintf(msg, len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }

    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || n > STORE_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(msg, len, "cannot read %s: not a regular file of at most %ld bytes", path,
                 STORE_MAX_BYTES);
        fclose(f);
        return -1;
    }
    *bytes = malloc(n ? (size_t)n : 1);
    *size = (size_t)n;
    int failed = !*bytes || fread(*bytes, 1, *size, f) != *size;
    fclose(f);
    if (failed) {
        snprintf(msg, len, "cannot read %s", path);
        free(*bytes);
        *bytes = NULL;
        return -1;
    }
    return 0;
}

/* Adds the bytes of the file PATH to *HASH, preceded by their count when
 * WITH_SIZE is set. */
static int hash_file(const char *path, int with_size, uint64_t *hash, char *msg, size_t len)
{
    unsigned char *bytes;
    size_t size;
    int rc = read_file(path, &bytes, &size, msg, len);

    if (rc > 0)
        snprintf(msg, len, "cannot open %s: %s", path, strerror(ENOENT));
    if (rc)
        return -1;
    if (with_size) {
        uint64_t count = size;
        *hash = af_flow_hash(*hash, &count, sizeof count);
    }
    *hash = af_flow_hash(*hash, bytes, size);
    free(bytes);
    return 0;
}

/* Adds the bytes of each shared library of the model's extern functions,
 * once per library and with their count, to *HASH, so that a rebuilt
 * library invalidates a flow trained on the old one. A model without
 * extern functions leaves *HASH unchanged. */
static int hash_extern_libraries(const af_model *model, uint64_t *hash, char *msg, size_t len)
{
    size_t count = af_model_extern_count(model);
    for (size_t i = 0; i < count; i++) {
        const char *path = af_model_extern_library(model, i);
        if (path == NULL) {
            snprintf(msg, len, "the dynamic linker reports no file for the library of extern "
                     "function %zu (in declaration order), so the flow file cannot record it",
                     i + 1);
            return -1;
        }
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++) {
            const char *earlier = af_model_extern_library(model, k);
            seen = earlier != NULL && strcmp(earlier, path) == 0;
        }
        if (!seen && hash_file(path, 1, hash, msg, len))
            return -1;
    }
    return 0;
}

int af_store_identity(const af_model *model, const char *data_path,
                      const af_flow_options *options, af_flow_identity *id, char *msg,
                      size_t len)
{
    memset(id, 0, sizeof *id);
    /* The model file alone hashes as it did before #include existed, so
     * older flow files stay valid. Each included file adds its size, so
     * that text moved from one included file to the next changes the hash. */
    id->model_hash = AF_FLOW_HASH_INIT;
    for (size_t i = 0; i < af_model_source_count(model); i++)
        if (hash_file(af_model_source_path(model, i), i > 0, &id->model_hash, msg, len))
            return -1;
    if (hash_extern_libraries(model, &id->model_hash, msg, len))
        return -1;
    if (data_path) {
        id->data_hash = AF_FLOW_HASH_INIT;
        if (hash_file(data_path, 0, &id->data_hash, msg, len))
            return -1;
    }
    id->settings_hash = af_flow_options_hash(options);
    if (af_flow_options_text(options, id->settings, sizeof id->settings)) {
        snprintf(msg, len, "the training settings need more than %d bytes in the flow file",
                 AF_FLOW_SETTINGS_MAX);
        return -1;
    }
    return 0;
}

/* Measures the line at LINE of a settings text in *LINE_LEN, without its
 * newline, and returns the start of the next line (at the NUL after the last). */
static const char *next_line(const char *line, size_t *line_len)
{
    const char *end = strchr(line, '\n');
    *line_len = end ? (size_t)(end - line) : strlen(line);
    return end ? end + 1 : line + *line_len;
}

/* Finds the line "KEY=value" of the settings TEXT, where KEY has KEY_LEN
 * bytes. Returns the value and sets *VALUE_LEN, or returns NULL. */
static const char *find_setting(const char *text, const char *key, size_t key_len,
                                size_t *value_len)
{
    size_t line_len;
    for (const char *line = text, *next; *line; line = next) {
        next = next_line(line, &line_len);
        if (line_len > key_len && memcmp(line, key, key_len) == 0 && line[key_len] == '=') {
            *value_len = line_len - key_len - 1;
            return line + key_len + 1;
        }
    }
    return NULL;
}

/* Appends "KEY=VALUE" to TEXT of SIZE bytes, after ", " unless TEXT is
 * empty; VALUE is "(none)" when NULL. Truncates silently at SIZE. */
static void append_setting(char *text, size_t size, const char *key, size_t key_len,
                           const char *value, size_t value_len)
{
    size_t used = strlen(text);
    if (value == NULL) {
        value = "(none)";
        value_len = strlen(value);
    }
    snprintf(text + used, size - used, "%s%.*s=%.*s", used ? ", " : "", (int)key_len, key,
             (int)value_len, value);
}

/* Lists each setting whose value differs between the settings texts WAS
 * and NOW as "key=value, ..." in WAS_LIST and NOW_LIST (SIZE bytes each).
 * A key present in only one text differs too. Returns the number listed. */
static size_t list_changed_settings(const char *was, const char *now, char *was_list,
                                    char *now_list, size_t size)
{
    size_t changed = 0, line_len;

    was_list[0] = now_list[0] = '\0';
    /* The first pass walks the keys of WAS, the second the keys of NOW, and
     * a key found in both is compared in the first pass only. */
    for (int pass = 0; pass < 2; pass++) {
        const char *text = pass == 0 ? was : now;
        for (const char *line = text, *next; *line; line = next) {
            next = next_line(line, &line_len);
            const char *eq = memchr(line, '=', line_len);
            if (!eq)
                continue;
            size_t key_len = (size_t)(eq - line), was_len = 0, now_len = 0;
            const char *was_value = find_setting(was, line, key_len, &was_len);
            const char *now_value = find_setting(now, line, key_len, &now_len);
            int in_both = was_value && now_value;
            if (in_both && (pass == 1 || (was_len == now_len &&
                                          memcmp(was_value, now_value, was_len) == 0)))
                continue;
            append_setting(was_list, size, line, key_len, was_value, was_len);
            append_setting(now_list, size, line, key_len, now_value, now_len);
            changed++;
        }
    }
    return changed;
}

/* Names the first part of the identity that differs, or NULL. */
static const char *identity_mismatch(const af_flow_identity *a, const af_flow_identity *b)
{
    if (a->model_hash != b->model_hash)
        return "another model (its source files or extern libraries differ)";
    if (a->data_hash != b->data_hash)
        return "other data";
    if (a->settings_hash != b->settings_hash)
        return "other training settings (or seed)";
    return NULL;
}

int af_store_load(const char *path, const af_flow_identity *expected, af_flow **out,
                  char *msg, size_t len)
{
    unsigned char *bytes;
    size_t size;
    char why[512];
    af_flow_identity found;

    *out = NULL;
    int rc = read_file(path, &bytes, &size, msg, len);
    if (rc > 0)
        return 0;
    if (rc)
        return -1;

    int magic = af_flow_has_magic(bytes, size);
    rc = af_flow_deserialize(bytes, size, &found, out, why, sizeof why);
    free(bytes);
    if (rc && !magic) {
        snprintf(msg, len, "%s exists and is not an afm flow file; choose another path with "
                 "--flow, or delete it", path);
        return -1;
    }
    if (rc) {
        snprintf(msg, len, "%s: %s; pass --retrain to replace it", path, why);
        return -1;
    }

    const char *differs = identity_mismatch(&found, expected);
    char was_list[256], now_list[256];
    /* A file of format version 1 or 2 has no settings text to compare, so
     * its message names no setting. */
    if (differs && found.model_hash == expected->model_hash &&
        found.data_hash == expected->data_hash && found.settings[0] != '\0' &&
        list_changed_settings(found.settings, expected->settings, was_list, now_list,
                              sizeof was_list) > 0) {
        af_flow_free(*out);
        *out = NULL;
        snprintf(msg, len,
                 "the flow in %s was trained with %s; this run asks for %s; pass --retrain "
                 "to replace it, or --flow FILE to keep it and train into another file",
                 path, was_list, now_list);
        return -1;
    }
    if (differs) {
        af_flow_free(*out);
        *out = NULL;
        snprintf(msg, len,
                 "%s was trained for %s; pass --retrain to replace it, or --flow FILE to "
                 "keep it and train into another file",
                 path, differs);
        return -1;
    }
    return 0;
}

int af_store_check_replaceable(const char *path, char *msg, size_t len)
{
    unsigned char *bytes;
    size_t size;
    int rc = read_file(path, &bytes, &size, msg, len);

    if (rc > 0)
        return 0;
    if (rc)
        return -1;
    int magic = af_flow_has_magic(bytes, size) || size == 0;
    free(bytes);
    if (!magic) {
        snprintf(msg, len, "%s exists and is not an afm flow file, so --retrain will not "
                 "replace it; choose another path with --flow", path);
        return -1;
    }
    return 0;
}

int af_store_save(const char *path, const af_flow *flow, const af_flow_identity *id,
                  char *msg, size_t len)
{
    unsigned char *bytes;
    size_t size;

    if (af_flow_serialize(flow, id, &bytes, &size)) {
        snprintf(msg, len, "out of memory while saving the flow to %s", path);
        return -1;
    }
    int rc = af_output_write_bytes(path, bytes, size, msg, len);
    free(bytes);
    return rc;
}
