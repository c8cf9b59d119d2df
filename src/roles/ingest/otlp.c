/*
 * otlp.c: OTLP/HTTP receiver routes of the ingest role (POST /v1/logs, /v1/traces, /v1/metrics).
 * See docs/otlp.md.
 *
 * A request is decoded and mapped by ingest/otlplog.c into v1 log objects, which then take the
 * v1 batch path unchanged (ingest_int.h): validation, MessagePack, the coalesced enqueue script
 * with its rate limits, quota and backpressure, the same queue and storage. What differs is only
 * the answers: 200 with an ExportLogsServiceResponse in the request's encoding (a partial_success
 * for records that failed mapping or validation, and for a quota overrun), and every error as a
 * google.rpc.Status in the request's encoding through the route's error renderer, so that the
 * gateway's own answers (401, 403, 429, 413, 503) take that shape too.
 *
 * The decoded request and the mapped log objects live in an arena on the handler's stack (heap
 * chunks beyond its first 16 KiB) and are released once every log is encoded.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "ingest/logcodec.h"
#include "ingest/otelrow.h"
#include "ingest/otlplog.h"
#include "roles/ingest/ingest_int.h"

#define OTLP_MAX_RECORDS 1000 /* log records or spans per request */
#define OTLP_MAX_POINTS 10000 /* metric data points per request */
#define MAX_REPORTED 3 /* record problems quoted in a partial_success message */

static const char *const content_types[] = {"application/x-protobuf", "application/json"};

/* The request's encoding; a body of another type is answered in JSON. */
static enum ldg_otlp_encoding encoding_of(const struct ldg_req *req)
{
    struct ldg_str ct = ldg_req_header(req, "Content-Type");
    return ldg_otlp_content_type(ct.p, ct.n) == LDG_OTLP_PROTOBUF ? LDG_OTLP_PROTOBUF : LDG_OTLP_JSON;
}

static void respond(struct ldg_req *req, int status, enum ldg_otlp_encoding enc, struct ldg_buf *b)
{
    ldg_req_respond(req, status, content_types[enc], ldg_buf_head(b), ldg_buf_size(b));
    ldg_buf_free(b);
}

/* The route's error renderer: google.rpc.Status instead of {"detail": …}. */
static void on_error(struct ldg_req *req, int status, const char *detail)
{
    enum ldg_otlp_encoding enc = encoding_of(req);
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_otlp_status(enc, status, detail, &b);
    respond(req, status, enc, &b);
}

/* An answer decided before the enqueue: the gateway's limits run first (ingest.c's rule). */
struct early {
    int status;
    enum ldg_otlp_encoding enc;
    char *body; /* status 200: the response body; else the error's detail */
    size_t len;
};

static void on_limits_passed(struct ldg_req *req, void *ud)
{
    struct early *a = ud;
    if (a->status == 200)
        ldg_req_respond(req, 200, content_types[a->enc], a->body, a->len);
    else
        ldg_req_error(req, a->status, a->body);
}

static void answer_early(struct ldg_req *req, int status, enum ldg_otlp_encoding enc, const char *body,
                         size_t len)
{
    struct early *a = ldg_arena_alloc(&req->arena, sizeof *a);
    a->status = status;
    a->enc = enc;
    a->body = ldg_arena_strndup(&req->arena, len ? body : "", len); /* an empty body may be NULL */
    a->len = len;
    ldg_gateway_limits_then(req, on_limits_passed, a);
}

static void reject(struct enqueue *e, size_t i, const char *why)
{
    e->rejected++;
    if (e->rejected > MAX_REPORTED)
        return;
    if (ldg_buf_size(&e->errors))
        ldg_buf_puts(&e->errors, "; ");
    ldg_buf_printf(&e->errors, "Log record %zu: %s", i, why);
}

/* e's partial_success message: the first problems and how many there were. */
static void response_body(const struct enqueue *e, struct ldg_buf *out)
{
    struct ldg_buf msg;
    ldg_buf_init(&msg);
    /* over the quota (ingest.c's verdict), errors holds the quota's message alone */
    static const char quota[] = "Daily quota exceeded";
    bool over_quota = ldg_buf_size(&e->errors) >= sizeof quota - 1 &&
                      memcmp(ldg_buf_head(&e->errors), quota, sizeof quota - 1) == 0;
    if (e->rejected) {
        ldg_buf_put(&msg, ldg_buf_head(&e->errors), ldg_buf_size(&e->errors));
        if (e->rejected > MAX_REPORTED && !over_quota)
            ldg_buf_printf(&msg, "; and %zu more", e->rejected - MAX_REPORTED);
    }
    ldg_buf_put(&msg, "", 1);
    /* over the quota, every item is refused (the exception logs of spans are not items) */
    size_t rejected = e->otlp_items && e->rejected > e->otlp_items ? e->otlp_items : e->rejected;
    ldg_otlp_response((enum ldg_otlp_encoding)(e->otlp - 1), (enum ldg_otlp_signal)e->otlp_signal,
                      (int64_t)rejected, ldg_buf_head(&msg), out);
    ldg_buf_free(&msg);
}

/* With an Idempotency-Key, the 200 a repeat gets: this request's answer if it is queued (a quota
 * refusal queues nothing and sets no key). */
static void idem_answer(struct enqueue *e, const char *key)
{
    if (!key[0])
        return;
    struct ldg_buf b;
    ldg_buf_init(&b);
    response_body(e, &b);
    ldg__ingest_idem_answer(e, key, 200, content_types[e->otlp - 1], ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

void ldg__otlp_respond(struct enqueue *e)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    response_body(e, &b);
    respond(e->req, 200, (enum ldg_otlp_encoding)(e->otlp - 1), &b);
}

struct decode_arena {
    struct ldg_arena arena;
    char first[16384];
};

static void handle_logs(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__ingest_principal(req);
    if (!p)
        return;
    struct ldg_str ct = ldg_req_header(req, "Content-Type");
    int enc = ldg_otlp_content_type(ct.p, ct.n);
    if (enc < 0) {
        static const char msg[] = "Content-Type must be application/x-protobuf or application/json";
        answer_early(req, 415, LDG_OTLP_JSON, msg, sizeof msg - 1);
        return;
    }
    char idem[IDEM_KEY_MAX + 48];
    if (ldg__ingest_idem_read(req, p->project_id, idem, sizeof idem) < 0)
        return;
    struct decode_arena d;
    ldg_arena_init(&d.arena, d.first, sizeof d.first);
    struct ldg_otlp_logs logs;
    char err[512];
    int64_t now = ldg_wall_us();
    if (ldg_otlp_logs_decode((enum ldg_otlp_encoding)enc, ldg_buf_head(&req->body), ldg_buf_size(&req->body),
                             now, OTLP_MAX_RECORDS, &d.arena, &logs, err, sizeof err) < 0) {
        ldg_arena_free(&d.arena);
        answer_early(req, 400, (enum ldg_otlp_encoding)enc, err, strlen(err));
        return;
    }
    struct enqueue *e = ldg__ingest_enqueue_new(req, p, logs.n ? logs.n : 1);
    e->otlp = 1 + enc;
    e->otlp_items = logs.n;
    for (size_t i = 0; i < logs.n; i++) {
        if (!logs.logs[i])
            reject(e, i, logs.errs[i] ? logs.errs[i] : "cannot be mapped");
        else if (ldg__ingest_add_log(e, logs.logs[i], now, err, sizeof err) < 0)
            reject(e, i, err);
    }
    ldg_arena_free(&d.arena); /* the decoded request and the log objects */
    if (!e->accepted) {       /* nothing to queue (or an empty request): answered now */
        struct ldg_buf b;
        ldg_buf_init(&b);
        response_body(e, &b);
        ldg__ingest_enqueue_free(e);
        answer_early(req, 200, (enum ldg_otlp_encoding)enc, ldg_buf_head(&b), ldg_buf_size(&b));
        ldg_buf_free(&b);
        return;
    }
    idem_answer(e, idem);
    ldg__ingest_enqueue_start(e);
}

/* ---- POST /v1/traces and /v1/metrics ----------------------------------------------------------------
 *
 * The spans (data points) of a request take the logs' path: each valid one becomes a row item of
 * the request's queue entry (ingest/otelrow.h), beside the log records made from the spans'
 * `exception` events, and the storage role copies them into `spans` (`metric_points`) with their
 * queue ids, exactly once like logs. They count in the quota, the queue depth and bytes like logs;
 * 200 means queued. */

static void handle_rows(struct ldg_req *req, enum ldg_otlp_signal sig)
{
    const struct ldg_principal *p = ldg__ingest_principal(req);
    if (!p)
        return;
    struct ldg_str ct = ldg_req_header(req, "Content-Type");
    int enc = ldg_otlp_content_type(ct.p, ct.n);
    if (enc < 0) {
        static const char msg[] = "Content-Type must be application/x-protobuf or application/json";
        answer_early(req, 415, LDG_OTLP_JSON, msg, sizeof msg - 1);
        return;
    }
    char idem[IDEM_KEY_MAX + 48];
    if (ldg__ingest_idem_read(req, p->project_id, idem, sizeof idem) < 0)
        return;
    struct decode_arena d;
    ldg_arena_init(&d.arena, d.first, sizeof d.first);
    struct ldg_otlp_rows rows;
    struct ldg_buf copy;
    ldg_buf_init(&copy);
    char err[512];
    int64_t now = ldg_wall_us();
    int64_t oldest = p->retention_days > 0 ? now - p->retention_days * INT64_C(86400000000) : 0;
    int rc = sig == LDG_OTLP_TRACES
                 ? ldg_otlp_spans_decode((enum ldg_otlp_encoding)enc, ldg_buf_head(&req->body),
                                         ldg_buf_size(&req->body), now, oldest, p->project_id, OTLP_MAX_RECORDS,
                                         &d.arena, &copy, &rows, err, sizeof err)
                 : ldg_otlp_metrics_decode((enum ldg_otlp_encoding)enc, ldg_buf_head(&req->body),
                                           ldg_buf_size(&req->body), now, oldest, p->project_id, OTLP_MAX_POINTS,
                                           &d.arena, &copy, &rows, err, sizeof err);
    if (rc < 0) {
        ldg_buf_free(&rows.message);
        ldg_buf_free(&copy);
        ldg_arena_free(&d.arena);
        answer_early(req, 400, (enum ldg_otlp_encoding)enc, err, strlen(err));
        return;
    }
    struct enqueue *e = ldg__ingest_enqueue_new(req, p, rows.nexc ? rows.nexc : 1);
    e->otlp = 1 + enc;
    e->otlp_signal = (int)sig;
    e->otlp_items = rows.n;
    e->rejected = rows.rejected;
    ldg_buf_put(&e->errors, ldg_buf_head(&rows.message), ldg_buf_size(&rows.message));
    ldg_buf_free(&rows.message);
    (void)ldg_buf_reserve(&e->mp, ldg_buf_size(&copy) + 32 * rows.rows + 64, 0);
    enum ldg_otelrow_table table = sig == LDG_OTLP_TRACES ? LDG_OTELROW_SPAN : LDG_OTELROW_METRIC;
    const char *line = ldg_buf_head(&copy), *end = line + ldg_buf_size(&copy);
    for (size_t i = 0; i < rows.rows && line < end; i++) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        LDG_ASSERT(nl);
        ldg_otelrow_encode(table, p->project_id, rows.row_us[i], line, (size_t)(nl - line), &e->mp);
        e->accepted++;
        line = nl + 1;
    }
    ldg_buf_free(&copy);
    for (size_t i = 0; i < rows.nexc; i++) /* a failure is not reported: the spans are what was sent */
        (void)ldg__ingest_add_log(e, rows.exc_logs[i], now, err, sizeof err);
    ldg_arena_free(&d.arena);
    if (!e->accepted) { /* nothing to queue (or an empty request): answered now */
        struct ldg_buf b;
        ldg_buf_init(&b);
        response_body(e, &b);
        ldg__ingest_enqueue_free(e);
        answer_early(req, 200, (enum ldg_otlp_encoding)enc, ldg_buf_head(&b), ldg_buf_size(&b));
        ldg_buf_free(&b);
        return;
    }
    idem_answer(e, idem);
    ldg__ingest_enqueue_start(e);
}

static void handle_traces(struct ldg_req *req)
{
    handle_rows(req, LDG_OTLP_TRACES);
}

static void handle_metrics(struct ldg_req *req)
{
    handle_rows(req, LDG_OTLP_METRICS);
}

void ldg__otlp_routes(struct ldg_router *r, const struct ldg_ingest_cfg *c)
{
    struct ldg_route_opts o = {
        .flags = LDG_ROUTE_QUOTA | LDG_ROUTE_OWN_LIMITS | LDG_ROUTE_OTLP_LISTENER,
        .max_body_bytes = (size_t)c->max_batch_body_bytes,
        .error_fn = on_error,
    };
    int rc = ldg_router_add(r, "POST", "/v1/logs", handle_logs, &o);
    LDG_ASSERT(rc == 0);
    rc = ldg_router_add(r, "POST", "/v1/traces", handle_traces, &o);
    LDG_ASSERT(rc == 0);
    rc = ldg_router_add(r, "POST", "/v1/metrics", handle_metrics, &o);
    LDG_ASSERT(rc == 0);
}
