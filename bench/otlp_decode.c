/*
 * otlp_decode: CPU cost per log record of turning a request body into queue entries, OTLP/protobuf
 * (decode + map + validate + encode) against the v1 batch JSON of the same logs (parse + validate +
 * encode). Usage: otlp_decode OTLP.pb BATCH.json [ROUNDS]; bodies from bench/otlpbodies.py and
 * bench/genlogs.py. Prints µs per record for both. Not installed; not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "ingest/logcodec.h"
#include "ingest/logentry.h"
#include "ingest/otlplog.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t encode_all(cJSON *const *logs, size_t n, int64_t now_us, struct ldg_arena *a, struct ldg_buf *mp)
{
    size_t ok = 0;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        struct ldg_log l;
        if (logs[i] && ldg_logentry_parse(logs[i], 1, now_us, a, &l, err, sizeof err) == 0 &&
            ldg_logcodec_encode(&l, mp) == 0)
            ok++;
    }
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OTLP.pb BATCH.json [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 50;
    size_t plen, jlen;
    char *pb = slurp(argv[1], &plen), *js = slurp(argv[2], &jlen);
    int64_t now_us = (int64_t)time(NULL) * 1000000;
    struct ldg_buf mp;
    ldg_buf_init(&mp);
    size_t records = 0, ok_otlp = 0, ok_json = 0;
    double t0 = now_s();
    for (int r = 0; r < rounds; r++) {
        struct ldg_arena a;
        ldg_arena_init(&a, NULL, 0);
        struct ldg_otlp_logs logs;
        char err[256];
        if (ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, pb, plen, now_us, 100000, &a, &logs, err, sizeof err) < 0) {
            fprintf(stderr, "decode: %s\n", err);
            return 1;
        }
        records = logs.n;
        ldg_buf_reset(&mp);
        ok_otlp = encode_all(logs.logs, logs.n, now_us, &a, &mp);
        ldg_arena_free(&a);
    }
    double t_otlp = now_s() - t0;
    t0 = now_s();
    size_t njson = 0;
    for (int r = 0; r < rounds; r++) {
        struct ldg_arena a;
        ldg_arena_init(&a, NULL, 0);
        cJSON *root = ldg_json_parse_in(js, jlen, &a, NULL);
        const cJSON *arr = ldg_json_member(root, "logs");
        njson = (size_t)cJSON_GetArraySize(arr);
        cJSON **v = malloc(njson * sizeof *v);
        size_t i = 0;
        for (cJSON *it = arr->child; it; it = it->next)
            v[i++] = it;
        ldg_buf_reset(&mp);
        ok_json = encode_all(v, njson, now_us, &a, &mp);
        free(v);
        ldg_arena_free(&a);
    }
    double t_json = now_s() - t0;
    printf("otlp/protobuf: %zu records (%zu valid), %.2f us per record\n", records, ok_otlp,
           t_otlp * 1e6 / (double)rounds / (double)records);
    printf("batch/json:    %zu records (%zu valid), %.2f us per record\n", njson, ok_json,
           t_json * 1e6 / (double)rounds / (double)njson);
    ldg_buf_free(&mp);
    free(pb);
    free(js);
    return 0;
}
