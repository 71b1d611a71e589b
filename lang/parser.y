/* The .afm grammar: a pure bison parser with byte-span locations. Actions
 * only call AST builders; every node lives in the compilation arena, so no
 * semantic value owns memory and no %destructor is needed. A bad statement
 * or declaration is skipped up to its ';' so that later errors still show;
 * bison stays silent until three tokens after that ';' have been read, which
 * keeps one mistake from giving several messages. */
%define api.pure full
%define api.prefix {lang_yy}
%define api.location.type {af_span}
%define parse.error custom
%define parse.lac full
%locations
%param {void *scanner}
%parse-param {lang_context *ctx} {ast_program *program}

%code requires {
#include "lang_internal.h"

#define YYLLOC_DEFAULT(current, rhs, n)                 \
    do {                                                     \
        if (n) {                                             \
            (current).begin = YYRHSLOC(rhs, 1).begin;        \
            (current).end = YYRHSLOC(rhs, n).end;            \
        } else {                                             \
            (current).begin = (current).end = YYRHSLOC(rhs, 0).end; \
        }                                                    \
    } while (0)
}

%code {
#include <string.h>

int lang_yylex(LANG_YYSTYPE *value, af_span *location, void *scanner);
static void lang_yyerror(af_span *location, void *scanner, lang_context *ctx,
                         ast_program *program, const char *message);

static ast_expr *binary(lang_context *ctx, af_op op, ast_expr *l, ast_expr *r, af_span span,
                        int elementwise);
static ast_expr *call(lang_context *ctx, const char *name, af_span name_span, ast_expr *args,
                      af_span span);
static ast_stmt *declaration(lang_context *ctx, ast_decl *decl);
}

%union {
    long long int_value;
    double real_value;
    const char *name;
    ast_expr *expr;
    ast_stmt *stmt;
    ast_decl *decl;
}

%token <name> IDENT "identifier"
%token <int_value> INT_LIT "integer"
%token <real_value> REAL_LIT "real number"
%token DATA "'data'" TRANSFORMED "'transformed'" PARAMETERS "'parameters'"
%token MODEL "'model'" INT "'int'" REAL "'real'" VECTOR "'vector'" FOR "'for'"
%token IN "'in'" TARGET "'target'"
%token PLUS_ASSIGN "'+='" LE "'<='" GE "'>='" EQ "'=='" NE "'!='"
%token ELT_MUL "'.*'" ELT_DIV "'./'"

%type <expr> expr args
%type <stmt> stmt stmts
%type <decl> decl_type var_decl decls

%left EQ NE
%left '<' '>' LE GE
%left '+' '-'
%left '*' '/' ELT_MUL ELT_DIV
%precedence UNARY
%precedence '['

%%

program:
    data_block tdata_block params_block model_block
  ;

data_block:
    %empty
  | DATA '{' decls '}'
      { program->has_data = 1; program->data_span = @1; program->data = ast_reverse_decls($3); }
  ;

tdata_block:
    %empty
  | TRANSFORMED DATA '{' stmts '}'    { program->tdata = ast_reverse_stmts($4); }
  ;

params_block:
    %empty
  | PARAMETERS '{' decls '}'          { program->params = ast_reverse_decls($3); }
  ;

model_block:
    MODEL '{' stmts '}'               { program->model = ast_reverse_stmts($3); }
  ;

decls:
    %empty                            { $$ = NULL; }
  | decls var_decl                    { $2->next = $1; $$ = $2; }
  | decls error ';'                   { $$ = $1; }
  ;

decl_type:
    INT                               { $$ = ast_decl_new(ctx, TYPE_INT, NULL, @$); }
  | REAL                              { $$ = ast_decl_new(ctx, TYPE_REAL, NULL, @$); }
  | VECTOR '[' expr ']'               { $$ = ast_decl_new(ctx, TYPE_VECTOR, $3, @$); }
  ;

var_decl:
    decl_type IDENT ';'
      { $$ = $1; $$->name = $2; $$->name_span = @2; $$->span = @$; }
  | decl_type IDENT '=' expr ';'
      { $$ = $1; $$->name = $2; $$->name_span = @2; $$->span = @$; $$->init = $4; }
  ;

stmts:
    %empty                            { $$ = NULL; }
  | stmts stmt                        { $2->next = $1; $$ = $2; }
  ;

stmt:
    var_decl                          { $$ = declaration(ctx, $1); }
  | expr '=' expr ';'
      { $$ = ast_stmt_new(ctx, STMT_ASSIGN, @$); $$->lhs = $1; $$->rhs = $3; }
  | TARGET PLUS_ASSIGN expr ';'
      { $$ = ast_stmt_new(ctx, STMT_TARGET, @$); $$->rhs = $3; }
  | expr '~' IDENT '(' ')' ';'
      {
          $$ = ast_stmt_new(ctx, STMT_TILDE, @$);
          $$->lhs = $1;
          $$->rhs = call(ctx, $3, @3, NULL, @$);
      }
  | expr '~' IDENT '(' args ')' ';'
      {
          $$ = ast_stmt_new(ctx, STMT_TILDE, @$);
          $$->lhs = $1;
          $$->rhs = call(ctx, $3, @3, $5, @$);
      }
  | FOR '(' IDENT IN expr ':' expr ')' stmt
      {
          $$ = ast_stmt_new(ctx, STMT_FOR, @$);
          $$->decl = ast_decl_new(ctx, TYPE_INT, NULL, @3);
          $$->decl->name = $3;
          $$->decl->name_span = @3;
          $$->decl->origin = ORIGIN_LOOP;
          $$->lower = $5;
          $$->upper = $7;
          $$->body = $9;
      }
  | '{' stmts '}'
      { $$ = ast_stmt_new(ctx, STMT_BLOCK, @$); $$->body = ast_reverse_stmts($2); }
  | ';'                               { $$ = ast_stmt_new(ctx, STMT_BLOCK, @$); }
  | error ';'                         { $$ = ast_stmt_new(ctx, STMT_ERROR, @$); }
  ;

args:
    expr                              { $$ = $1; }
  | args ',' expr                     { $3->next = $1; $$ = $3; }
  ;

expr:
    INT_LIT                           { $$ = ast_expr_new(ctx, EXPR_INT, @$); $$->int_value = $1; }
  | REAL_LIT                          { $$ = ast_expr_new(ctx, EXPR_REAL, @$); $$->real_value = $1; }
  | IDENT
      { $$ = ast_expr_new(ctx, EXPR_VAR, @$); $$->name = $1; $$->name_span = @1; }
  | IDENT '(' ')'                     { $$ = call(ctx, $1, @1, NULL, @$); }
  | IDENT '(' args ')'                { $$ = call(ctx, $1, @1, $3, @$); }
  | IDENT '(' expr '|' args ')'
      {
          ast_expr *last = $5;
          while (last->next != NULL)
              last = last->next;
          last->next = $3;
          $3->next = NULL;
          $$ = call(ctx, $1, @1, $5, @$);
          $$->bar = 1;
      }
  | expr '[' expr ']'
      {
          $$ = ast_expr_new(ctx, EXPR_INDEX, @$);
          $3->next = $1;
          $1->next = NULL;
          ast_set_args(ctx, $$, $3);
      }
  | '(' expr ')'                      { $$ = $2; }
  | '-' expr %prec UNARY
      {
          $$ = ast_expr_new(ctx, EXPR_UNARY, @$);
          $$->op = AF_OP_NEG;
          $2->next = NULL;
          ast_set_args(ctx, $$, $2);
      }
  | '+' expr %prec UNARY              { $$ = $2; }
  | expr '+' expr                     { $$ = binary(ctx, AF_OP_ADD, $1, $3, @$, 0); }
  | expr '-' expr                     { $$ = binary(ctx, AF_OP_SUB, $1, $3, @$, 0); }
  | expr '*' expr                     { $$ = binary(ctx, AF_OP_MUL, $1, $3, @$, 0); }
  | expr '/' expr                     { $$ = binary(ctx, AF_OP_DIV, $1, $3, @$, 0); }
  | expr ELT_MUL expr                 { $$ = binary(ctx, AF_OP_MUL, $1, $3, @$, 1); }
  | expr ELT_DIV expr                 { $$ = binary(ctx, AF_OP_DIV, $1, $3, @$, 1); }
  | expr '<' expr                     { $$ = binary(ctx, AF_OP_LT, $1, $3, @$, 0); }
  | expr LE expr                      { $$ = binary(ctx, AF_OP_LE, $1, $3, @$, 0); }
  | expr '>' expr                     { $$ = binary(ctx, AF_OP_GT, $1, $3, @$, 0); }
  | expr GE expr                      { $$ = binary(ctx, AF_OP_GE, $1, $3, @$, 0); }
  | expr EQ expr                      { $$ = binary(ctx, AF_OP_EQ, $1, $3, @$, 0); }
  | expr NE expr                      { $$ = binary(ctx, AF_OP_NE, $1, $3, @$, 0); }
  ;

%%

static ast_expr *binary(lang_context *ctx, af_op op, ast_expr *l, ast_expr *r, af_span span,
                        int elementwise)
{
    ast_expr *e = ast_expr_new(ctx, EXPR_BINARY, span);
    e->op = op;
    e->elementwise = elementwise;
    r->next = l;
    l->next = NULL;
    ast_set_args(ctx, e, r);
    return e;
}

/* ARGS is the reversed argument list, NULL for none. */
static ast_expr *call(lang_context *ctx, const char *name, af_span name_span, ast_expr *args,
                      af_span span)
{
    ast_expr *e = ast_expr_new(ctx, EXPR_CALL, span);
    e->name = name;
    e->name_span = name_span;
    ast_set_args(ctx, e, args);
    return e;
}

static ast_stmt *declaration(lang_context *ctx, ast_decl *decl)
{
    ast_stmt *s = ast_stmt_new(ctx, STMT_DECL, decl->span);
    s->decl = decl;
    decl->origin = ORIGIN_LOCAL;
    return s;
}

/* Bison's names for tokens are quoted strings; shows them without the
 * outer double quotes ("'data'" becomes 'data', "identifier" identifier). */
static void append_token_name(char *out, size_t cap, yysymbol_kind_t kind)
{
    const char *name = yysymbol_name(kind);
    size_t n = strlen(name);
    size_t used = strlen(out);
    if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
        name++;
        n -= 2;
    }
    if (used + n + 1 < cap)
        snprintf(out + used, cap - used, "%.*s", (int)n, name);
}

/* Returns the span just after the last non-blank character before OFFSET
 * when a line break lies between them, else an empty span. A missing ';'
 * is better shown at the end of its line than at the next line's token. */
static af_span end_of_previous_line(const lang_context *ctx, size_t offset)
{
    const char *src = ctx->diag.source;
    int newline = 0;
    size_t i = offset;
    while (i > 0 && (src[i - 1] == ' ' || src[i - 1] == '\t' || src[i - 1] == '\r' ||
                     src[i - 1] == '\n')) {
        newline |= src[i - 1] == '\n';
        i--;
    }
    if (!newline || i == 0)
        return (af_span){0, 0};
    return (af_span){i, i + 1};
}

/* Reports "expected A, B or C, found 'x'" at the unexpected token, or
 * "expected A before 'x'" at the end of the line before it. An invalid
 * token was already reported by the lexer. */
static int yyreport_syntax_error(const yypcontext_t *pc, void *scanner, lang_context *ctx,
                                 ast_program *program)
{
    enum { MAX_EXPECTED = 6 };
    (void)scanner;
    (void)program;
    if (yypcontext_token(pc) == YYSYMBOL_YYUNDEF)
        return 0;
    yysymbol_kind_t expected[MAX_EXPECTED];
    int count = yypcontext_expected_tokens(pc, expected, MAX_EXPECTED);
    af_span at = *yypcontext_location(pc);
    yysymbol_kind_t found = yypcontext_token(pc);

    char list[256] = "";
    for (int i = 0; i < count; i++) {
        if (i > 0)
            strcat(list, i + 1 == count ? " or " : ", ");
        append_token_name(list, sizeof list, expected[i]);
    }
    char what[128];
    if (found == YYSYMBOL_YYEOF)
        snprintf(what, sizeof what, "end of file");
    else
        snprintf(what, sizeof what, "'%.*s'", (int)(at.end - at.begin > 60 ? 60 : at.end - at.begin),
                 ctx->diag.source + at.begin);

    int semicolon = 0;
    for (int i = 0; i < count; i++)
        semicolon |= strcmp(yysymbol_name(expected[i]), "';'") == 0;
    af_span line_end = end_of_previous_line(ctx, at.begin);
    if (semicolon && line_end.end > 0 && found != YYSYMBOL_YYEOF)
        diag_error(&ctx->diag, line_end, NULL, "expected %s before %s", list, what);
    else if (count > 0)
        diag_error(&ctx->diag, at, NULL, "expected %s, found %s", list, what);
    else if (found == YYSYMBOL_YYEOF)
        diag_error(&ctx->diag, at, "check that every '{' has a matching '}'",
                   "unexpected end of file");
    else
        diag_error(&ctx->diag, at, NULL, "unexpected %s", what);
    return 0;
}

/* Called by bison only when its stack is full, which deep nesting causes. */
static void lang_yyerror(af_span *location, void *scanner, lang_context *ctx,
                         ast_program *program, const char *message)
{
    (void)scanner;
    (void)program;
    (void)message;
    diag_error(&ctx->diag, *location, NULL,
               "too many nested expressions (the parser's limit is %d levels)", YYMAXDEPTH);
}
