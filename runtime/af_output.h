/* af_output: CmdStan-style sample files and the summary table. Writes files
 * atomically (a temporary file in the same folder, then rename), so an
 * existing output survives a failed run. */
#ifndef AF_OUTPUT_H
#define AF_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

/* One "# key = value" line of the CSV header. */
typedef struct {
    const char *key;
    const char *value;
} af_output_setting;

/* A table of draws: N rows of the columns lp__, lp_approx__, log_weight and
 * then COLUMNS named NAMES, row-major in VALUES (N x COLUMNS). */
typedef struct {
    size_t n, columns;
    const char *const *names;
    const double *values;
    const double *lp, *lp_approx, *log_weight;
} af_output_draws;

/* Checks that a file can be created next to PATH, before a long run that
 * ends by writing it. Returns 0, or non-zero with a message. */
int af_output_check_writable(const char *path, char *message, size_t message_len);

/* Writes DRAWS to PATH with the SETTINGS as header comments. Returns 0, or
 * non-zero with a message naming the file and the system error. */
int af_output_write_csv(const char *path, const af_output_setting *settings,
                        size_t n_settings, const af_output_draws *draws, char *message,
                        size_t message_len);

/* Writes SIZE BYTES to PATH atomically. Returns 0, or non-zero with a
 * message naming the file and the system error. */
int af_output_write_bytes(const char *path, const void *bytes, size_t size, char *message,
                          size_t message_len);

struct af_weights_summary;

/* Prints the summary table of DRAWS (mean, sd, 5%, 50%, 95% per column) and
 * the weight diagnostics WEIGHTS (of the draws before any resampling) to
 * OUT. With WEIGHTED set the estimates use the draws' importance weights
 * (self-normalised), else equal weights (for resampled draws). Returns 0,
 * or non-zero when out of memory. */
int af_output_print_summary(FILE *out, const af_output_draws *draws,
                            const struct af_weights_summary *weights, int weighted);

#endif
