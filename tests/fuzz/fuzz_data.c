/* libFuzzer target for the JSON data reader: the input is data text, read
 * against the fixed model data_model.afm, whose data block declares one
 * variable of each kind. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_compile(data, size, AF_FUZZ_DATA_MODEL);
}
