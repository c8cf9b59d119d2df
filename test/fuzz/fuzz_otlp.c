/*
 * fuzz_otlp.c: the OTLP receiver's decoders. The first byte picks the signal (logs, traces,
 * metrics: byte % 3), the encoding (protobuf, OTLP/JSON: byte / 3 % 2) and whether the project has
 * a retention bound (byte / 6 % 2); the rest is the request body, decoded with the receiver's limits
 * (src/roles/ingest/otlp.c) and then taken down the receiver's path: every mapped log object through
 * log validation and the queue's MessagePack encoding, every COPY line into a queue row item and
 * back, and the response or google.rpc.Status body in the request's encoding. A fixed clock keeps
 * runs reproducible.
 *
 * Checked beyond memory safety: a failed decode leaves a message; counts add up (rows + rejected
 * = items, one COPY line per row); a row item decodes back to its line; every client-facing message
 * is valid UTF-8 (a protobuf string field must be); a JSON response parses.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "ingest/logcodec.h"
#include "ingest/logentry.h"
#include "ingest/otelrow.h"
#include "ingest/otlplog.h"

#define NOW_US 1765100000000000LL /* 2025-12-07T09:33:20Z */
#define PROJECT_ID 42
#define RETENTION_US (30 * 86400000000LL)
#define MAX_RECORDS 1000 /* the receiver's OTLP_MAX_RECORDS (log records, spans) */
#define MAX_POINTS 10000 /* the receiver's OTLP_MAX_POINTS */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void utf8_or_abort(const char *s, size_t n)
{
    size_t cp;
    if (ldg_utf8_count(s, n, &cp) != 0)
        abort();
}

static void message_or_abort(const char *s)
{
    if (!s || !*s)
        abort();
    utf8_or_abort(s, strlen(s));
}

/* The response body in both encodings; a JSON one must parse. */
static void respond(enum ldg_otlp_encoding enc, enum ldg_otlp_signal sig, int64_t rejected,
                    const char *message)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_otlp_response(enc, sig, rejected, message, &b);
    if (enc == LDG_OTLP_JSON) {
        cJSON *j = ldg_json_parse(ldg_buf_head(&b), ldg_buf_size(&b));
        if (!j)
            abort();
        cJSON_Delete(j);
    }
    ldg_buf_free(&b);
}

static void status(enum ldg_otlp_encoding enc, const char *message)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_otlp_status(enc, 400, message, &b);
    if (enc == LDG_OTLP_JSON) {
        cJSON *j = ldg_json_parse(ldg_buf_head(&b), ldg_buf_size(&b));
        if (!j)
            abort();
        cJSON_Delete(j);
    }
    ldg_buf_free(&b);
}

/* What the receiver does with a mapped log object (ingest.c add_log): validate, encode. 0, or -1
 * with the reason in err. */
static int queue_log(const cJSON *obj, struct ldg_arena *a, struct ldg_buf *mp, char *err, size_t errlen)
{
    struct ldg_log l;
    if (ldg_logentry_parse(obj, PROJECT_ID, NOW_US, a, &l, err, errlen) < 0) {
        message_or_abort(err);
        return -1;
    }
    if (ldg_logcodec_encode(&l, mp) < 0) {
        snprintf(err, errlen, "Field 'attributes' is nested too deeply");
        return -1;
    }
    return 0;
}

static void fuzz_logs(enum ldg_otlp_encoding enc, const char *body, size_t len, struct ldg_arena *a)
{
    struct ldg_otlp_logs logs;
    char err[512];
    if (ldg_otlp_logs_decode(enc, body, len, NOW_US, MAX_RECORDS, a, &logs, err, sizeof err) < 0) {
        message_or_abort(err);
        status(enc, err);
        return;
    }
    if (logs.n > MAX_RECORDS)
        abort();
    struct ldg_buf mp, msg;
    ldg_buf_init(&mp);
    ldg_buf_init(&msg);
    int64_t rejected = 0;
    for (size_t i = 0; i < logs.n; i++) {
        const char *why = logs.errs[i] ? logs.errs[i] : "cannot be mapped";
        if (logs.errs[i])
            message_or_abort(logs.errs[i]);
        if (logs.logs[i]) {
            if (queue_log(logs.logs[i], a, &mp, err, sizeof err) == 0)
                continue;
            why = err;
        }
        if (rejected++ < 3) /* the receiver's partial_success message quotes the first three */
            ldg_buf_printf(&msg, "%sLog record %zu: %s", ldg_buf_size(&msg) ? "; " : "", i, why);
    }
    ldg_buf_put(&msg, "", 1);
    respond(enc, LDG_OTLP_LOGS, rejected, ldg_buf_head(&msg));
    ldg_buf_free(&msg);
    ldg_buf_free(&mp);
}

static void fuzz_rows(enum ldg_otlp_signal sig, enum ldg_otlp_encoding enc, bool retention, const char *body,
                      size_t len, struct ldg_arena *a)
{
    struct ldg_otlp_rows rows;
    struct ldg_buf copy;
    ldg_buf_init(&copy);
    char err[512];
    int64_t oldest = retention ? NOW_US - RETENTION_US : 0;
    int rc = sig == LDG_OTLP_TRACES ? ldg_otlp_spans_decode(enc, body, len, NOW_US, oldest, PROJECT_ID,
                                                            MAX_RECORDS, a, &copy, &rows, err, sizeof err)
                                    : ldg_otlp_metrics_decode(enc, body, len, NOW_US, oldest, PROJECT_ID,
                                                              MAX_POINTS, a, &copy, &rows, err, sizeof err);
    if (rc < 0) {
        message_or_abort(err);
        status(enc, err);
        ldg_buf_free(&rows.message);
        ldg_buf_free(&copy);
        return;
    }
    if (rows.rows + rows.rejected != rows.n || (sig == LDG_OTLP_METRICS && rows.nexc))
        abort();
    if (rows.nmonths > LDG_OTLP_MAX_MONTHS)
        abort();
    /* one COPY line per row, each into a queue row item and back */
    enum ldg_otelrow_table table = sig == LDG_OTLP_TRACES ? LDG_OTELROW_SPAN : LDG_OTELROW_METRIC;
    const char *line = ldg_buf_head(&copy), *end = line + ldg_buf_size(&copy);
    struct ldg_buf item;
    ldg_buf_init(&item);
    for (size_t i = 0; i < rows.rows; i++) {
        const char *nl = line < end ? memchr(line, '\n', (size_t)(end - line)) : NULL;
        if (!nl || memchr(line, 0, (size_t)(nl - line)))
            abort();
        utf8_or_abort(line, (size_t)(nl - line));
        ldg_buf_reset(&item);
        ldg_otelrow_encode(table, PROJECT_ID, rows.row_us[i], line, (size_t)(nl - line), &item);
        struct ldg_otelrow back;
        size_t used;
        if (!ldg_otelrow_is(ldg_buf_head(&item), ldg_buf_size(&item)) ||
            ldg_otelrow_decode(ldg_buf_head(&item), ldg_buf_size(&item), &back, &used) != 0 ||
            used != ldg_buf_size(&item) || back.table != table || back.ts_us != rows.row_us[i] ||
            back.len != (size_t)(nl - line) || memcmp(back.line, line, back.len) != 0)
            abort();
        line = nl + 1;
    }
    if (line != end)
        abort();
    ldg_buf_free(&item);
    struct ldg_buf mp;
    ldg_buf_init(&mp);
    for (size_t i = 0; i < rows.nexc; i++) /* a failure is not reported: the spans are what was sent */
        (void)queue_log(rows.exc_logs[i], a, &mp, err, sizeof err);
    ldg_buf_free(&mp);
    ldg_buf_put(&rows.message, "", 1);
    if (rows.rejected)
        message_or_abort(ldg_buf_head(&rows.message));
    respond(enc, sig, (int64_t)rows.rejected, ldg_buf_head(&rows.message));
    ldg_buf_free(&rows.message);
    ldg_buf_free(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum ldg_otlp_signal sig = (enum ldg_otlp_signal)(data[0] % 3);
    enum ldg_otlp_encoding enc = (enum ldg_otlp_encoding)(data[0] / 3 % 2);
    bool retention = data[0] / 6 % 2;
    size_t len = size - 1;
    /* A private copy of exactly the body's bytes, so ASan sees any read past its end. */
    char *body = malloc(len ? len : 1);
    memcpy(body, data + 1, len);
    static char first[16384]; /* the receiver's decode arena starts with 16 KiB on its stack */
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    if (sig == LDG_OTLP_LOGS)
        fuzz_logs(enc, body, len, &a);
    else
        fuzz_rows(sig, enc, retention, body, len, &a);
    ldg_arena_free(&a);
    free(body);
    return 0;
}
