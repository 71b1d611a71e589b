/* Formatting of print and reject messages, and the run of a model's
 * parameter-dependent print and reject statements at one point. The
 * caller decides when that happens: afrun runs them for --log-prob
 * points, never while training or sampling. */
#include "effect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int effect_append(effect_text *out, const char *s, size_t n)
{
    if (out->len + n + 1 > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + n + 1)
            cap *= 2;
        char *p = realloc(out->text, cap);
        if (p == NULL)
            return -1;
        out->text = p;
        out->cap = cap;
    }
    memcpy(out->text + out->len, s, n);
    out->len += n;
    out->text[out->len] = '\0';
    return 0;
}

static int append_number(effect_text *out, double v)
{
    char number[32];
    int n = snprintf(number, sizeof number, "%.10g", v);
    return effect_append(out, number, (size_t)n);
}

int effect_format(const effect_part *parts, size_t n, const double *root, effect_text *out)
{
    int status = effect_append(out, "", 0);
    for (size_t k = 0; k < n && status == 0; k++) {
        const effect_part *p = &parts[k];
        if (p->text != NULL) {
            status = effect_append(out, p->text, strlen(p->text));
            continue;
        }
        const double *values = root != NULL ? root + p->offset : p->values;
        if (p->bracketed)
            status |= effect_append(out, "[", 1);
        for (size_t e = 0; e < p->len && status == 0; e++) {
            if (e > 0)
                status = effect_append(out, ",", 1);
            status |= append_number(out, values[e]);
        }
        if (p->bracketed)
            status |= effect_append(out, "]", 1);
    }
    return status;
}

void lang_effects_free(lang_effects *effects)
{
    if (effects == NULL)
        return;
    af_graph_free(effects->graph);
    free(effects);
}

/* Evaluates the effects graph at Z (at annealing level 1) into a malloc'ed
 * array. Returns NULL with a message when out of memory or when an extern
 * function fails. */
static double *evaluate(const lang_effects *e, const double *z, char *message,
                        size_t message_len)
{
    double *root = malloc((e->root_len ? e->root_len : 1) * sizeof *root);
    if (root == NULL)
        snprintf(message, message_len, "out of memory");
    if (root == NULL ||
        af_graph_eval_point(e->graph, z, 1.0, root, message, message_len) != 0) {
        free(root);
        return NULL;
    }
    return root;
}

/* Appends the line of effect F, which runs at the point whose effects
 * graph values are ROOT, to OUT. */
static int append_effect(const effect *f, const double *root, effect_text *out)
{
    int status = 0;
    if (f->kind == EFFECT_REJECT) {
        status |= effect_append(out, f->location, strlen(f->location));
        status |= effect_append(out, ": reject: ", strlen(": reject: "));
    }
    status |= effect_format(f->parts, f->nparts, root, out);
    status |= effect_append(out, "\n", 1);
    return status;
}

int lang_effects_print(const lang_effects *e, const double *z, char **text, char *message,
                       size_t message_len)
{
    *text = NULL;
    if (e == NULL)
        return 0;
    double *root = evaluate(e, z, message, message_len);
    if (root == NULL)
        return -1;
    effect_text out = {NULL, 0, 0};
    int status = 0;
    for (size_t i = 0; i < e->count && status == 0; i++)
        if (root[e->list[i].guard] != 0.0)
            status = append_effect(&e->list[i], root, &out);
    free(root);
    if (status != 0) {
        free(out.text);
        snprintf(message, message_len, "out of memory");
        return -1;
    }
    *text = out.text;
    return 0;
}

int lang_effects_check_generated(const lang_effects *e, const double *z, char *message,
                                 size_t message_len)
{
    if (e == NULL || !e->has_generated_reject)
        return 0;
    double *root = evaluate(e, z, message, message_len);
    if (root == NULL)
        return -1;
    int status = 0;
    for (size_t i = 0; i < e->count && status == 0; i++) {
        const effect *f = &e->list[i];
        if (f->kind != EFFECT_REJECT || !f->generated || root[f->guard] == 0.0)
            continue;
        effect_text out = {NULL, 0, 0};
        if (effect_format(f->parts, f->nparts, root, &out) != 0)
            snprintf(message, message_len, "out of memory");
        else
            snprintf(message, message_len, "%s: reject in generated quantities: %s",
                     f->location, out.text);
        free(out.text);
        status = -1;
    }
    free(root);
    return status;
}
