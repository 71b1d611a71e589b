/* Print and reject statements kept in a compiled model because their
 * values, or whether they run, depend on the parameters. Lowering records
 * them (lower_effect.c) with a graph. Per statement, its root contains a
 * guard value that is non-zero where the statement runs, then the values
 * of the arguments. effect.c evaluates that graph at one point and formats
 * the messages. Private to lang/. */
#ifndef AF_EFFECT_H
#define AF_EFFECT_H

#include <stddef.h>

#include "af_graph.h"

typedef enum { EFFECT_PRINT, EFFECT_REJECT } effect_kind;

/* One argument of a print or reject: a string or a value. */
typedef struct {
    const char *text;  /* a string argument; NULL for a value */
    const double *values; /* a value known while compiling: its elements */
    size_t offset;     /* a value known at run time: its first element in the root */
    size_t len;        /* a value: its elements */
    int bracketed;     /* a value: a container, printed as [a,b] */
} effect_part;

typedef struct {
    effect_kind kind;
    int generated;        /* in generated quantities */
    const char *location; /* "file:line:col" of the statement */
    size_t guard;         /* offset in the root of the guard value */
    effect_part *parts;
    size_t nparts;
} effect;

/* The effects of one model; one malloc'ed block holds every array and
 * string. */
typedef struct lang_effects {
    af_graph *graph;
    effect *list;
    size_t count;
    size_t root_len;
    int has_generated_reject;
} lang_effects;

/* A growable text; TEXT is NULL until the first append. */
typedef struct {
    char *text;
    size_t len, cap;
} effect_text;

/* Appends the arguments PARTS[0..N) of a print or reject (strings as they
 * are, numbers in %.10g, containers as [a,b,c] in their flat order) to
 * OUT. A value's elements are at ROOT + offset, or at its VALUES when ROOT
 * is NULL. Returns 0, or -1 when out of memory. */
int effect_format(const effect_part *parts, size_t n, const double *root, effect_text *out);
/* Appends N bytes of S to OUT. Returns 0, or -1 when out of memory. */
int effect_append(effect_text *out, const char *s, size_t n);

void lang_effects_free(lang_effects *effects);

/* Runs every effect of EFFECTS at the unconstrained point Z: each print
 * that runs there adds its line to *TEXT, each reject that is reached adds
 * "LOCATION: reject: MESSAGE". Sets *TEXT to a malloc'ed text, or NULL
 * when no statement ran. Returns 0, or -1 with a message in MESSAGE when
 * out of memory or when an extern function fails. */
int lang_effects_print(const lang_effects *effects, const double *z, char **text,
                       char *message, size_t message_len);

/* Returns 0 when no reject in generated quantities is reached at Z, else
 * non-zero with "LOCATION: reject in generated quantities: MESSAGE" in
 * MESSAGE, or another message when the effects cannot be evaluated. */
int lang_effects_check_generated(const lang_effects *effects, const double *z, char *message,
                                 size_t message_len);

#endif
