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
/* Expressions and statements lowered (unrolled loops and inlined calls
 * included), plus one step per 16 variable elements copied at an if on a
 * parameter or a call. It bounds the compile time of loops that add no
 * graph nodes. Measured: 30 ns a step in a RelWithDebInfo build and 500 ns
 * in the sanitized fuzzing build, so at most 0.3 s and 5 s. A loop over
 * data adds a graph node every 2 to 3 steps, so AF_MAX_NODES stops it
 * first. */
#define AF_MAX_LOWER_STEPS 10000000
#define AF_MAX_VECTOR_LEN 100000000  /* elements of one variable */
/* Values kept in the graph's constants (data and values folded from data),
 * 160 MB. */
#define AF_MAX_CONSTANTS 20000000
/* Operand and result values of all ops folded on data while lowering. It
 * bounds the time that AF_MAX_CONSTANTS does not, because shared results
 * add no constants: a product of two 2000 x 2000 data matrices stops after
 * about 1.5 s in a RelWithDebInfo build. */
#define AF_MAX_FOLDED 50000000
#define AF_MAX_INCLUDE_DEPTH 16      /* nesting of #include */
#define AF_MAX_INCLUDES 1000         /* #include directives run in one compilation */
/* Bytes of the model file and every included file together; flex takes a
 * buffer's length as int. */
#define AF_MAX_SOURCE_BYTES (64 * 1024 * 1024)
/* Print and reject statements lowered into the graph for evaluation at
 * given points, counted after loops are unrolled. */
#define AF_MAX_EFFECTS 100000
#define AF_MAX_INLINE_DEPTH 64       /* nested calls of user functions while lowering */
/* Calls of user functions inlined while lowering, nested or not: a function
 * that calls itself twice would otherwise make 2^64 calls within the depth
 * limit. */
#define AF_MAX_INLINED_CALLS 500000
#define AF_MAX_ARGS 64               /* arguments of one call */
#define AF_MAX_ERRORS 100            /* errors shown; the rest are only counted */

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

/* One file of the model: the model file or a file it includes. Its bytes
 * take the span offsets [base, base + len), and base + len is its end of
 * file. The next file starts at base + len + 1, so every offset names one
 * file. */
typedef struct {
    const char *path;
    const char *text;
    size_t len;
    size_t base;
    unsigned long long device, inode; /* identity of the file, for #include cycles */
    af_span directive; /* the #include that read it; {0, 0} for the model file */
} diag_source;

typedef struct {
    char *text; /* every message so far, malloc'ed */
    size_t len;
    size_t cap;
    size_t errors;
    /* The files read so far in the order they were opened, [0] the model
     * file; an arena array of SOURCE_CAP entries. */
    diag_source *sources;
    size_t source_count, source_cap;
    jmp_buf *on_failure;
} diag;

/* The source file that contains span offset OFFSET; an empty one named ""
 * when no file has been read. */
diag_source diag_source_at(const diag *d, size_t offset);
/* Writes "path:line:col" of SPAN's start into OUT. */
void diag_location(const diag *d, af_span span, char *out, size_t cap);

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
/* Adds "PATH: warning: ..." without counting an error; on success the
 * model keeps the text for af_model_warnings. */
void diag_file_warning(diag *d, const char *path, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the candidate closest to NAME by edit distance when it is close
 * enough to be a likely typo, else NULL. */
const char *diag_closest(const char *name, const char *const *candidates, size_t count);

/* ---- AST ---- */

/* The element type of a value; arrays add dimensions around it. */
typedef enum {
    TYPE_ERROR,
    TYPE_INT,
    TYPE_REAL,
    TYPE_VECTOR,
    TYPE_ROW_VECTOR,
    TYPE_MATRIX,
    TYPE_VOID
} ast_base;

/* A type: BASE inside DIMS array dimensions (array[N, M] real has 2). */
typedef struct {
    ast_base base;
    int dims;
} ast_type;

typedef enum {
    ORIGIN_DATA,
    ORIGIN_TDATA,
    ORIGIN_PARAM,
    ORIGIN_TPARAM,
    ORIGIN_GQ,
    ORIGIN_LOCAL,
    ORIGIN_LOOP,
    ORIGIN_ARG,
    ORIGIN_LEVEL
} ast_origin;

/* How a declaration's values are constrained. */
typedef enum {
    CONSTRAINT_NONE,
    CONSTRAINT_BOUNDS, /* lower and/or upper */
    CONSTRAINT_AFFINE, /* offset and/or multiplier */
    CONSTRAINT_SIMPLEX,
    CONSTRAINT_ORDERED,
    CONSTRAINT_POSITIVE_ORDERED
} ast_constraint;

typedef struct ast_expr ast_expr;
typedef struct ast_stmt ast_stmt;
typedef struct ast_decl ast_decl;
typedef struct ast_function ast_function;

typedef enum {
    EXPR_INT,
    EXPR_REAL,
    EXPR_STRING, /* print and reject arguments only */
    EXPR_VAR,
    EXPR_UNARY,
    EXPR_BINARY,
    EXPR_TERNARY,
    EXPR_CALL,
    EXPR_INDEX, /* args[0] indexed by args[1..] */
    EXPR_RANGE, /* an index a:b; args[0] or args[1] is NULL when omitted */
    EXPR_ROW_LITERAL, /* [a, b] */
    EXPR_ARRAY_LITERAL /* {a, b} */
} ast_expr_kind;

/* Operators as written, before the checker maps them to graph ops. */
typedef enum {
    OPER_ADD,
    OPER_SUB,
    OPER_MUL,
    OPER_DIV,
    OPER_ELT_MUL,
    OPER_ELT_DIV,
    OPER_POW,
    OPER_ELT_POW,
    OPER_MOD,
    OPER_INT_DIV,
    OPER_LT,
    OPER_LE,
    OPER_GT,
    OPER_GE,
    OPER_EQ,
    OPER_NE,
    OPER_AND,
    OPER_OR,
    OPER_NEG,
    OPER_NOT,
    OPER_TRANSPOSE
} ast_operator;

struct ast_expr {
    ast_expr_kind kind;
    af_span span;
    long long int_value;
    double real_value;
    const char *name; /* EXPR_VAR, EXPR_CALL, EXPR_STRING */
    af_span name_span;
    ast_operator oper; /* EXPR_UNARY, EXPR_BINARY */
    int bar;           /* EXPR_CALL written f(y | ...) */
    ast_expr **args;   /* call arguments; operands; base and indices */
    size_t nargs;
    ast_expr *next; /* list link while parsing */
    /* set by the checker */
    ast_type type;
    af_op op;              /* EXPR_CALL of a built-in */
    ast_function *function; /* EXPR_CALL of a user function */
    ast_decl *decl;        /* EXPR_VAR */
    int builtin;            /* EXPR_CALL of a function lowering implements: an ast_builtin */
};

/* Functions that lowering implements from graph ops, since they change
 * shapes or have no op of their own. */
typedef enum {
    BUILTIN_NONE,
    BUILTIN_PI,
    BUILTIN_E,
    BUILTIN_NOT_A_NUMBER,
    BUILTIN_POSITIVE_INFINITY,
    BUILTIN_NEGATIVE_INFINITY,
    BUILTIN_SIZE,
    BUILTIN_NUM_ELEMENTS,
    BUILTIN_ROWS,
    BUILTIN_COLS,
    BUILTIN_REP_VECTOR,
    BUILTIN_REP_ROW_VECTOR,
    BUILTIN_REP_MATRIX,
    BUILTIN_REP_ARRAY,
    BUILTIN_TO_VECTOR,
    BUILTIN_TO_ROW_VECTOR,
    BUILTIN_DOT_PRODUCT,
    BUILTIN_COUNT
} ast_builtin;

#define AF_MAX_ARRAY_DIMS 8 /* dimensions of one array */

struct ast_decl {
    ast_type type;
    ast_expr *array_sizes[AF_MAX_ARRAY_DIMS];
    ast_expr *rows; /* vector, matrix and the constrained vectors */
    ast_expr *cols; /* row_vector, matrix */
    ast_constraint constraint;
    ast_expr *lower, *upper, *offset, *multiplier;
    const char *name;
    af_span span;
    af_span name_span;
    ast_expr *init;
    ast_origin origin;
    int is_data_arg; /* function argument declared 'data' */
    size_t slot;     /* index into the lowering's variable table */
    /* set by lowering for parameters and output blocks */
    size_t shape[AF_MAX_ARRAY_DIMS + 2];
    size_t rank; /* entries of SHAPE in use */
    size_t len;  /* elements */
    ast_decl *next;
};

typedef enum {
    STMT_DECL,
    STMT_ASSIGN,
    STMT_TARGET,
    STMT_TILDE,
    STMT_FOR,
    STMT_FOREACH,
    STMT_WHILE,
    STMT_IF,
    STMT_BREAK,
    STMT_CONTINUE,
    STMT_PRINT,
    STMT_REJECT,
    STMT_RETURN,
    STMT_CALL, /* a void function call */
    STMT_BLOCK,
    STMT_ERROR
} ast_stmt_kind;

struct ast_stmt {
    ast_stmt_kind kind;
    af_span span;
    ast_decl *decl;    /* STMT_DECL; the loop variable of STMT_FOR and STMT_FOREACH */
    ast_expr *lhs;     /* STMT_ASSIGN, STMT_TILDE */
    ast_expr *rhs;     /* STMT_ASSIGN, STMT_TARGET, STMT_RETURN, STMT_CALL; the call of
                          STMT_TILDE; the container of STMT_FOREACH */
    int compound;      /* STMT_ASSIGN: 0 for '=', else the operator of 'x op= e' */
    ast_operator oper; /* STMT_ASSIGN with COMPOUND */
    ast_expr *lower;   /* STMT_FOR; the condition of STMT_WHILE and STMT_IF */
    ast_expr *upper;   /* STMT_FOR */
    ast_expr **args;   /* STMT_PRINT, STMT_REJECT */
    size_t nargs;
    ast_stmt *body;    /* loops, STMT_IF (then), STMT_BLOCK (a list) */
    ast_stmt *orelse;  /* STMT_IF */
    ast_stmt *next;
};

/* A function of the functions block, or an extern declaration. */
struct ast_function {
    const char *name;
    af_span span;
    af_span name_span;
    ast_type result;
    ast_decl *params; /* a list */
    size_t nparams;
    ast_stmt *body; /* NULL for a forward declaration or an extern */
    int is_extern;
    const char *library;    /* extern: shared library path */
    const char *derivative; /* extern: derivative symbol, NULL for finite differences */
    af_ffi_function *loaded; /* extern: set by lang_open_externs */
    ast_function *next;
};

typedef struct {
    int has_data;
    af_span data_span;
    ast_function *functions;
    ast_decl *data;
    ast_stmt *tdata;
    ast_decl *params;
    ast_stmt *tparams;
    ast_stmt *model;
    ast_stmt *gq;
    ast_decl *level; /* the reserved annealing_level */
    size_t slots;    /* declarations numbered by the checker */
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
    /* Extern functions opened by lang_open_externs; the model takes them. */
    af_ffi_function **externs;
    size_t extern_count;
    int incomplete;      /* the input ended inside a block, a bracket or a comment */
} lang_context;

/* An including file whose reading an #include directive suspended. */
typedef struct {
    void *buffer;  /* its flex buffer */
    size_t offset; /* its span offset after the directive */
    size_t source; /* its index in diag.sources */
} lex_include;

/* State of the lexer between tokens. */
typedef struct {
    lang_context *ctx;
    size_t offset; /* span offset of the next byte */
    af_span comment_start;
    size_t source;        /* index in diag.sources of the file being read */
    lex_include stack[AF_MAX_INCLUDE_DEPTH];
    size_t depth;         /* entries of STACK in use */
    size_t include_count; /* #include directives run so far */
} lex_state;

/* Reads the model file PATH into ctx->source_buffer as diag.sources[0].
 * Returns 0, or non-zero after reporting an error. */
int lang_read_model(lang_context *ctx, const char *path);

/* Finds the file NAME (at SPAN) of the #include DIRECTIVE in the file being
 * read by LEX (next to that file, then in the current directory), reads it
 * into the arena and adds it to diag.sources. Returns its index, or -1
 * after reporting an error: not found, not a regular file, a file already
 * being read (a cycle) or too many bytes in all. */
long lang_read_include(lex_state *lex, const char *name, af_span span, af_span directive);

/* Paths of the distinct files in diag.sources, the model file first, as
 * one malloc'ed block: COUNT pointers followed by the strings. Returns
 * NULL when out of memory. */
char **lang_source_paths(const lang_context *ctx, size_t *count);

ast_expr *ast_expr_new(lang_context *ctx, ast_expr_kind kind, af_span span);
ast_stmt *ast_stmt_new(lang_context *ctx, ast_stmt_kind kind, af_span span);
ast_decl *ast_decl_new(lang_context *ctx, ast_base base, af_span span);
/* Builds an expression of KIND with the N operands given (NULL allowed). */
ast_expr *ast_expr_with(lang_context *ctx, ast_expr_kind kind, af_span span, size_t n,
                        ast_expr *a, ast_expr *b, ast_expr *c);
/* Turns a list linked through NEXT in reverse order into an array. */
void ast_set_args(lang_context *ctx, ast_expr *e, ast_expr *reversed);
ast_stmt *ast_reverse_stmts(ast_stmt *s);
ast_decl *ast_reverse_decls(ast_decl *d);

/* Parses the source in ctx->diag into PROGRAM. Returns the error count. */
size_t lang_parse(lang_context *ctx, ast_program *program);

/* Resolves names and checks types. Returns the error count. */
size_t lang_check(lang_context *ctx, ast_program *program);

/* Opens the shared library of every extern function of PROGRAM, the
 * model in MODEL_PATH, and its symbols, into ctx->externs. Returns the
 * number of errors reported. */
size_t lang_open_externs(lang_context *ctx, ast_program *program, const char *model_path);

/* What lowering produces; the caller owns every member. */
typedef struct {
    af_graph *graph;     /* root: log q(z) */
    af_graph *columns;   /* root: the output columns, then 4 bounds per parameter element */
    size_t column_count; /* output columns at the start of the COLUMNS root */
    char *printed;       /* text of print statements run while compiling, or NULL */
    struct lang_effects *effects; /* prints and rejects run at given points, or NULL */
} lang_lowered;

/* Reads the data, runs transformed data and unrolls the other blocks into
 * the graphs of OUT, setting the shape of every parameter, transformed
 * parameter and generated quantity. Returns 0, or non-zero after reporting
 * an error. */
int lang_lower(lang_context *ctx, ast_program *program, const char *data_path,
               lang_lowered *out);

/* Reads one data variable DECL, whose shape lowering has set, from the JSON
 * object ROOT into VALUES (decl->len of them, in afm's layout: arrays
 * row-major, each matrix column-major). Returns 0, or non-zero after an
 * error. */
int lang_read_data(lang_context *ctx, const struct cJSON *root, const char *data_path,
                   const ast_decl *decl, double *values);

/* Parses DATA_PATH into *ROOT. Returns 0, or non-zero after an error. */
int lang_load_json(lang_context *ctx, const char *data_path, struct cJSON **root);

/* Writes "vector", "array[,] real" and the like into OUT. */
const char *ast_type_text(ast_type type, char *out, size_t cap);
/* Returns the name of a base type, "real" for TYPE_REAL. */
const char *ast_base_name(ast_base base);
int ast_type_equal(ast_type a, ast_type b);

#endif
