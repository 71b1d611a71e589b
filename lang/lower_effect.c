/* Lowering of print and reject. A statement whose arguments are known
 * while compiling and that runs whenever the program runs is carried out
 * now: print appends to the compile-time output, reject stops compiling.
 * Any other is kept as an effect (effect.h) with a guard: a node that is
 * non-zero at the points where the statement runs. The guard starts as
 * "always", is narrowed by each if on parameters and becomes 0 after a
 * reject, since nothing after a reached reject runs. */
#include "lower_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "effect.h"

/* A print or reject kept for run time, before the effects graph exists:
 * the OFFSET of a value part is its node. */
struct lowered_effect {
    effect_kind kind;
    int generated;
    af_span span;
    size_t guard; /* node, or AF_GRAPH_NONE for always */
    effect_part *parts;
    size_t nparts;
    size_t guard_offset;  /* set by gather_root */
    const char *location; /* set by copy_effects */
};

/* ---- the guard ---- */

/* Tells whether the statements LIST, or any nested in them, include a
 * print or reject. */
static int has_effects(const ast_stmt *list)
{
    for (const ast_stmt *s = list; s != NULL; s = s->next)
        if (s->kind == STMT_PRINT || s->kind == STMT_REJECT || has_effects(s->body) ||
            has_effects(s->orelse))
            return 1;
    return 0;
}

int lower_program_has_effects(const ast_program *program)
{
    for (const ast_function *f = program->functions; f != NULL; f = f->next)
        if (has_effects(f->body))
            return 1;
    return has_effects(program->tparams) || has_effects(program->model) ||
           has_effects(program->gq);
}

static size_t guard_node(lowerer *l, size_t guard, af_span span)
{
    return guard == AF_GRAPH_NONE ? lower_scalar(l, 1.0, span) : guard;
}

/* Tells whether the statement being lowered never runs: it follows a
 * reject on every path that reaches it. */
static int guard_is_dead(const lowerer *l)
{
    if (l->guard == AF_GRAPH_NONE)
        return 0;
    const double *known = lower_known(l, l->guard);
    return known != NULL && known[0] == 0.0;
}

size_t lower_guard_branch(lowerer *l, size_t outer, size_t cond, int then_branch, af_span span)
{
    if (!l->tracks_guard)
        return outer;
    size_t runs = guard_node(l, outer, span), never = lower_scalar(l, 0.0, span);
    size_t args[3] = {cond, then_branch ? runs : never, then_branch ? never : runs};
    return lower_emit(l, AF_OP_SELECT, args, 3, 1, 0, span);
}

size_t lower_guard_merge(lowerer *l, size_t outer, size_t cond, size_t then_end,
                         size_t else_end, af_span span)
{
    if (!l->tracks_guard)
        return outer;
    /* Equal nodes are shared, so an untouched branch guard is found again. */
    if (then_end == lower_guard_branch(l, outer, cond, 1, span) &&
        else_end == lower_guard_branch(l, outer, cond, 0, span))
        return outer;
    size_t args[3] = {cond, guard_node(l, then_end, span), guard_node(l, else_end, span)};
    return lower_emit(l, AF_OP_SELECT, args, 3, 1, 0, span);
}

/* ---- print and reject ---- */

/* Lowers the arguments of print or reject S into an arena array of parts.
 * Sets *KNOWN to 1 when every value is known while compiling. */
static effect_part *lower_parts(lowerer *l, const ast_stmt *s, int *known)
{
    effect_part *parts = arena_alloc(&l->ctx->arena, (s->nargs ? s->nargs : 1) * sizeof *parts);
    *known = 1;
    for (size_t k = 0; k < s->nargs; k++) {
        const ast_expr *a = s->args[k];
        if (a->kind == EXPR_STRING) {
            parts[k].text = a->name;
            continue;
        }
        value v = lower_expr(l, a);
        parts[k].offset = v.node;
        parts[k].len = lower_node_len(l, v.node);
        parts[k].bracketed = v.sh.rank > 0;
        parts[k].values = lower_known(l, v.node);
        *known &= parts[k].values != NULL;
    }
    return parts;
}

static void format_known(lowerer *l, const effect_part *parts, size_t n, effect_text *out)
{
    if (effect_format(parts, n, NULL, out) != 0)
        lang_out_of_memory(&l->ctx->on_failure);
}

static void record_effect(lowerer *l, effect_kind kind, const ast_stmt *s, effect_part *parts)
{
    if (l->effect_count == AF_MAX_EFFECTS)
        lower_fail(l, s->span, "print values that depend on parameters outside long loops",
                   "too many print and reject statements that depend on parameters (limit is "
                   "%d after unrolling loops)", AF_MAX_EFFECTS);
    if (l->effect_count == l->effect_cap) {
        size_t cap = l->effect_cap ? 2 * l->effect_cap : 16;
        struct lowered_effect *p = arena_alloc(&l->ctx->arena, cap * sizeof *p);
        if (l->effect_count)
            memcpy(p, l->effects, l->effect_count * sizeof *p);
        l->effects = p;
        l->effect_cap = cap;
    }
    l->effects[l->effect_count++] = (struct lowered_effect){
        kind, l->block == ORIGIN_GQ, s->span, l->guard, parts, s->nargs, 0, NULL};
}

void lower_print(lowerer *l, const ast_stmt *s)
{
    if (guard_is_dead(l))
        return;
    int known;
    effect_part *parts = lower_parts(l, s, &known);
    if (!known || l->guard != AF_GRAPH_NONE) {
        record_effect(l, EFFECT_PRINT, s, parts);
        return;
    }
    format_known(l, parts, s->nargs, &l->printed);
    format_known(l, &(effect_part){"\n", NULL, 0, 0, 0}, 1, &l->printed);
}

/* Reports a reject that runs whenever its block runs: in transformed data
 * once, elsewhere at every point, so the model could never be used. */
static void fail_reached_reject(lowerer *l, const ast_stmt *s, effect_part *parts, int known)
{
    for (size_t k = 0; !known && k < s->nargs; k++)
        if (parts[k].text == NULL && parts[k].values == NULL)
            parts[k].text = "(a value that depends on parameters)";
    effect_text message = {NULL, 0, 0};
    if (effect_format(parts, s->nargs, NULL, &message) != 0)
        lang_out_of_memory(&l->ctx->on_failure);
    char text[1024];
    snprintf(text, sizeof text, "%s", message.text);
    free(message.text);
    if (l->block == ORIGIN_TDATA)
        lower_fail(l, s->span, NULL, "reject: %s", text);
    lower_fail(l, s->span, "a reject belongs inside an if whose condition depends on parameters",
               "reject is reached at every %s: %s", l->block == ORIGIN_GQ ? "draw" : "point",
               text);
}

void lower_reject(lowerer *l, const ast_stmt *s)
{
    if (guard_is_dead(l))
        return;
    int known;
    effect_part *parts = lower_parts(l, s, &known);
    if (l->guard == AF_GRAPH_NONE)
        fail_reached_reject(l, s, parts, known);
    record_effect(l, EFFECT_REJECT, s, parts);
    /* In the model and transformed parameters a reached reject makes the
     * log-density -Inf; an if on parameters keeps that only where its
     * condition holds. Generated quantities leave the target alone: their
     * rejects stop the run when a draw reaches them. */
    if (l->block != ORIGIN_GQ)
        l->target = lower_scalar(l, -INFINITY, s->span);
    l->guard = lower_scalar(l, 0.0, s->span);
}

/* ---- the effects graph ---- */

/* Lists the guard and the value nodes of every effect in an arena array
 * (the root's arguments) and replaces the node in each value part and in
 * GUARD_OFFSET by the offset in the root. Sets *COUNT to the arguments and
 * returns the root's length. */
static size_t *gather_root(lowerer *l, size_t *count, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < l->effect_count; i++) {
        n++;
        for (size_t k = 0; k < l->effects[i].nparts; k++)
            n += l->effects[i].parts[k].text == NULL;
    }
    size_t *all = arena_alloc(&l->ctx->arena, n * sizeof *all);
    *count = 0;
    *len = 0;
    for (size_t i = 0; i < l->effect_count; i++) {
        struct lowered_effect *f = &l->effects[i];
        all[(*count)++] = guard_node(l, f->guard, f->span);
        f->guard_offset = (*len)++;
        for (size_t k = 0; k < f->nparts; k++) {
            if (f->parts[k].text != NULL)
                continue;
            all[(*count)++] = f->parts[k].offset;
            f->parts[k].offset = *len;
            *len += f->parts[k].len;
        }
    }
    return all;
}

static char *copy_text(char **next, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = memcpy(*next, s, n);
    *next += n;
    return copy;
}

/* Copies the effects, with their locations and strings, into one
 * malloc'ed block behind a lang_effects. */
static lang_effects *copy_effects(lowerer *l)
{
    size_t part_count = 0, bytes = 0;
    for (size_t i = 0; i < l->effect_count; i++) {
        struct lowered_effect *f = &l->effects[i];
        char location[4200];
        diag_location(&l->ctx->diag, f->span, location, sizeof location);
        f->location = arena_strndup(&l->ctx->arena, location, strlen(location));
        bytes += strlen(f->location) + 1;
        part_count += f->nparts;
        for (size_t k = 0; k < f->nparts; k++)
            if (f->parts[k].text != NULL)
                bytes += strlen(f->parts[k].text) + 1;
    }
    lang_effects *e = calloc(1, sizeof *e + l->effect_count * sizeof(effect) +
                                    part_count * sizeof(effect_part) + bytes);
    if (e == NULL)
        lang_out_of_memory(&l->ctx->on_failure);
    e->list = (effect *)(e + 1);
    e->count = l->effect_count;
    effect_part *parts = (effect_part *)(e->list + e->count);
    char *strings = (char *)(parts + part_count);
    for (size_t i = 0; i < e->count; i++) {
        const struct lowered_effect *f = &l->effects[i];
        e->list[i] = (effect){f->kind, f->generated, copy_text(&strings, f->location),
                              f->guard_offset, parts, f->nparts};
        e->has_generated_reject |= f->kind == EFFECT_REJECT && f->generated;
        for (size_t k = 0; k < f->nparts; k++) {
            parts[k] = f->parts[k];
            parts[k].values = NULL;
            if (parts[k].text != NULL)
                parts[k].text = copy_text(&strings, parts[k].text);
        }
        parts += f->nparts;
    }
    return e;
}

lang_effects *lower_effects_graph(lowerer *l)
{
    if (l->effect_count == 0)
        return NULL;
    size_t count, len;
    size_t *all = gather_root(l, &count, &len);
    size_t root = lower_emit(l, AF_OP_CONCAT, all, count, len, 0, (af_span){0, 0});
    lang_effects *e = copy_effects(l);
    e->root_len = len;
    e->graph = af_graph_clone(l->ctx->graph);
    if (e->graph == NULL || af_graph_finish(e->graph, root, l->dim) != 0) {
        lang_effects_free(e);
        lang_out_of_memory(&l->ctx->on_failure);
    }
    return e;
}
