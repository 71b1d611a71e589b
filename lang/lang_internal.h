/* Declarations shared by the files of lang/: the compilation context with
 * its arena and diagnostics, the AST, and the entry points of each pass
 * (parse, check, lower). Not installed: the public interface is af_lang.h
 * and af_graph.h. */
#ifndef AF_LANG_INTERNAL_H
#define AF_LANG_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>

#include "af_graph.h"
#include "af_stdlib.h"

/* Limits. Each has a "too many X (limit is N)" style error where it bites. */
#define AF_MAX_NAME_LEN 255          /* characters in an identifier */
#define AF_MAX_DEPTH 256             /* nesting of expressions and statements */
#define AF_MAX_NODES 2000000         /* graph nodes after unrolling */
#define AF_MAX_UNROLL 10000000       /* loop iterations run while lowering */
#define AF_MAX_VECTOR_LEN 100000000  /* elements of one vector */

/* A byte range [begin, end) of the model source. */
typedef struct {
    size_t begin;
    size_t end;
} af_span;

/* ---- arena: every allocation of one compilation, freed at once ---- */

typedef struct arena_block arena_block;
typedef struct {
    arena_block *head;
    jmp_buf *on_failure; /* longjmp target when the system is out of memory */
} arena;

void *arena_alloc(arena *a, size_t size);
char *arena_strndup(arena *a, const char *s, size_t n);
void arena_free(arena *a);

/* Calls longjmp to the compilation's failure point: the only way out of a
 * pass when malloc fails, so that no pass needs cleanup code per allocation. */
void lang_out_of_memory(jmp_buf *on_failure);

/* ---- diagnostics ---- */

typedef struct {
    char *text; /* every message so far, malloc'ed */
    size_t len;
    size_t cap;
    size_t errors;
    const char *path;   /* model file, for locations */
    const char *source; /* its text */
    size_t source_len;
    jmp_buf *on_failure;
} diag;

/* Appends "path:line:col: error: MESSAGE", the source line and a caret
 * underline of SPAN, then "hint: HINT" when HINT is not NULL. */
void diag_error(diag *d, af_span span, const char *hint, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
/* Same layout with "note:" in place of "error:"; does not count as an error. */
void diag_note(diag *d, af_span span, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends "PATH: error: MESSAGE" for a file without a source location, or
 * "PATH:LINE:COL: error: MESSAGE" when LINE is not 0. */
void diag_file_error(diag *d, const char *path, size_t line, size_t col, const char *format,
                     ...) __attribute__((format(printf, 5, 6)));

/* Returns the candidate closest to NAME by edit distance when it is close
 * enough to be a likely typo, else NULL. */
const char *diag_closest(const char *name, const char *const *candidates, size_t count);

/* ---- AST ---- */

typedef enum { TYPE_ERROR, TYPE_INT, TYPE_REAL, TYPE_VECTOR } ast_type;

typedef enum { ORIGIN_DATA, ORIGIN_TDATA, ORIGIN_PARAM, ORIGIN_LOCAL, ORIGIN_LOOP } ast_origin;

typedef struct ast_expr ast_expr;
typedef struct ast_stmt ast_stmt;
typedef struct ast_decl ast_decl;

typedef enum {
    EXPR_INT,
    EXPR_REAL,
    EXPR_VAR,
    EXPR_UNARY,
    EXPR_BINARY,
    EXPR_CALL,
    EXPR_INDEX
} ast_expr_kind;

struct ast_expr {
    ast_expr_kind kind;
    af_span span;
    long long int_value;
    double real_value;
    const char *name; /* EXPR_VAR and EXPR_CALL */
    af_span name_span;
    af_op op;        /* EXPR_UNARY, EXPR_BINARY; EXPR_CALL after checking */
    int elementwise; /* EXPR_BINARY written .* or ./ */
    int bar;         /* EXPR_CALL written f(y | ...) */
    ast_expr **args; /* call arguments; operands; base and index */
    size_t nargs;
    ast_expr *next; /* list link while parsing */
    /* set by the checker */
    ast_type type;
    ast_decl *decl; /* EXPR_VAR */
    int is_pi;      /* EXPR_CALL of pi() */
};

struct ast_decl {
    ast_type type;
    ast_expr *size; /* TYPE_VECTOR */
    const char *name;
    af_span span;
    af_span name_span;
    ast_expr *init;
    ast_origin origin;
    size_t slot; /* index into the lowering's variable table */
    size_t len;  /* elements, set by lowering for parameters */
    ast_decl *next;
};

typedef enum {
    STMT_DECL,
    STMT_ASSIGN,
    STMT_TARGET,
    STMT_TILDE,
    STMT_FOR,
    STMT_BLOCK,
    STMT_ERROR
} ast_stmt_kind;

struct ast_stmt {
    ast_stmt_kind kind;
    af_span span;
    ast_decl *decl;    /* STMT_DECL; the loop variable of STMT_FOR */
    ast_expr *lhs;     /* STMT_ASSIGN, STMT_TILDE */
    ast_expr *rhs;     /* STMT_ASSIGN, STMT_TARGET; the call of STMT_TILDE */
    ast_expr *lower;   /* STMT_FOR */
    ast_expr *upper;   /* STMT_FOR */
    ast_stmt *body;    /* STMT_FOR, STMT_BLOCK (a list) */
    ast_stmt *next;
};

typedef struct {
    int has_data;
    af_span data_span;
    ast_decl *data;
    ast_stmt *tdata;
    ast_decl *params;
    ast_stmt *model;
    size_t slots; /* declarations numbered by the checker */
} ast_program;

/* ---- compilation context and passes ---- */

struct cJSON;

/* One compilation. GRAPH and DATA are owned here while lowering runs, so
 * that the out-of-memory exit in af_model_compile can free them. */
typedef struct {
    arena arena;
    diag diag;
    jmp_buf on_failure;
    af_graph *graph;
    struct cJSON *data;
    char *source_buffer; /* the model text, malloc'ed */
} lang_context;

/* State of the lexer between tokens. */
typedef struct {
    lang_context *ctx;
    size_t offset; /* bytes consumed so far */
    af_span comment_start;
} lex_state;

ast_expr *ast_expr_new(lang_context *ctx, ast_expr_kind kind, af_span span);
ast_stmt *ast_stmt_new(lang_context *ctx, ast_stmt_kind kind, af_span span);
ast_decl *ast_decl_new(lang_context *ctx, ast_type type, ast_expr *size, af_span span);
/* Turns a list linked through NEXT in reverse order into an array. */
void ast_set_args(lang_context *ctx, ast_expr *e, ast_expr *reversed);
ast_stmt *ast_reverse_stmts(ast_stmt *s);
ast_decl *ast_reverse_decls(ast_decl *d);

/* Parses the source in ctx->diag into PROGRAM. Returns the error count. */
size_t lang_parse(lang_context *ctx, ast_program *program);

/* Resolves names and checks types. Returns the error count. */
size_t lang_check(lang_context *ctx, ast_program *program);

/* Reads the data, runs transformed data and unrolls the model block into a
 * graph with root log q(z). Returns NULL after reporting an error. */
af_graph *lang_lower(lang_context *ctx, ast_program *program, const char *data_path);

/* Reads one data variable DECL of the given length (1 for scalars) from the
 * JSON object ROOT into VALUES. Returns 0, or non-zero after an error. */
int lang_read_data(lang_context *ctx, const struct cJSON *root, const char *data_path,
                   const ast_decl *decl, size_t len, double *values);

/* Parses DATA_PATH into *ROOT. Returns 0, or non-zero after an error. */
int lang_load_json(lang_context *ctx, const char *data_path, struct cJSON **root);

const char *ast_type_name(ast_type type);

#endif
