/*
 * fuzz_logcodec.c: the MessagePack decoder of queue entries (one entry, then the packed-batch
 * walk), and the COPY row of what it accepts.
 */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "ingest/logcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char mem[4096];
    struct ldg_arena a;
    ldg_arena_init(&a, mem, sizeof mem);
    struct ldg_log l;
    struct ldg_buf row;
    ldg_buf_init(&row);
    /* A private copy of exactly `size` bytes, so ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (ldg_logcodec_decode(copy, size, &a, &l) == 0) {
        ldg_logcodec_copy_row(&l, &row);
        struct ldg_buf again;
        ldg_buf_init(&again);
        if (ldg_logcodec_encode(&l, &again) != 0)
            abort();
        ldg_buf_free(&again);
    }
    size_t off = 0;
    for (int i = 0; i < 64 && off < size; i++) {
        size_t used = 0;
        int rc = ldg_logcodec_decode_next(copy + off, size - off, &a, &l, &used);
        if (rc == 0)
            ldg_logcodec_copy_row(&l, &row);
        if (used == 0)
            break;
        if (used > size - off)
            abort();
        off += used;
    }
    free(copy);
    ldg_buf_free(&row);
    ldg_arena_reset(&a);
    return 0;
}
