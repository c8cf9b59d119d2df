/*
 * otlp.c: OTLP/HTTP receiver routes of the ingest role (POST /v1/logs). See docs/otlp.md.
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

#include <libpq-fe.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "ingest/logcodec.h"
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
    if (e->rejected) {
        ldg_buf_put(&msg, ldg_buf_head(&e->errors), ldg_buf_size(&e->errors));
        if (e->rejected > MAX_REPORTED)
            ldg_buf_printf(&msg, "; and %zu more", e->rejected - MAX_REPORTED);
    }
    ldg_buf_put(&msg, "", 1);
    ldg_otlp_response((enum ldg_otlp_encoding)(e->otlp - 1), LDG_OTLP_LOGS, (int64_t)e->rejected,
                      ldg_buf_head(&msg), out);
    ldg_buf_free(&msg);
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
    ldg__ingest_enqueue_start(e);
}

/* ---- POST /v1/traces and /v1/metrics ----------------------------------------------------------------
 *
 * The spans (data points) of a request are written by the receiving worker itself: one COPY into
 * `spans` (`metric_points`) on a connection of its logs pool, and the answer is sent once it
 * committed (200 = stored). The request first takes the enqueue script like a logs request, which
 * checks and counts the rate limits and queues the log records made from the spans' `exception`
 * events (possibly none); only when that succeeded are the rows copied. */

struct spanwrite {
    struct enqueue *e;
    enum ldg_otlp_signal sig; /* LDG_OTLP_TRACES or LDG_OTLP_METRICS */
    struct ldg_pg *conn;
    struct ldg_buf copy; /* COPY lines; owned */
    size_t n, rows, rejected;
    char *message;  /* arena: the span problems */
    char *quota;    /* arena: why the exception logs were refused, or NULL */
    char *months;   /* arena: '{"ts",...}' for otel_ensure_partition */
};

static void span_answer(struct spanwrite *sw, int status, const char *problem)
{
    struct ldg_req *req = sw->e->req;
    ldg_buf_free(&sw->copy);
    if (sw->conn) {
        ldg_pgpool_release(ldg_pgroute_project(req->w, ldg_principal(req)->project_id), sw->conn);
        sw->conn = NULL;
    }
    if (req->conn) {
        if (status == 200) {
            struct ldg_buf b, msg;
            ldg_buf_init(&b);
            ldg_buf_init(&msg);
            ldg_buf_puts(&msg, sw->message);
            if (sw->quota) { /* the quota refused the exception logs */
                ldg_buf_puts(&msg, ldg_buf_size(&msg) ? "; exception logs: " : "Exception logs: ");
                ldg_buf_puts(&msg, sw->quota);
            }
            ldg_buf_put(&msg, "", 1);
            ldg_otlp_response((enum ldg_otlp_encoding)(sw->e->otlp - 1), sw->sig, (int64_t)sw->rejected,
                              ldg_buf_head(&msg), &b);
            ldg_buf_free(&msg);
            respond(req, 200, (enum ldg_otlp_encoding)(sw->e->otlp - 1), &b);
        } else {
            char v[8];
            snprintf(v, sizeof v, "%d", 1);
            ldg_req_add_header(req, "Retry-After", v);
            ldg_req_error(req, status, problem);
        }
    }
    ldg_req_unref(req);
}

static void span_fail(struct spanwrite *sw, const char *what)
{
    const struct ldg_pg_error *pe = ldg_pg_failure();
    char ctx[128];
    snprintf(ctx, sizeof ctx, "rid=%s", sw->e->req->request_id);
    ldg_log_error(ctx, "span write failed at %s: %s", what, pe && pe->message ? pe->message : "not sent");
    span_answer(sw, 503, "Service temporarily unavailable");
}

static void on_span_copied(PGresult *res, void *ud)
{
    struct spanwrite *sw = ud;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        span_fail(sw, "COPY");
        return;
    }
    span_answer(sw, 200, NULL);
}

static void on_span_put(struct ldg_pg *conn, int status, void *ud)
{
    struct spanwrite *sw = ud;
    if (status < 0 || ldg_pg_copy_end(conn, NULL, on_span_copied, sw) < 0)
        span_fail(sw, "COPY data");
}

static void on_span_copy_in(PGresult *res, void *ud)
{
    struct spanwrite *sw = ud;
    if (!res || PQresultStatus(res) != PGRES_COPY_IN ||
        ldg_pg_copy_put(sw->conn, ldg_buf_head(&sw->copy), ldg_buf_size(&sw->copy), on_span_put, sw) < 0) {
        span_fail(sw, "COPY start");
    }
}

static void on_span_partitions(PGresult *res, void *ud)
{
    struct spanwrite *sw = ud;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK ||
        ldg_pg_copy_start(sw->conn, sw->sig == LDG_OTLP_TRACES ? LDG_OTLP_SPAN_COPY_SQL : LDG_OTLP_METRIC_COPY_SQL,
                          on_span_copy_in, sw) < 0)
        span_fail(sw, "partitions");
}

static void on_span_conn(struct ldg_pg *conn, int err, void *ud)
{
    struct spanwrite *sw = ud;
    if (!conn) {
        (void)err;
        span_fail(sw, "connection");
        return;
    }
    sw->conn = conn;
    const char *params[2] = {sw->sig == LDG_OTLP_TRACES ? "spans" : "metric_points", sw->months};
    if (ldg_pg_query_prepared(conn, "otlp_parts",
                              "SELECT otel_ensure_partition($1::text, t) FROM unnest($2::timestamptz[]) AS t", 2,
                              params, on_span_partitions, sw) < 0)
        span_fail(sw, "partitions");
}

/* The script's verdict (ingest.c): store the spans, or drop them when it answered. */
static void on_traces_enqueued(struct enqueue *e, bool ok)
{
    struct spanwrite *sw = e->after_ud;
    if (!ok) {
        ldg_buf_free(&sw->copy);
        return;
    }
    ldg_req_ref(e->req); /* past the flight: until the spans are written */
    if (ldg_buf_size(&e->errors)) /* e's buffers go with the flight */
        sw->quota = ldg_arena_strndup(&e->req->arena, ldg_buf_head(&e->errors), ldg_buf_size(&e->errors));
    if (!sw->rows) {
        span_answer(sw, 200, NULL);
        return;
    }
    struct ldg_pgpool *pool = ldg_pgroute_project(e->req->w, ldg_principal(e->req)->project_id);
    if (!pool || ldg_pgpool_acquire(pool, on_span_conn, sw) < 0)
        span_fail(sw, "connection");
}

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
    struct decode_arena d;
    ldg_arena_init(&d.arena, d.first, sizeof d.first);
    struct ldg_otlp_rows spans;
    struct spanwrite *sw = ldg_arena_alloc(&req->arena, sizeof *sw);
    memset(sw, 0, sizeof *sw);
    sw->sig = sig;
    ldg_buf_init(&sw->copy);
    char err[512];
    int64_t now = ldg_wall_us();
    int rc = sig == LDG_OTLP_TRACES
                 ? ldg_otlp_spans_decode((enum ldg_otlp_encoding)enc, ldg_buf_head(&req->body),
                                         ldg_buf_size(&req->body), now, p->project_id, OTLP_MAX_RECORDS, &d.arena,
                                         &sw->copy, &spans, err, sizeof err)
                 : ldg_otlp_metrics_decode((enum ldg_otlp_encoding)enc, ldg_buf_head(&req->body),
                                           ldg_buf_size(&req->body), now, p->project_id, OTLP_MAX_POINTS, &d.arena,
                                           &sw->copy, &spans, err, sizeof err);
    if (rc < 0) {
        ldg_buf_free(&spans.message);
        ldg_buf_free(&sw->copy);
        ldg_arena_free(&d.arena);
        answer_early(req, 400, (enum ldg_otlp_encoding)enc, err, strlen(err));
        return;
    }
    sw->n = spans.n;
    sw->rows = spans.rows;
    sw->rejected = spans.rejected;
    if (spans.rejected > MAX_REPORTED)
        ldg_buf_printf(&spans.message, "; and %zu more", spans.rejected - MAX_REPORTED);
    sw->message = ldg_arena_strndup(&req->arena, ldg_buf_size(&spans.message) ? ldg_buf_head(&spans.message) : "",
                                    ldg_buf_size(&spans.message));
    ldg_buf_free(&spans.message);
    struct ldg_buf months;
    ldg_buf_init(&months);
    ldg_buf_puts(&months, "{");
    for (size_t i = 0; i < spans.nmonths; i++) {
        if (i)
            ldg_buf_puts(&months, ",");
        ldg_logcodec_isoformat(spans.month_us[i], 0, true, &months);
    }
    ldg_buf_puts(&months, "}");
    sw->months = ldg_arena_strndup(&req->arena, ldg_buf_head(&months), ldg_buf_size(&months));
    ldg_buf_free(&months);

    struct enqueue *e = ldg__ingest_enqueue_new(req, p, spans.nexc ? spans.nexc : 1);
    e->otlp = 1 + enc;
    e->after = on_traces_enqueued;
    e->after_ud = sw;
    sw->e = e;
    for (size_t i = 0; i < spans.nexc; i++)
        if (ldg__ingest_add_log(e, spans.exc_logs[i], now, err, sizeof err) < 0)
            e->rejected++; /* not reported: the spans are what the client sent */
    ldg_arena_free(&d.arena);
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
        .flags = LDG_ROUTE_QUOTA | LDG_ROUTE_OWN_LIMITS,
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
