/* af_lang: the .afm compiler. Reads a model file and its JSON data, checks
 * them, and lowers the model block to an expression graph over the
 * unconstrained parameter vector z. It does not evaluate the graph: that is
 * the runtime's evaluator (af_eval.h). Knows nothing of flows. */
#ifndef AF_LANG_H
#define AF_LANG_H

#include <stddef.h>

typedef struct af_model af_model;

/* Results of af_model_compile. AF_LANG_INCOMPLETE means the source ended
 * inside a block, a bracket or a comment, so that a REPL can read another
 * line and try again. */
enum { AF_LANG_OK = 0, AF_LANG_ERROR = -1, AF_LANG_INCOMPLETE = -2 };

/* Compiler options; zero-initialise for the defaults. */
typedef struct {
    /* Permit extern functions from shared libraries. Loading native code
     * runs it with the user's rights, so it is off by default. */
    int allow_extern;
} af_lang_options;

/* Compile MODEL_PATH with the data in DATA_PATH (a CmdStan-style JSON file,
 * or NULL when the model has no data block). Returns 0 and sets *OUT on
 * success. On failure returns non-zero, sets *OUT to NULL and stores in
 * *MESSAGE a malloc'ed text with every diagnostic, each as
 * "file:line:col: error: text", the source line and a caret underline; the
 * caller frees it. The failure status is AF_LANG_INCOMPLETE for an unfinished
 * input, else AF_LANG_ERROR. Extern functions are rejected. */
int af_model_compile(const char *model_path, const char *data_path, af_model **out,
                     char **message);

/* Same as af_model_compile with options OPTS (NULL for the defaults). */
int af_model_compile_opts(const char *model_path, const char *data_path,
                          const af_lang_options *opts, af_model **out, char **message);

void af_model_free(af_model *model);

/* Dimension d of the unconstrained parameter vector z. */
size_t af_model_dim(const af_model *model);

/* Number of output columns and the name of column I ("mu", "x.1",
 * "A.2.1"): the parameters on the constrained scale, then the transformed
 * parameters, then the generated quantities, each in declaration order and
 * flattened column-major (the first index runs fastest), as CmdStan does. */
size_t af_model_column_count(const af_model *model);
const char *af_model_column_name(const af_model *model, size_t i);

/* Number of the first output columns that hold the parameters themselves
 * (what af_model_unconstrain reads). */
size_t af_model_parameter_column_count(const af_model *model);

/* Maps one unconstrained point Z (d values) to the output columns VALUES
 * (af_model_column_count values). Returns 0, or non-zero with a message in
 * MESSAGE (capacity MESSAGE_LEN) when a reject in generated quantities is
 * reached at Z ("model.afm:12:5: reject in generated quantities: ...") or
 * when the columns cannot be evaluated, which writes NaN. */
int af_model_constrain(const af_model *model, const double *z, double *values, char *message,
                       size_t message_len);

/* Inverse of the parameter transforms: maps the constrained parameter
 * values VALUES (the first columns of af_model_constrain's layout, one per
 * parameter element) to the unconstrained point Z (d values). Returns 0, or
 * non-zero with a message in MSG (capacity LEN) when a value lies outside
 * its parameter's support. */
int af_model_unconstrain(const af_model *model, const double *values, double *z, char *msg,
                         size_t len);

/* Non-zero when the model block reads annealing_level, so that the model
 * defines its own annealing path. */
int af_model_uses_level(const af_model *model);

/* Text of the print statements that ran while compiling (on values known
 * from data), or NULL when there was none. */
const char *af_model_printed(const af_model *model);

struct cJSON;

/* Parses the LEN bytes of TEXT as JSON into *ROOT. Returns 0, or -1 with
 * the error's line and column (from 1) and its likely cause in REASON: a
 * text that ends before its last value, a bare NaN or Infinity, or else the
 * text at the error. The data and --log-prob readers share it. */
int af_json_parse(const char *text, size_t len, struct cJSON **root, size_t *line,
                  size_t *column, char *reason, size_t reason_len);

/* Sets *NAME to a name that OBJECT contains twice, or NULL: cJSON keeps
 * every copy, and a lookup would take the first. Returns 0, or -1 when out
 * of memory. */
int af_json_repeated_name(const struct cJSON *object, const char **name);

/* Text of the compiler's warnings ("data.json: warning: ..." lines), or
 * NULL when there was none. */
const char *af_model_warnings(const af_model *model);

/* Runs, at the unconstrained point Z, the print statements that the
 * compiler could not run: those of values that depend on parameters and
 * those inside an if on parameters. Each that runs at Z adds its line to
 * *TEXT, in the order of the program; a reject reached at Z adds
 * "model.afm:12:5: reject: MESSAGE". Sets *TEXT to a malloc'ed text, or
 * NULL when none ran. Returns 0, or non-zero with a message in MESSAGE
 * (capacity MESSAGE_LEN) when the statements cannot be evaluated. The
 * evaluator never runs them, so training and sampling print nothing. */
int af_model_print_at(const af_model *model, const double *z, char **text, char *message,
                      size_t message_len);

/* Number of files the model was read from, and the path of file I: the
 * model file first, then every file it includes (at any depth) once, in
 * the order they were first included. */
size_t af_model_source_count(const af_model *model);
const char *af_model_source_path(const af_model *model, size_t i);

/* Number of extern functions the model opened, and the path of the shared
 * library of function I as the dynamic linker loaded it (several functions
 * may share one library), or NULL when the linker reports no path. */
size_t af_model_extern_count(const af_model *model);
const char *af_model_extern_library(const af_model *model, size_t i);

#endif
