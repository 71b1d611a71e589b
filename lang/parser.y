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

static ast_expr *binary(lang_context *ctx, ast_operator oper, ast_expr *l, ast_expr *r,
                        af_span span);
static ast_expr *unary(lang_context *ctx, ast_operator oper, ast_expr *x, af_span span);
static ast_expr *call(lang_context *ctx, const char *name, af_span name_span, ast_expr *args,
                      af_span span);
static ast_expr *list_expr(lang_context *ctx, ast_expr_kind kind, ast_expr *items,
                           af_span span);
static ast_stmt *declaration(lang_context *ctx, ast_decl *decl);
static ast_stmt *assignment(lang_context *ctx, ast_expr *lhs, int oper, ast_expr *rhs,
                            af_span span);
static ast_stmt *with_args(lang_context *ctx, ast_stmt_kind kind, ast_expr *args,
                           af_span span);
static void set_bound(lang_context *ctx, ast_decl *d, const char *name, af_span span,
                      ast_expr *value);
static ast_decl *sized(ast_decl *d, ast_expr *rows, ast_expr *cols);
static ast_decl *make_array(lang_context *ctx, ast_expr *sizes, ast_decl *element,
                            af_span span);
static ast_decl *limit_unsized_dims(lang_context *ctx, ast_decl *d);
static ast_function *function(lang_context *ctx, ast_decl *result, const char *name,
                              af_span name_span, ast_decl *params, ast_stmt *body,
                              af_span span);
static const char *source_text(const lang_context *ctx, af_span span);
}

%union {
    long long int_value;
    double real_value;
    const char *name;
    ast_expr *expr;
    ast_stmt *stmt;
    ast_decl *decl;
    ast_function *function;
    int oper;
}

%token <name> IDENT "identifier"
%token <name> STRING "string"
%token <int_value> INT_LIT "integer"
%token <real_value> REAL_LIT "real number"
%token FUNCTIONS "'functions'" DATA "'data'" TDATA "'transformed data'"
%token PARAMETERS "'parameters'" TPARAMS "'transformed parameters'" MODEL "'model'"
%token GQ "'generated quantities'" TRANSFORMED "'transformed'"
%token INT "'int'" REAL "'real'" VECTOR "'vector'" ROW_VECTOR "'row_vector'"
%token MATRIX "'matrix'" ARRAY "'array'" SIMPLEX "'simplex'" ORDERED "'ordered'"
%token POSITIVE_ORDERED "'positive_ordered'" VOID "'void'"
%token FOR "'for'" IN "'in'" WHILE "'while'" IF "'if'" ELSE "'else'" BREAK "'break'"
%token CONTINUE "'continue'" RETURN "'return'" PRINT "'print'" REJECT_KEYWORD "'reject'"
%token TARGET "'target'" EXTERN "'extern'"
%token PLUS_ASSIGN "'+='" MINUS_ASSIGN "'-='" TIMES_ASSIGN "'*='" DIVIDE_ASSIGN "'/='"
%token OLD_ASSIGN "'<-'"
%token LE "'<='" GE "'>='" EQ "'=='" NE "'!='" AND "'&&'" OR "'||'"
%token ELT_MUL "'.*'" ELT_DIV "'./'" ELT_POW "'.^'" INT_DIV "'%/%'"

%type <expr> expr postfix args opt_args index indices printables printable
%type <stmt> stmt stmts block_body
%type <decl> basic_type element_type decl_type var_decl decls bounds fun_type
%type <decl> fun_params fun_param unsized_type
%type <function> fundef fundefs
%type <oper> assign_op

%precedence IFX
%precedence ELSE
%right '?' ':'
%left OR
%left AND
%left EQ NE
%left '<' '>' LE GE
/* A bound <lower=a> ends at '>': reducing it binds tighter than '>' but
 * looser than arithmetic, so <lower=a + 1> still works. */
%precedence BOUND_END
%left '+' '-'
%left '*' '/' '%' ELT_MUL ELT_DIV INT_DIV
%precedence UNARY
%right '^' ELT_POW

%%

program:
    functions_block data_block tdata_block params_block tparams_block model_block gq_block
  ;

functions_block:
    %empty
  | FUNCTIONS '{' fundefs '}'       { program->functions = $3; }
  ;

fundefs:
    %empty                          { $$ = NULL; }
  | fundef fundefs                  { $$ = $1; if ($1 != NULL) $1->next = $2; else $$ = $2; }
  | error '}' fundefs               { $$ = $3; }
  ;

fundef:
    fun_type IDENT '(' ')' stmt     { $$ = function(ctx, $1, $2, @2, NULL, $5, @$); }
  | fun_type IDENT '(' fun_params ')' stmt
      { $$ = function(ctx, $1, $2, @2, ast_reverse_decls($4), $6, @$); }
  | EXTERN fun_type IDENT '(' fun_params ')' IDENT STRING IDENT STRING ';'
      {
          $$ = function(ctx, $2, $3, @3, ast_reverse_decls($5), NULL, @$);
          $$->is_extern = 1;
          $$->library = $8;
          $$->derivative = $10;
          if (strcmp($7, "from") != 0 || strcmp($9, "derivative") != 0)
              diag_error(&ctx->diag, @$, "write: extern real f(real x) from \"lib.so\" derivative \"f_grad\";",
                         "invalid extern declaration");
      }
  | EXTERN fun_type IDENT '(' fun_params ')' IDENT STRING IDENT IDENT ';'
      {
          $$ = function(ctx, $2, $3, @3, ast_reverse_decls($5), NULL, @$);
          $$->is_extern = 1;
          $$->library = $8;
          if (strcmp($7, "from") != 0 || strcmp($9, "derivative") != 0 ||
              strcmp($10, "finite_difference") != 0)
              diag_error(&ctx->diag, @$, "write: ... derivative finite_difference;",
                         "invalid extern declaration");
      }
  ;

fun_type:
    VOID                            { $$ = ast_decl_new(ctx, TYPE_VOID, @$); }
  | unsized_type                    { $$ = limit_unsized_dims(ctx, $1); }
  ;

unsized_type:
    INT                             { $$ = ast_decl_new(ctx, TYPE_INT, @$); }
  | REAL                            { $$ = ast_decl_new(ctx, TYPE_REAL, @$); }
  | VECTOR                          { $$ = ast_decl_new(ctx, TYPE_VECTOR, @$); }
  | ROW_VECTOR                      { $$ = ast_decl_new(ctx, TYPE_ROW_VECTOR, @$); }
  | MATRIX                          { $$ = ast_decl_new(ctx, TYPE_MATRIX, @$); }
  | ARRAY '[' ']' unsized_type      { $$ = $4; $$->type.dims++; $$->span = @$; }
  | ARRAY '[' commas ']' unsized_type
      { $$ = $5; $$->type.dims += 1 + $<int_value>3; $$->span = @$; }
  | DATA unsized_type               { $$ = $2; $$->is_data_arg = 1; $$->span = @$; }
  ;

commas:
    ','                             { $<int_value>$ = 1; }
  | commas ','                      { $<int_value>$ = $<int_value>1 + 1; }
  ;

fun_params:
    fun_param                       { $$ = $1; }
  | fun_params ',' fun_param        { $3->next = $1; $$ = $3; }
  ;

fun_param:
    unsized_type IDENT
      { $$ = limit_unsized_dims(ctx, $1); $$->name = $2; $$->name_span = @2; $$->span = @$; $$->origin = ORIGIN_ARG; }
  ;

data_block:
    %empty
  | DATA '{' decls '}'
      { program->has_data = 1; program->data_span = @1; program->data = ast_reverse_decls($3); }
  ;

tdata_block:
    %empty
  | TDATA '{' stmts '}'             { program->tdata = ast_reverse_stmts($3); }
  ;

params_block:
    %empty
  | PARAMETERS '{' decls '}'        { program->params = ast_reverse_decls($3); }
  ;

tparams_block:
    %empty
  | TPARAMS '{' stmts '}'           { program->tparams = ast_reverse_stmts($3); }
  ;

model_block:
    %empty
  | MODEL '{' stmts '}'             { program->model = ast_reverse_stmts($3); }
  ;

gq_block:
    %empty
  | GQ '{' stmts '}'                { program->gq = ast_reverse_stmts($3); }
  ;

decls:
    %empty                          { $$ = NULL; }
  | decls var_decl                  { $2->next = $1; $$ = $2; }
  | decls error ';'                 { $$ = $1; }
  ;

bounds:
    IDENT '=' expr %prec BOUND_END
      { $$ = ast_decl_new(ctx, TYPE_ERROR, @$); set_bound(ctx, $$, $1, @1, $3); }
  | bounds ',' IDENT '=' expr %prec BOUND_END
      { $$ = $1; set_bound(ctx, $$, $3, @3, $5); }
  ;

element_type:
    basic_type                      { $$ = $1; }
  | basic_type '<' bounds '>'
      {
          $$ = $1;
          $$->constraint = $3->constraint;
          $$->lower = $3->lower;
          $$->upper = $3->upper;
          $$->offset = $3->offset;
          $$->multiplier = $3->multiplier;
      }
  | VECTOR '[' expr ']'             { $$ = sized(ast_decl_new(ctx, TYPE_VECTOR, @$), $3, NULL); }
  | VECTOR '<' bounds '>' '[' expr ']'
      { $$ = $3; $$->type.base = TYPE_VECTOR; $$->rows = $6; $$->span = @$; }
  | ROW_VECTOR '[' expr ']'
      { $$ = sized(ast_decl_new(ctx, TYPE_ROW_VECTOR, @$), NULL, $3); }
  | ROW_VECTOR '<' bounds '>' '[' expr ']'
      { $$ = $3; $$->type.base = TYPE_ROW_VECTOR; $$->cols = $6; $$->span = @$; }
  | MATRIX '[' expr ',' expr ']'    { $$ = sized(ast_decl_new(ctx, TYPE_MATRIX, @$), $3, $5); }
  | MATRIX '<' bounds '>' '[' expr ',' expr ']'
      { $$ = $3; $$->type.base = TYPE_MATRIX; $$->rows = $6; $$->cols = $8; $$->span = @$; }
  | SIMPLEX '[' expr ']'
      { $$ = sized(ast_decl_new(ctx, TYPE_VECTOR, @$), $3, NULL); $$->constraint = CONSTRAINT_SIMPLEX; }
  | ORDERED '[' expr ']'
      { $$ = sized(ast_decl_new(ctx, TYPE_VECTOR, @$), $3, NULL); $$->constraint = CONSTRAINT_ORDERED; }
  | POSITIVE_ORDERED '[' expr ']'
      {
          $$ = sized(ast_decl_new(ctx, TYPE_VECTOR, @$), $3, NULL);
          $$->constraint = CONSTRAINT_POSITIVE_ORDERED;
      }
  ;

basic_type:
    INT                             { $$ = ast_decl_new(ctx, TYPE_INT, @$); }
  | REAL                            { $$ = ast_decl_new(ctx, TYPE_REAL, @$); }
  ;

decl_type:
    element_type                    { $$ = $1; }
  | ARRAY '[' args ']' element_type { $$ = make_array(ctx, $3, $5, @$); }
  ;

var_decl:
    decl_type IDENT ';'
      { $$ = $1; $$->name = $2; $$->name_span = @2; $$->span = @$; }
  | decl_type IDENT '=' expr ';'
      { $$ = $1; $$->name = $2; $$->name_span = @2; $$->span = @$; $$->init = $4; }
  | decl_type IDENT '[' args ']' ';'
      {
          $$ = $1;
          $$->name = $2;
          $$->name_span = @2;
          $$->span = @$;
          const char *type = source_text(ctx, @1), *sizes = source_text(ctx, @4);
          int type_len = (int)(@1.end - @1.begin), sizes_len = (int)(@4.end - @4.begin);
          diag_error(&ctx->diag, @$, "afm accepts only the array syntax of Stan 2.33 and later",
                     "'%.*s %s[%.*s]' is old Stan array syntax; write 'array[%.*s] %.*s %s'",
                     type_len, type, $2, sizes_len, sizes, sizes_len, sizes, type_len, type, $2);
      }
  ;

stmts:
    %empty                          { $$ = NULL; }
  | stmts stmt                      { $2->next = $1; $$ = $2; }
  ;

block_body:
    '{' stmts '}'
      { $$ = ast_stmt_new(ctx, STMT_BLOCK, @$); $$->body = ast_reverse_stmts($2); }
  ;

assign_op:
    '='                             { $$ = 0; }
  | PLUS_ASSIGN                     { $$ = 1 + OPER_ADD; }
  | MINUS_ASSIGN                    { $$ = 1 + OPER_SUB; }
  | TIMES_ASSIGN                    { $$ = 1 + OPER_MUL; }
  | DIVIDE_ASSIGN                   { $$ = 1 + OPER_DIV; }
  ;

stmt:
    var_decl                        { $$ = declaration(ctx, $1); }
  | postfix assign_op expr ';'         { $$ = assignment(ctx, $1, $2, $3, @$); }
  | postfix OLD_ASSIGN expr ';'
      {
          $$ = assignment(ctx, $1, 0, $3, @$);
          diag_error(&ctx->diag, @2, "write '='", "'<-' is no longer Stan syntax");
      }
  | TARGET PLUS_ASSIGN expr ';'
      { $$ = ast_stmt_new(ctx, STMT_TARGET, @$); $$->rhs = $3; }
  | postfix '~' IDENT '(' opt_args ')' ';'
      {
          $$ = ast_stmt_new(ctx, STMT_TILDE, @$);
          $$->lhs = $1;
          $$->rhs = call(ctx, $3, @3, $5, @$);
      }
  | FOR '(' IDENT IN expr ':' expr ')' stmt
      {
          $$ = ast_stmt_new(ctx, STMT_FOR, @$);
          $$->decl = ast_decl_new(ctx, TYPE_INT, @3);
          $$->decl->name = $3;
          $$->decl->name_span = @3;
          $$->decl->origin = ORIGIN_LOOP;
          $$->lower = $5;
          $$->upper = $7;
          $$->body = $9;
      }
  | FOR '(' IDENT IN expr ')' stmt
      {
          $$ = ast_stmt_new(ctx, STMT_FOREACH, @$);
          $$->decl = ast_decl_new(ctx, TYPE_REAL, @3);
          $$->decl->name = $3;
          $$->decl->name_span = @3;
          $$->decl->origin = ORIGIN_LOOP;
          $$->rhs = $5;
          $$->body = $7;
      }
  | WHILE '(' expr ')' stmt
      { $$ = ast_stmt_new(ctx, STMT_WHILE, @$); $$->lower = $3; $$->body = $5; }
  | IF '(' expr ')' stmt %prec IFX
      { $$ = ast_stmt_new(ctx, STMT_IF, @$); $$->lower = $3; $$->body = $5; }
  | IF '(' expr ')' stmt ELSE stmt
      {
          $$ = ast_stmt_new(ctx, STMT_IF, @$);
          $$->lower = $3;
          $$->body = $5;
          $$->orelse = $7;
      }
  | BREAK ';'                       { $$ = ast_stmt_new(ctx, STMT_BREAK, @$); }
  | CONTINUE ';'                    { $$ = ast_stmt_new(ctx, STMT_CONTINUE, @$); }
  | RETURN ';'                      { $$ = ast_stmt_new(ctx, STMT_RETURN, @$); }
  | RETURN expr ';'                 { $$ = ast_stmt_new(ctx, STMT_RETURN, @$); $$->rhs = $2; }
  | PRINT '(' printables ')' ';'    { $$ = with_args(ctx, STMT_PRINT, $3, @$); }
  | REJECT_KEYWORD '(' printables ')' ';'   { $$ = with_args(ctx, STMT_REJECT, $3, @$); }
  | IDENT '(' opt_args ')' ';'
      { $$ = ast_stmt_new(ctx, STMT_CALL, @$); $$->rhs = call(ctx, $1, @1, $3, @1); $$->rhs->span = (af_span){@1.begin, @4.end}; }
  | block_body                      { $$ = $1; }
  | ';'                             { $$ = ast_stmt_new(ctx, STMT_BLOCK, @$); }
  | error ';'                       { $$ = ast_stmt_new(ctx, STMT_ERROR, @$); }
  | error '}'                       { $$ = ast_stmt_new(ctx, STMT_ERROR, @$); }
  ;

printables:
    printable                       { $$ = $1; }
  | printables ',' printable        { $3->next = $1; $$ = $3; }
  ;

printable:
    expr                            { $$ = $1; }
  | STRING                          { $$ = ast_expr_new(ctx, EXPR_STRING, @$); $$->name = $1; }
  ;

opt_args:
    %empty                          { $$ = NULL; }
  | args                            { $$ = $1; }
  ;

args:
    expr                            { $$ = $1; }
  | args ',' expr                   { $3->next = $1; $$ = $3; }
  ;

index:
    expr                            { $$ = $1; }
  | expr ':' expr                   { $$ = ast_expr_with(ctx, EXPR_RANGE, @$, 2, $1, $3, NULL); }
  | expr ':'                        { $$ = ast_expr_with(ctx, EXPR_RANGE, @$, 2, $1, NULL, NULL); }
  | ':' expr                        { $$ = ast_expr_with(ctx, EXPR_RANGE, @$, 2, NULL, $2, NULL); }
  | ':'                             { $$ = ast_expr_with(ctx, EXPR_RANGE, @$, 2, NULL, NULL, NULL); }
  ;

indices:
    index                           { $$ = $1; }
  | indices ',' index               { $3->next = $1; $$ = $3; }
  | indices ','                     { $$ = ast_expr_with(ctx, EXPR_RANGE, @2, 2, NULL, NULL, NULL); $$->next = $1; }
  ;

postfix:
    INT_LIT                         { $$ = ast_expr_new(ctx, EXPR_INT, @$); $$->int_value = $1; }
  | REAL_LIT                        { $$ = ast_expr_new(ctx, EXPR_REAL, @$); $$->real_value = $1; }
  | IDENT
      { $$ = ast_expr_new(ctx, EXPR_VAR, @$); $$->name = $1; $$->name_span = @1; }
  | IDENT '(' opt_args ')'          { $$ = call(ctx, $1, @1, $3, @$); }
  | IDENT '(' expr '|' opt_args ')'
      {
          ast_expr *args = $3;
          $3->next = NULL;
          if ($5 != NULL) {
              ast_expr *last = $5;
              while (last->next != NULL)
                  last = last->next;
              last->next = $3;
              args = $5;
          }
          $$ = call(ctx, $1, @1, args, @$);
          $$->bar = 1;
      }
  | postfix '[' indices ']'
      {
          $$ = ast_expr_new(ctx, EXPR_INDEX, @$);
          ast_expr *last = $3;
          while (last->next != NULL)
              last = last->next;
          last->next = $1;
          $1->next = NULL;
          ast_set_args(ctx, $$, $3);
      }
  | '[' args ']'                    { $$ = list_expr(ctx, EXPR_ROW_LITERAL, $2, @$); }
  | '(' expr ')'                    { $$ = $2; }
  | postfix '\''                    { $$ = unary(ctx, OPER_TRANSPOSE, $1, @$); }
  ;

expr:
    postfix                         { $$ = $1; }
  | '{' args '}'                    { $$ = list_expr(ctx, EXPR_ARRAY_LITERAL, $2, @$); }
  | '-' expr %prec UNARY            { $$ = unary(ctx, OPER_NEG, $2, @$); }
  | '!' expr %prec UNARY            { $$ = unary(ctx, OPER_NOT, $2, @$); }
  | '+' expr %prec UNARY            { $$ = $2; }
  | expr '?' expr ':' expr
      { $$ = ast_expr_with(ctx, EXPR_TERNARY, @$, 3, $1, $3, $5); }
  | expr '+' expr                   { $$ = binary(ctx, OPER_ADD, $1, $3, @$); }
  | expr '-' expr                   { $$ = binary(ctx, OPER_SUB, $1, $3, @$); }
  | expr '*' expr                   { $$ = binary(ctx, OPER_MUL, $1, $3, @$); }
  | expr '/' expr                   { $$ = binary(ctx, OPER_DIV, $1, $3, @$); }
  | expr '%' expr                   { $$ = binary(ctx, OPER_MOD, $1, $3, @$); }
  | expr INT_DIV expr               { $$ = binary(ctx, OPER_INT_DIV, $1, $3, @$); }
  | expr '^' expr                   { $$ = binary(ctx, OPER_POW, $1, $3, @$); }
  | expr ELT_POW expr               { $$ = binary(ctx, OPER_ELT_POW, $1, $3, @$); }
  | expr ELT_MUL expr               { $$ = binary(ctx, OPER_ELT_MUL, $1, $3, @$); }
  | expr ELT_DIV expr               { $$ = binary(ctx, OPER_ELT_DIV, $1, $3, @$); }
  | expr '<' expr                   { $$ = binary(ctx, OPER_LT, $1, $3, @$); }
  | expr LE expr                    { $$ = binary(ctx, OPER_LE, $1, $3, @$); }
  | expr '>' expr                   { $$ = binary(ctx, OPER_GT, $1, $3, @$); }
  | expr GE expr                    { $$ = binary(ctx, OPER_GE, $1, $3, @$); }
  | expr EQ expr                    { $$ = binary(ctx, OPER_EQ, $1, $3, @$); }
  | expr NE expr                    { $$ = binary(ctx, OPER_NE, $1, $3, @$); }
  | expr AND expr                   { $$ = binary(ctx, OPER_AND, $1, $3, @$); }
  | expr OR expr                    { $$ = binary(ctx, OPER_OR, $1, $3, @$); }
  ;

%%

static ast_expr *binary(lang_context *ctx, ast_operator oper, ast_expr *l, ast_expr *r,
                        af_span span)
{
    ast_expr *e = ast_expr_with(ctx, EXPR_BINARY, span, 2, l, r, NULL);
    e->oper = oper;
    return e;
}

static ast_expr *unary(lang_context *ctx, ast_operator oper, ast_expr *x, af_span span)
{
    ast_expr *e = ast_expr_with(ctx, EXPR_UNARY, span, 1, x, NULL, NULL);
    e->oper = oper;
    return e;
}

static ast_expr *list_expr(lang_context *ctx, ast_expr_kind kind, ast_expr *items,
                           af_span span)
{
    ast_expr *e = ast_expr_new(ctx, kind, span);
    ast_set_args(ctx, e, items);
    return e;
}

static ast_stmt *assignment(lang_context *ctx, ast_expr *lhs, int oper, ast_expr *rhs,
                            af_span span)
{
    ast_stmt *s = ast_stmt_new(ctx, STMT_ASSIGN, span);
    s->lhs = lhs;
    s->rhs = rhs;
    s->compound = oper != 0;
    s->oper = oper != 0 ? (ast_operator)(oper - 1) : OPER_ADD;
    return s;
}

/* ITEMS is the reversed argument list of print or reject. */
static ast_stmt *with_args(lang_context *ctx, ast_stmt_kind kind, ast_expr *items,
                           af_span span)
{
    ast_stmt *s = ast_stmt_new(ctx, kind, span);
    ast_expr holder = {0};
    ast_set_args(ctx, &holder, items);
    s->args = holder.args;
    s->nargs = holder.nargs;
    return s;
}

/* Records one entry of <lower=..., upper=..., offset=..., multiplier=...>. */
static void set_bound(lang_context *ctx, ast_decl *d, const char *name, af_span span,
                      ast_expr *value)
{
    int bounds = strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0;
    int affine = strcmp(name, "offset") == 0 || strcmp(name, "multiplier") == 0;
    if (!bounds && !affine) {
        diag_error(&ctx->diag, span, "write lower=, upper=, offset= or multiplier=",
                   "unknown constraint '%s'", name);
        return;
    }
    ast_constraint kind = bounds ? CONSTRAINT_BOUNDS : CONSTRAINT_AFFINE;
    if (d->constraint != CONSTRAINT_NONE && d->constraint != kind) {
        diag_error(&ctx->diag, span, NULL,
                   "bounds (lower, upper) cannot be combined with offset or multiplier");
        return;
    }
    ast_expr **slot = strcmp(name, "lower") == 0    ? &d->lower
                      : strcmp(name, "upper") == 0  ? &d->upper
                      : strcmp(name, "offset") == 0 ? &d->offset
                                                    : &d->multiplier;
    if (*slot != NULL)
        diag_error(&ctx->diag, span, NULL, "'%s' is given twice", name);
    *slot = value;
    d->constraint = kind;
}

static ast_decl *sized(ast_decl *d, ast_expr *rows, ast_expr *cols)
{
    d->rows = rows;
    d->cols = cols;
    return d;
}

/* Caps the dimensions of a function's argument or return type, which the
 * grammar adds up from 'array[]' and commas without a bound. */
static ast_decl *limit_unsized_dims(lang_context *ctx, ast_decl *d)
{
    if (d->type.dims > AF_MAX_ARRAY_DIMS) {
        diag_error(&ctx->diag, d->span, NULL, "too many array dimensions (limit is %d)",
                   AF_MAX_ARRAY_DIMS);
        d->type.dims = AF_MAX_ARRAY_DIMS;
    }
    return d;
}

/* SIZES is the reversed list of array sizes. */
static ast_decl *make_array(lang_context *ctx, ast_expr *sizes, ast_decl *element,
                            af_span span)
{
    ast_expr holder = {0};
    ast_set_args(ctx, &holder, sizes);
    if (holder.nargs > AF_MAX_ARRAY_DIMS) {
        diag_error(&ctx->diag, span, NULL, "too many array dimensions (limit is %d)",
                   AF_MAX_ARRAY_DIMS);
        holder.nargs = AF_MAX_ARRAY_DIMS;
    }
    for (size_t k = 0; k < holder.nargs; k++)
        element->array_sizes[k] = holder.args[k];
    element->type.dims = (int)holder.nargs;
    element->span = span;
    return element;
}

static ast_function *function(lang_context *ctx, ast_decl *result, const char *name,
                              af_span name_span, ast_decl *params, ast_stmt *body,
                              af_span span)
{
    ast_function *f = arena_alloc(&ctx->arena, sizeof *f);
    f->name = name;
    f->name_span = name_span;
    f->span = span;
    f->result = result->type;
    f->params = params;
    for (ast_decl *p = params; p != NULL; p = p->next)
        f->nparams++;
    f->body = body != NULL && body->kind == STMT_BLOCK && body->span.end == body->span.begin + 1
                  ? NULL
                  : body;
    return f;
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
    diag_source f = diag_source_at(&ctx->diag, offset);
    const char *src = f.text;
    int newline = 0;
    size_t i = offset - f.base;
    while (i > 0 && (src[i - 1] == ' ' || src[i - 1] == '\t' || src[i - 1] == '\r' ||
                     src[i - 1] == '\n')) {
        newline |= src[i - 1] == '\n';
        i--;
    }
    if (!newline || i == 0)
        return (af_span){0, 0};
    /* When that line is an #include, the text before OFFSET is the end of
     * the included file. */
    for (size_t s = 1; s < ctx->diag.source_count; s++) {
        const diag_source *inc = &ctx->diag.sources[s];
        if (inc->directive.begin < f.base + i && f.base + i <= inc->directive.end) {
            af_span inside = end_of_previous_line(ctx, inc->base + inc->len);
            return inside.end > 0 ? inside : (af_span){f.base + i, f.base + i + 1};
        }
    }
    return (af_span){f.base + i, f.base + i + 1};
}

/* Returns the source text at SPAN, whose length the caller takes from the
 * span. A span that runs into another file (an #include inside it) is the
 * empty string, so the caller never reads past a file's end. */
static const char *source_text(const lang_context *ctx, af_span span)
{
    diag_source f = diag_source_at(&ctx->diag, span.begin);
    if (span.end < span.begin || span.end - f.base > f.len)
        return "";
    return f.text + (span.begin - f.base);
}

/* Returns a hint for a token of LEN bytes at TEXT that starts a Stan
 * feature afm lacks, or NULL. The source after the token is read up to its
 * file's end to tell `target()` and `T[` from other uses of the names. */
static const char *unsupported_hint(const char *text, size_t len, const char *end)
{
    static const char *const types[] = {"cholesky_factor_corr", "cholesky_factor_cov",
                                        "corr_matrix",          "cov_matrix",
                                        "unit_vector",          "sum_to_zero_vector",
                                        "row_stochastic_matrix", "column_stochastic_matrix"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (strlen(types[k]) == len && strncmp(text, types[k], len) == 0)
            return "afm does not support this Stan type yet; docs/language.md lists the "
                   "differences from Stan";

    const char *next = text + len;
    while (next < end && (*next == ' ' || *next == '\t'))
        next++;
    if (len == 6 && strncmp(text, "target", 6) == 0 && next < end && *next == '(')
        return "afm does not support target() yet: accumulate the terms in a local variable "
               "as well";
    if (len == 1 && text[0] == 'T' && next < end && *next == '[')
        return "afm does not support truncation T[, ] yet: subtract the log of the "
               "probability inside the bounds, as in target += -normal_lccdf(L | mu, sigma) "
               "for T[L, ]";
    return NULL;
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
                 source_text(ctx, at));

    const char *hint = NULL;
    if (found != YYSYMBOL_YYEOF) {
        diag_source f = diag_source_at(&ctx->diag, at.begin);
        const char *text = source_text(ctx, at);
        if (text[0] != '\0')
            hint = unsupported_hint(text, at.end - at.begin, f.text + f.len);
    }

    int semicolon = 0;
    for (int i = 0; i < count; i++)
        semicolon |= strcmp(yysymbol_name(expected[i]), "';'") == 0;
    if (found == YYSYMBOL_YYEOF)
        ctx->incomplete = 1;
    af_span line_end = end_of_previous_line(ctx, at.begin);
    if (semicolon && line_end.end > 0 && found != YYSYMBOL_YYEOF && !hint)
        diag_error(&ctx->diag, line_end, NULL, "expected %s before %s", list, what);
    else if (count > 0)
        diag_error(&ctx->diag, at, hint, "expected %s, found %s", list, what);
    else if (found == YYSYMBOL_YYEOF)
        diag_error(&ctx->diag, at, "check that every '{' has a matching '}'",
                   "unexpected end of file");
    else
        diag_error(&ctx->diag, at, hint, "unexpected %s", what);
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
