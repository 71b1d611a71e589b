/* Lowering of statements: assignments (whole, indexed, compound), target
 * and '~', loops unrolled over data, if on data (one branch) or on
 * parameters (both branches, merged by select), jumps and the inlining
 * of user functions. Print and reject are in lower_effect.c. */
#include "lower_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void lower_list(lowerer *l, const ast_stmt *list)
{
    for (const ast_stmt *s = list; s != NULL && l->jump == JUMP_NONE; s = s->next)
        lower_stmt(l, s);
}

/* ---- assignment ---- */

static value compound_value(lowerer *l, const ast_stmt *s, value current, value rhs)
{
    /* Reuses the expression lowering on a synthetic binary node whose
     * operands are already lowered: build it from two placeholders. */
    ast_expr left = {0}, right = {0}, op = {0};
    left.type = s->lhs->type;
    right.type = s->rhs->type;
    ast_expr *args[2] = {&left, &right};
    op.kind = EXPR_BINARY;
    op.oper = s->oper;
    op.args = args;
    op.nargs = 2;
    op.span = s->span;
    op.type = s->lhs->type;
    return lower_binary_values(l, &op, current, rhs);
}

static void check_assigned_shape(lowerer *l, const ast_stmt *s, const shape *want, value v,
                                 size_t count)
{
    size_t n = lower_node_len(l, v.node);
    int same = n == count && (want->rank == 0 || v.sh.rank == want->rank);
    for (size_t k = 0; same && k < want->rank && k < v.sh.rank; k++)
        same = want->dims[k] == v.sh.dims[k];
    if (same || (count == 1 && n == 1))
        return;
    char a[96], b[96];
    lower_fail(l, s->rhs->span, NULL, "cannot assign %s to %s",
               shape_text(v.type, &v.sh, b, sizeof b), shape_text(s->lhs->type, want, a, sizeof a));
}

static void lower_assign(lowerer *l, const ast_stmt *s)
{
    const ast_expr *lhs = s->lhs;
    value rhs = lower_expr(l, s->rhs);
    if (s->compound)
        rhs = compound_value(l, s, lower_expr(l, lhs), rhs);
    if (lhs->kind == EXPR_VAR) {
        var_value *v = &l->vars[lhs->decl->slot];
        check_assigned_shape(l, s, &v->sh, rhs, v->len);
        v->whole = rhs.node;
        v->elems = NULL;
        return;
    }
    if (lhs->args[0]->kind != EXPR_VAR)
        lower_fail(l, lhs->span, NULL, "assign to one level of indexing, as in x[i, j] = ...");
    var_value *v = &l->vars[lhs->args[0]->decl->slot];
    shape result;
    size_t count;
    size_t *offsets = lower_index_offsets(l, v->type, &v->sh, lhs->args + 1, lhs->nargs - 1,
                                          &result, &count, lhs->span);
    check_assigned_shape(l, s, &result, rhs, count);
    for (size_t k = 0; k < count; k++)
        lower_var_write_element(l, v, offsets[k], lower_element(l, rhs, k, s->span), s->span);
}

/* ---- target ---- */

static void add_to_target(lowerer *l, size_t node, af_span span)
{
    if (lower_node_len(l, node) != 1)
        node = lower_emit(l, AF_OP_SUM, &node, 1, 1, 0, span);
    size_t args[2] = {l->target, node};
    l->target = lower_emit(l, AF_OP_ADD, args, 2, 1, 0, span);
}

/* ---- loops ---- */

/* Lowers a loop body; a break or continue there belongs to this loop even
 * inside an if on parameters further out. */
static int run_body(lowerer *l, const ast_stmt *body)
{
    size_t saved = l->parameter_branches;
    l->parameter_branches = 0;
    lower_stmt(l, body);
    l->parameter_branches = saved;
    jump_kind jump = l->jump;
    if (jump == JUMP_BREAK || jump == JUMP_CONTINUE)
        l->jump = JUMP_NONE;
    return jump == JUMP_BREAK || jump == JUMP_RETURN;
}

static void count_iteration(lowerer *l, const ast_stmt *s)
{
    if (++l->unrolled > AF_MAX_UNROLL)
        lower_fail(l, s->span, "loops are unrolled while compiling; use vectorised statements",
                   "too many loop iterations (limit is %d)", AF_MAX_UNROLL);
}

static void lower_for(lowerer *l, const ast_stmt *s)
{
    double lo = lower_known_value(l, lower_expr(l, s->lower).node, s->lower->span, "a loop bound");
    double hi = lower_known_value(l, lower_expr(l, s->upper).node, s->upper->span, "a loop bound");
    var_value *v = &l->vars[s->decl->slot];
    v->type = s->decl->type;
    v->len = 1;
    v->sh.rank = 0;
    for (double i = lo; i <= hi; i++) {
        count_iteration(l, s);
        v->whole = lower_scalar(l, i, s->decl->span);
        v->elems = NULL;
        if (run_body(l, s->body))
            break;
    }
}

static void lower_foreach(lowerer *l, const ast_stmt *s)
{
    value c = lower_expr(l, s->rhs);
    var_value *v = &l->vars[s->decl->slot];
    v->type = s->decl->type;
    size_t count = c.type.dims > 0 ? c.sh.dims[0] : lower_node_len(l, c.node);
    size_t inner = count ? lower_node_len(l, c.node) / count : 0;
    v->sh.rank = c.type.dims > 0 ? c.sh.rank - 1 : 0;
    for (size_t k = 0; k < v->sh.rank; k++)
        v->sh.dims[k] = c.sh.dims[k + 1];
    v->len = inner;
    size_t *offsets = arena_alloc(&l->ctx->arena, (inner ? inner : 1) * sizeof *offsets);
    for (size_t i = 0; i < count; i++) {
        count_iteration(l, s);
        for (size_t k = 0; k < inner; k++)
            offsets[k] = i * inner + k;
        v->whole = lower_gather(l, c.node, offsets, inner, s->span);
        v->elems = NULL;
        if (run_body(l, s->body))
            break;
    }
}

static void lower_while(lowerer *l, const ast_stmt *s)
{
    for (;;) {
        size_t cond = lower_expr(l, s->lower).node;
        const double *known = lower_known(l, cond);
        if (known == NULL)
            lower_fail(l, s->lower->span, "loops are unrolled while compiling, so the condition must come from data",
                       "control flow on a parameter is not supported in loops/while");
        if (known[0] == 0.0)
            break;
        count_iteration(l, s);
        if (run_body(l, s->body))
            break;
    }
}

/* ---- if ---- */

typedef struct {
    var_value *vars;
    size_t target;
} state;

static state save_state(lowerer *l, af_span span)
{
    size_t n = l->program->slots ? l->program->slots : 1;
    size_t copied = n;
    state st = {arena_alloc(&l->ctx->arena, n * sizeof *st.vars), l->target};
    memcpy(st.vars, l->vars, n * sizeof *st.vars);
    for (size_t i = 0; i < n; i++) {
        if (st.vars[i].elems == NULL)
            continue;
        size_t *copy = arena_alloc(&l->ctx->arena, st.vars[i].len * sizeof *copy);
        memcpy(copy, st.vars[i].elems, st.vars[i].len * sizeof *copy);
        st.vars[i].elems = copy;
        copied += st.vars[i].len;
    }
    lower_count_steps(l, copied / 16, span);
    return st;
}

static void restore_state(lowerer *l, const state *st)
{
    size_t n = l->program->slots ? l->program->slots : 1;
    memcpy(l->vars, st->vars, n * sizeof *l->vars);
    l->target = st->target;
}

static size_t select_node(lowerer *l, size_t cond, size_t a, size_t b, af_span span)
{
    if (a == b)
        return a;
    size_t args[3] = {cond, a, b};
    return lower_emit(l, AF_OP_SELECT, args, 3, lower_node_len(l, a), 0, span);
}

/* Merges the variables after the then branch (in l->vars) with those after
 * the else branch (OTHER): each that differs becomes a select. */
static void merge_states(lowerer *l, size_t cond, state *other, af_span span)
{
    size_t n = l->program->slots;
    for (size_t i = 0; i < n; i++) {
        var_value *a = &l->vars[i], *b = &other->vars[i];
        if ((a->whole == AF_GRAPH_NONE && a->elems == NULL) ||
            (b->whole == AF_GRAPH_NONE && b->elems == NULL))
            continue;
        size_t wa = lower_var_whole(l, a, span), wb = lower_var_whole(l, b, span);
        a->whole = select_node(l, cond, wa, wb, span);
        a->elems = NULL;
    }
    l->target = select_node(l, cond, l->target, other->target, span);
}

static void lower_branch(lowerer *l, const ast_stmt *branch)
{
    l->parameter_branches++;
    if (branch != NULL)
        lower_stmt(l, branch);
    l->parameter_branches--;
}

static void lower_if(lowerer *l, const ast_stmt *s)
{
    size_t cond = lower_expr(l, s->lower).node;
    const double *known = lower_known(l, cond);
    if (known != NULL) {
        const ast_stmt *taken = known[0] != 0.0 ? s->body : s->orelse;
        if (taken != NULL)
            lower_stmt(l, taken);
        return;
    }
    size_t guard = l->guard;
    state before = save_state(l, s->span);
    l->guard = lower_guard_branch(l, guard, cond, 0, s->span);
    lower_branch(l, s->orelse);
    size_t guard_else = l->guard;
    state after_else = save_state(l, s->span);
    restore_state(l, &before);
    l->guard = lower_guard_branch(l, guard, cond, 1, s->span);
    lower_branch(l, s->body);
    merge_states(l, cond, &after_else, s->span);
    l->guard = lower_guard_merge(l, guard, cond, l->guard, guard_else, s->span);
}

/* ---- jumps ---- */

static void lower_jump(lowerer *l, const ast_stmt *s, jump_kind kind)
{
    if (l->parameter_branches > 0)
        lower_fail(l, s->span, "compute both cases and choose with the ?: operator",
                   "control flow on a parameter is not supported in loops/while: this '%s' "
                   "is inside an if whose condition depends on parameters",
                   kind == JUMP_BREAK ? "break" : kind == JUMP_CONTINUE ? "continue" : "return");
    if (kind == JUMP_RETURN && s->rhs != NULL)
        l->returned = lower_expr(l, s->rhs);
    l->jump = kind;
}

/* ---- user functions ---- */

value lower_user_call(lowerer *l, const ast_expr *e, const value *args)
{
    ast_function *f = e->function;
    if (f->is_extern)
        return lower_extern_call(l, e, args);
    if (f->body == NULL)
        lower_fail(l, e->span, NULL, "function '%s' is declared but never defined", f->name);
    if (l->inline_depth >= AF_MAX_INLINE_DEPTH)
        lower_fail(l, e->span, "recursion must end after a number of calls known from data",
                   "too many nested function calls (limit is %d)", AF_MAX_INLINE_DEPTH);
    if (++l->inlined_calls > AF_MAX_INLINED_CALLS)
        lower_fail(l, e->span, "calls are inlined while compiling, so call functions on whole vectors",
                   "too many function calls (limit is %d)", AF_MAX_INLINED_CALLS);
    state saved = save_state(l, e->span);
    size_t k = 0;
    for (ast_decl *p = f->params; p != NULL; p = p->next, k++) {
        var_value *v = &l->vars[p->slot];
        v->type = p->type;
        v->sh = args[k].sh;
        v->len = lower_node_len(l, args[k].node);
        v->whole = args[k].node;
        v->elems = NULL;
    }
    size_t branches = l->parameter_branches;
    l->parameter_branches = 0;
    l->inline_depth++;
    l->returned = (value){AF_GRAPH_NONE, {TYPE_VOID, 0}, {0, {0}}};
    lower_stmt(l, f->body);
    l->inline_depth--;
    l->parameter_branches = branches;
    value result = l->returned;
    if (f->result.base != TYPE_VOID && l->jump != JUMP_RETURN)
        lower_fail(l, e->span, NULL, "function '%s' ended without returning a value", f->name);
    l->jump = JUMP_NONE;
    size_t target = l->target; /* an _lp function may have added to it */
    restore_state(l, &saved);
    l->target = target;
    result.type = e->type;
    return result;
}

static void lower_call_stmt(lowerer *l, const ast_stmt *s)
{
    lower_expr(l, s->rhs);
}

/* ---- dispatch ---- */


void lower_stmt(lowerer *l, const ast_stmt *s)
{
    lower_count_steps(l, 1, s->span);
    switch (s->kind) {
    case STMT_DECL:
        lower_declaration(l, s->decl);
        break;
    case STMT_ASSIGN:
        lower_assign(l, s);
        break;
    case STMT_TARGET:
    case STMT_TILDE:
        add_to_target(l, lower_expr(l, s->rhs).node, s->span);
        break;
    case STMT_FOR:
        lower_for(l, s);
        break;
    case STMT_FOREACH:
        lower_foreach(l, s);
        break;
    case STMT_WHILE:
        lower_while(l, s);
        break;
    case STMT_IF:
        lower_if(l, s);
        break;
    case STMT_BREAK:
        lower_jump(l, s, JUMP_BREAK);
        break;
    case STMT_CONTINUE:
        lower_jump(l, s, JUMP_CONTINUE);
        break;
    case STMT_RETURN:
        lower_jump(l, s, JUMP_RETURN);
        break;
    case STMT_PRINT:
        lower_print(l, s);
        break;
    case STMT_REJECT:
        lower_reject(l, s);
        break;
    case STMT_CALL:
        lower_call_stmt(l, s);
        break;
    case STMT_BLOCK:
        lower_list(l, s->body);
        break;
    case STMT_ERROR:
        break;
    }
}

