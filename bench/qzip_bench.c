/*
 * qzip_bench: the queue entry codecs (ingest/qzip.h) on given files, each one a request's logs:
 * compressed size and CPU per MiB to compress and to decompress, for raw deflate (zlib level 1) and
 * the LZ77 codec, measured alternately in one run (median of the rounds).
 *
 *   build/release/bench/qzip_bench FILE...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "ingest/qzip.h"

#define ROUNDS 7

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qzip_bench FILE...\n");
        return 2;
    }
    struct ldg_buf *in = calloc((size_t)argc, sizeof *in);
    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        char chunk[65536];
        size_t k;
        ldg_buf_init(&in[i]);
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
            ldg_buf_put(&in[i], chunk, k);
        fclose(f);
        total += ldg_buf_size(&in[i]);
    }
    static const enum ldg_qzip_method methods[] = {LDG_QZIP_DEFLATE, LDG_QZIP_LZ};
    static const char *const names[] = {"deflate-1", "lz"};
    double ct[2][ROUNDS], dt[2][ROUNDS];
    size_t out_bytes[2] = {0, 0};
    struct ldg_buf mp, scratch, back;
    ldg_buf_init(&mp);
    ldg_buf_init(&scratch);
    ldg_buf_init(&back);
    for (int r = 0; r < ROUNDS; r++) {
        for (int m = 0; m < 2; m++) {
            double c = 0, d = 0;
            size_t bytes = 0;
            for (int i = 1; i < argc; i++) {
                ldg_buf_reset(&mp);
                ldg_buf_put(&mp, ldg_buf_head(&in[i]), ldg_buf_size(&in[i]));
                double t0 = now_s();
                bool packed = ldg_qzip_pack_with(&mp, &scratch, methods[m]);
                double t1 = now_s();
                c += t1 - t0;
                bytes += ldg_buf_size(&mp);
                if (!packed)
                    continue;
                size_t used;
                ldg_buf_reset(&back);
                t0 = now_s();
                int rc = ldg_qzip_unpack(ldg_buf_head(&mp), ldg_buf_size(&mp), &back, &used);
                d += now_s() - t0;
                if (rc != 0 || ldg_buf_size(&back) != ldg_buf_size(&in[i]) ||
                    memcmp(ldg_buf_head(&back), ldg_buf_head(&in[i]), ldg_buf_size(&back)) != 0) {
                    fprintf(stderr, "%s: round trip failed on %s\n", names[m], argv[i]);
                    return 1;
                }
            }
            ct[m][r] = c;
            dt[m][r] = d;
            out_bytes[m] = bytes;
        }
    }
    double mib = (double)total / 1048576.0;
    printf("qzip_bench: %d files, %.2f MiB, median of %d rounds, CPU time\n", argc - 1, mib, ROUNDS);
    for (int m = 0; m < 2; m++) {
        qsort(ct[m], ROUNDS, sizeof(double), cmp);
        qsort(dt[m], ROUNDS, sizeof(double), cmp);
        printf("%-10s ratio %.3f (%.2fx smaller)  compress %7.2f ms/MiB  decompress %6.2f ms/MiB\n", names[m],
               (double)out_bytes[m] / (double)total, (double)total / (double)out_bytes[m],
               ct[m][ROUNDS / 2] * 1000 / mib, dt[m][ROUNDS / 2] * 1000 / mib);
    }
    for (int i = 1; i < argc; i++)
        ldg_buf_free(&in[i]);
    free(in);
    ldg_buf_free(&mp);
    ldg_buf_free(&scratch);
    ldg_buf_free(&back);
    return 0;
}
