/* af_lang: the .afm compiler. Reads a model file and its JSON data, checks
 * them, and lowers the model block to an expression graph over the
 * unconstrained parameter vector z. It does not evaluate the graph: that is
 * the runtime's evaluator (af_eval.h). Knows nothing of flows. */
#ifndef AF_LANG_H
#define AF_LANG_H

#include <stddef.h>

typedef struct af_model af_model;

/* Compile MODEL_PATH with the data in DATA_PATH (a CmdStan-style JSON file,
 * or NULL when the model has no data block). Returns 0 and sets *OUT on
 * success. On failure returns non-zero, sets *OUT to NULL and stores in
 * *MESSAGE a malloc'ed text with every diagnostic, each as
 * "file:line:col: error: text", the source line and a caret underline; the
 * caller frees it. */
int af_model_compile(const char *model_path, const char *data_path, af_model **out,
                     char **message);

void af_model_free(af_model *model);

/* Dimension d of the unconstrained parameter vector z. */
size_t af_model_dim(const af_model *model);

/* Number of output columns (the parameters flattened in declaration order,
 * on the constrained scale) and the name of column I ("x.1", "mu"). */
size_t af_model_column_count(const af_model *model);
const char *af_model_column_name(const af_model *model, size_t i);

/* Maps one unconstrained point Z (d values) to the output columns VALUES
 * (af_model_column_count values). */
void af_model_constrain(const af_model *model, const double *z, double *values);

#endif
