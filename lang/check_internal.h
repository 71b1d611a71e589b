/* The checker's state and the entry points shared by check.c (names,
 * declarations, statements) and check_expr.c (expressions, operators and
 * calls). Private to lang/. */
#ifndef AF_CHECK_INTERNAL_H
#define AF_CHECK_INTERNAL_H

#include "lang_internal.h"

typedef enum {
    BLOCK_FUNCTIONS,
    BLOCK_DATA,
    BLOCK_TDATA,
    BLOCK_PARAMS,
    BLOCK_TPARAMS,
    BLOCK_MODEL,
    BLOCK_GQ
} block_kind;

typedef struct symbol symbol;
struct symbol {
    ast_decl *decl;
    symbol *next;
};

typedef struct {
    lang_context *ctx;
    ast_program *program;
    symbol *scope; /* innermost first */
    block_kind block;
    size_t depth;
    int depth_reported;
    size_t slots;
    size_t loops;          /* enclosing loops, for break and continue */
    ast_function *function; /* the function whose body is checked, or NULL */
    int function_lp;        /* that function ends in _lp, so it may use target */
    int returned;           /* a return statement was seen in it */
} checker;

ast_type check_expr(checker *c, ast_expr *e);
void check_stmt(checker *c, ast_stmt *s);
void check_decl(checker *c, ast_decl *d);
void check_declare(checker *c, ast_decl *d);
void check_tilde(checker *c, ast_stmt *s);
int check_assignable(ast_type to, ast_type from);
ast_decl *check_lookup(const checker *c, const char *name);
ast_function *check_find_function(const checker *c, const char *name);
/* Returns "did you mean 'x'?" for NAME among the visible variables, or among
 * callable names (with SUFFIX stripped, when not NULL) when CALLABLE. */
const char *check_name_hint(checker *c, const char *name, int callable, const char *suffix);
/* Type of L OPER R, or TYPE_ERROR after reporting at SPAN. */
ast_type check_operator_type(checker *c, ast_operator oper, ast_type l, ast_type r,
                             af_span span);
/* The I-th name of the functions that lowering implements itself (size,
 * rep_vector, ...), NULL past the end. */
const char *check_structural_name(size_t i);

#endif
