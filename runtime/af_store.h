/* af_store: flow files on disk. Identifies a run by hashes of its model
 * files, extern libraries, data file and training settings, reuses or
 * resumes a flow whose identity matches, rejects a corrupt or foreign one,
 * and saves atomically. */
#ifndef AF_STORE_H
#define AF_STORE_H

#include <stddef.h>

#include "af_flow.h"
#include "af_lang.h"

/* Hashes the bytes of MODEL's source files (the model file and every file
 * it includes) and of the shared libraries of its extern functions, of
 * DATA_PATH (may be NULL) and the settings in OPTIONS into *ID. Returns 0,
 * or non-zero with a message. */
int af_store_identity(const af_model *model, const char *data_path,
                      const af_flow_options *options, af_flow_identity *id, char *message,
                      size_t message_len);

/* Loads the flow file PATH when it exists. Returns 0 with *OUT NULL when
 * there is no file, 0 with *OUT set when its identity equals EXPECTED, and
 * non-zero with a message when it cannot be read, is corrupt, or was made
 * for another model, data or settings. */
int af_store_load(const char *path, const af_flow_identity *expected, af_flow **out,
                  char *message, size_t message_len);

/* Checks that PATH is absent, empty or a flow file, so that --retrain may
 * replace it. Returns 0, or non-zero with a message. */
int af_store_check_replaceable(const char *path, char *message, size_t message_len);

/* Saves FLOW with ID to PATH atomically. */
int af_store_save(const char *path, const af_flow *flow, const af_flow_identity *id,
                  char *message, size_t message_len);

#endif
