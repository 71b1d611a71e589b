/* libFuzzer target for the model compiler: the input is model source text,
 * compiled without data through the lexer, parser, checker and lowering. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_compile(data, size, NULL);
}
