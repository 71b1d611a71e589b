/* af_eval: evaluates a compiled model's log-density log q(z) and its score
 * grad log q(z) for a batch of unconstrained points, by running the model's
 * expression graph with forward-mode tangents. One workspace per thread. */
#ifndef AF_EVAL_H
#define AF_EVAL_H

#include <stddef.h>

#include "af_lang.h"

typedef struct af_eval af_eval;

/* Creates a workspace for MODEL, which must outlive it. Returns NULL when
 * out of memory. Memory use is bounded by an internal chunk size, never by
 * the batch size. */
af_eval *af_eval_new(const af_model *model);
void af_eval_free(af_eval *eval);

/* Same as af_eval_new with a workspace of about BUDGET_BYTES: the chunk
 * holds as many points as fit, at least 1 and at most 1024. */
af_eval *af_eval_new_with_budget(const af_model *model, size_t budget_bytes);

/* Sets the value that the model's annealing_level reads, in [0, 1]; 1 until
 * set. Affects only models for which af_model_uses_level is non-zero. */
void af_eval_set_level(af_eval *eval, double level);

/* Points per chunk, which af_eval_logp evaluates together. */
size_t af_eval_chunk_size(const af_eval *eval);

/* Evaluates N points Z (row-major, N x d). Writes LOGP[N] and, when SCORE is
 * not NULL, SCORE[N x d]. A point outside the support gets -INFINITY and a
 * zero score. A point where the log-density is NaN (an invalid argument,
 * such as the log or sqrt of a negative number) gets NAN and a zero score:
 * callers that weigh points treat it as weight 0. Returns 0, or non-zero with a message in MESSAGE (capacity
 * MESSAGE_LEN) when evaluation fails. */
int af_eval_logp(af_eval *eval, const double *z, size_t n, double *logp, double *score,
                 char *message, size_t message_len);

#endif
