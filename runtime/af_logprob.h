/* af_logprob: the log-density and its gradient at points given in a file,
 * like CmdStan's log_prob method: afrun MODEL --log-prob POINTS. */
#ifndef AF_LOGPROB_H
#define AF_LOGPROB_H

#include <stddef.h>
#include <stdio.h>

#include "af_eval.h"
#include "af_lang.h"

/* Reads the points in PATH and writes to OUT a CSV with lp__ and the
 * gradient g.1 ... g.d with respect to the unconstrained parameters, one row
 * per point. PATH holds a JSON array of points (each an array of numbers) or
 * CSV rows of numbers; a CSV header row is skipped, or, with CONSTRAINED,
 * used to find the parameter columns by name (so an afrun output file
 * works). Points are unconstrained (d values) unless CONSTRAINED, when they
 * are the parameters' own values. When PRINTS is not NULL, the model's
 * print statements that depend on parameters run at each point, in the
 * order of the points, and write to PRINTS (af_model_print_at). A point
 * where the log-density is NaN gets lp__ nan and a zero gradient. Returns 0,
 * with a warning in MESSAGE when some lp__ is NaN or else an empty MESSAGE,
 * or non-zero with a message naming the file, the row and the fault. */
int af_logprob_run(const af_model *model, af_eval *eval, const char *path, int constrained,
                   FILE *out, FILE *prints, char *message, size_t message_len);

#endif
