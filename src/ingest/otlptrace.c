/*
 * otlptrace.c: an OTLP ExportTraceServiceRequest → COPY lines of `spans` and the log objects of
 * the spans' `exception` events (ldg_otlp_spans_decode, otlplog.h; docs/otlp.md "Traces").
 */
#include "ingest/otlplog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ingest/logcodec.h"
#include "ingest/otlp_int.h"

/* ---- decoding -------------------------------------------------------------------------------------- */

typedef Ldg__Otlp__Span Span;
typedef Ldg__Otlp__SpanEvent SpanEvent;
typedef Ldg__Otlp__ExportTraceServiceRequest TraceRequest;

static const char *const kind_names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                         "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

static Span *j_span(struct ldg__otlp_json *jc, const cJSON *o, int *rc)
{
    Span *sp = NEW(jc, Span, LDG__OTLP__SPAN__INIT);
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "A span must be an object");
        return sp;
    }
    sp->trace_id = ldg__otlp_jid(jc, o, "traceId", 16, rc);
    sp->span_id = ldg__otlp_jid(jc, o, "spanId", 8, rc);
    sp->parent_span_id = ldg__otlp_jid(jc, o, "parentSpanId", 8, rc);
    sp->name = ldg__otlp_jstr(jc, o, "name", rc);
    sp->kind = ldg__otlp_j_enum(jc, o, "kind", kind_names, LDG_ARRAY_SIZE(kind_names), rc);
    sp->start_time_unix_nano = (uint64_t)ldg__otlp_jint(jc, o, "startTimeUnixNano", rc);
    sp->end_time_unix_nano = (uint64_t)ldg__otlp_jint(jc, o, "endTimeUnixNano", rc);
    sp->attributes = ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, o, "attributes", rc), &sp->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
    const cJSON *evs = ldg__otlp_jarr(jc, o, "events", rc);
    size_t ne = evs ? (size_t)cJSON_GetArraySize(evs) : 0;
    sp->events = ldg_arena_alloc(jc->a, (ne ? ne : 1) * sizeof *sp->events);
    for (const cJSON *it = evs ? evs->child : NULL; it && *rc == 0; it = it->next) {
        if (!cJSON_IsObject(it)) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "A span event must be an object");
            break;
        }
        SpanEvent *ev = NEW(jc, SpanEvent, LDG__OTLP__SPAN_EVENT__INIT);
        ev->time_unix_nano = (uint64_t)ldg__otlp_jint(jc, it, "timeUnixNano", rc);
        ev->name = ldg__otlp_jstr(jc, it, "name", rc);
        ev->attributes = ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, it, "attributes", rc), &ev->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
        sp->events[sp->n_events++] = ev;
    }
    const cJSON *st = ldg__otlp_jobj(jc, o, "status", rc);
    if (st) {
        sp->status = NEW(jc, Ldg__Otlp__SpanStatus, LDG__OTLP__SPAN_STATUS__INIT);
        sp->status->message = ldg__otlp_jstr(jc, st, "message", rc);
        sp->status->code = ldg__otlp_j_enum(jc, st, "code", status_names, LDG_ARRAY_SIZE(status_names), rc);
    }
    return sp;
}

static int json_to_traces(struct ldg__otlp_json *jc, const cJSON *root, TraceRequest **out)
{
    int rc = 0;
    if (!cJSON_IsObject(root))
        return ldg_json_fail(jc->err, jc->errlen, "Request body must be a JSON object");
    TraceRequest *req = NEW(jc, TraceRequest, LDG__OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT);
    const cJSON *rss;
    req->resource_spans = ldg__otlp_jarr_room(jc, root, "resourceSpans", &rss, &rc);
    for (const cJSON *it = rss ? rss->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsObject(it))
            return ldg_json_fail(jc->err, jc->errlen, "resourceSpans items must be objects");
        Ldg__Otlp__ResourceSpans *rs = NEW(jc, Ldg__Otlp__ResourceSpans, LDG__OTLP__RESOURCE_SPANS__INIT);
        req->resource_spans[req->n_resource_spans++] = rs;
        rs->resource = ldg__otlp_j_resource(jc, it, &rc);
        const cJSON *sss;
        rs->scope_spans = ldg__otlp_jarr_room(jc, it, "scopeSpans", &sss, &rc);
        for (const cJSON *s = sss ? sss->child : NULL; s && rc == 0; s = s->next) {
            if (!cJSON_IsObject(s))
                return ldg_json_fail(jc->err, jc->errlen, "scopeSpans items must be objects");
            Ldg__Otlp__ScopeSpans *ss = NEW(jc, Ldg__Otlp__ScopeSpans, LDG__OTLP__SCOPE_SPANS__INIT);
            rs->scope_spans[rs->n_scope_spans++] = ss;
            const cJSON *spans;
            ss->spans = ldg__otlp_jarr_room(jc, s, "spans", &spans, &rc);
            for (const cJSON *sp = spans ? spans->child : NULL; sp && rc == 0; sp = sp->next)
                ss->spans[ss->n_spans++] = j_span(jc, sp, &rc);
        }
    }
    *out = req;
    return rc;
}

static void copy_json(struct ldg_buf *b, const cJSON *v)
{
    ldg__otlp_copy_text(b, cJSON_PrintUnformatted(v)); /* build mode: the text is in the arena */
}

static bool valid_id(ProtobufCBinaryData d, size_t len)
{
    return d.len == len && !ldg__otlp_all_zero(d);
}

/* The log record an `exception` event stands for. */
static cJSON *exception_log(struct ldg__otlp_map *mc, const struct ldg__otlp_res *ri, const Span *sp, const SpanEvent *ev,
                            int64_t now_us)
{
    LogRecord r = LDG__OTLP__LOG_RECORD__INIT;
    AnyValue body = LDG__OTLP__ANY_VALUE__INIT;
    r.time_unix_nano = ev->time_unix_nano ? ev->time_unix_nano : sp->end_time_unix_nano;
    r.severity_number = 17; /* ERROR */
    r.n_attributes = ev->n_attributes;
    r.attributes = ev->attributes;
    r.trace_id = sp->trace_id;
    r.span_id = sp->span_id;
    const char *msg = NULL;
    for (size_t i = 0; i < ev->n_attributes; i++)
        if (strcmp(ev->attributes[i]->key, "exception.message") == 0)
            msg = ldg__otlp_any_str(ev->attributes[i]->value);
    body.value_case = LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    body.string_value = (char *)(msg && *msg ? msg : sp->name);
    r.body = &body;
    cJSON *log = ldg__otlp_map_record(mc, ri, &r, now_us);
    if (log && !ldg_json_member(log, "error_type")) /* an exception event without exception.* */
        cJSON_AddItemToObject(log, "error_type", cJSON_CreateString("Exception"));
    if (log) {
        cJSON_DeleteItemFromObjectCaseSensitive(log, "log_type");
        cJSON_AddItemToObject(log, "log_type", cJSON_CreateString("exception"));
        cJSON *attrs = (cJSON *)ldg_json_member(log, "attributes");
        if (attrs && ldg__otlp_utf8_ok(sp->name))
            ldg__otlp_put_dotted(mc, attrs, "span.name", cJSON_CreateString(sp->name));
    }
    return log;
}

static void map_span(struct ldg__otlp_map *mc, const struct ldg__otlp_res *ri, const char *service, const Span *sp, size_t i,
                     int64_t project_id, int64_t now_us, struct ldg_buf *copy, struct ldg_otlp_rows *out)
{
    mc->err = NULL;
    if (!valid_id(sp->trace_id, 16) || !valid_id(sp->span_id, 8)) {
        ldg__otlp_row_problem(out, i, "trace_id must be 16 bytes and span_id 8 bytes, not all zero");
        return;
    }
    if (!sp->start_time_unix_nano) {
        ldg__otlp_row_problem(out, i, "start_time_unix_nano is required");
        return;
    }
    if (!ldg__otlp_utf8_ok(sp->name) || (sp->status && !ldg__otlp_utf8_ok(sp->status->message))) {
        ldg__otlp_row_problem(out, i, "name and status message must be valid UTF-8");
        return;
    }
    int64_t start_us = (int64_t)(sp->start_time_unix_nano / 1000);
    int64_t dur_us = sp->end_time_unix_nano > sp->start_time_unix_nano
                         ? (int64_t)((sp->end_time_unix_nano - sp->start_time_unix_nano) / 1000)
                         : 0;
    if (start_us > now_us + 300 * 1000000LL) {
        ldg__otlp_row_problem(out, i, "Span cannot start more than 5 minutes in the future");
        return;
    }
    if (start_us < out->oldest_us) {
        ldg__otlp_row_problem(out, i, "Span starts before the project's retention period");
        return;
    }
    cJSON *attrs = cJSON_CreateObject();
    for (size_t k = 0; k < sp->n_attributes; k++)
        if (ldg__otlp_utf8_ok(sp->attributes[k]->key))
            ldg__otlp_put_dotted(mc, attrs, sp->attributes[k]->key, ldg__otlp_any_json(mc, sp->attributes[k]->value, LDG_OTLP_MAX_DEPTH));
    cJSON *events = cJSON_CreateArray();
    for (size_t k = 0; k < sp->n_events; k++) {
        const SpanEvent *ev = sp->events[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "name", cJSON_CreateString(ldg__otlp_utf8_ok(ev->name) ? ev->name : ""));
        struct ldg_buf t;
        ldg_buf_init(&t);
        ldg_logcodec_isoformat((int64_t)(ev->time_unix_nano / 1000), 0, true, &t);
        ldg_buf_put(&t, "", 1);
        cJSON_AddItemToObject(e, "time", cJSON_CreateString(ldg_buf_head(&t)));
        ldg_buf_free(&t);
        cJSON_AddItemToObject(e, "attributes", ldg__otlp_kvlist_json(mc, ev->attributes, ev->n_attributes, LDG_OTLP_MAX_DEPTH));
        cJSON_AddItemToArray(events, e);
    }
    if (mc->err) {
        ldg__otlp_row_problem(out, i, mc->err);
        return;
    }
    if (!ldg__otlp_add_month(out, start_us)) {
        ldg__otlp_row_problem(out, i, "spans of one request may start in at most 8 different months");
        return;
    }
    for (size_t k = 0; k < sp->n_events; k++) {
        if (strcmp(sp->events[k]->name, "exception") != 0)
            continue;
        cJSON *log = exception_log(mc, ri, sp, sp->events[k], now_us);
        if (log)
            out->exc_logs[out->nexc++] = log;
    }
    ldg_buf_put_i64(copy, project_id);
    ldg_buf_puts(copy, "\t");
    ldg__otlp_copy_text(copy, ldg__otlp_hex(mc, sp->trace_id));
    ldg_buf_puts(copy, "\t");
    ldg__otlp_copy_text(copy, ldg__otlp_hex(mc, sp->span_id));
    ldg_buf_puts(copy, "\t");
    if (valid_id(sp->parent_span_id, 8))
        ldg__otlp_copy_text(copy, ldg__otlp_hex(mc, sp->parent_span_id));
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    ldg__otlp_copy_text(copy, sp->name);
    ldg_buf_printf(copy, "\t%d\t", sp->kind >= 0 && sp->kind <= 5 ? sp->kind : 0);
    if (service)
        ldg__otlp_copy_text(copy, service);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    ldg__otlp_copy_ts(copy, start_us);
    ldg_buf_printf(copy, "\t%lld\t%d\t", (long long)dur_us,
                   sp->status && sp->status->code >= 0 && sp->status->code <= 2 ? sp->status->code : 0);
    if (sp->status && sp->status->message[0])
        ldg__otlp_copy_text(copy, sp->status->message);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    if (attrs->child)
        copy_json(copy, attrs);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    if (events->child)
        copy_json(copy, events);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\n");
    out->row_us[out->rows++] = start_us;
}

int ldg_otlp_spans_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                          int64_t oldest_us, int64_t project_id, size_t max_spans, struct ldg_arena *arena, struct ldg_buf *copy,
                          struct ldg_otlp_rows *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->what = "Span";
    out->oldest_us = oldest_us;
    ldg_buf_init(&out->message);
    TraceRequest *req = NULL;
    if (enc == LDG_OTLP_PROTOBUF) {
        const uint8_t *p = (const uint8_t *)body;
        if (len && ldg__otlp_scan_pb(p, p + len, M_TRACEREQ, LDG_OTLP_MAX_DEPTH) < 0)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportTraceServiceRequest protobuf");
        ProtobufCAllocator al = {.alloc = ldg__otlp_pb_alloc, .free = ldg__otlp_pb_free, .allocator_data = arena};
        req = ldg__otlp__export_trace_service_request__unpack(&al, len, p);
        if (!req)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportTraceServiceRequest protobuf");
    } else {
        cJSON *root = len ? ldg_json_parse_in(body, len, arena, NULL) : NULL;
        if (!root)
            return ldg_json_fail(err, errlen, "Request body must be valid JSON (UTF-8, no NUL characters)");
        struct ldg__otlp_json jc = {arena, err, errlen};
        if (json_to_traces(&jc, root, &req) < 0)
            return -EINVAL;
    }
    size_t n = 0, nev = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            const Ldg__Otlp__ScopeSpans *ss = req->resource_spans[i]->scope_spans[j];
            n += ss->n_spans;
            for (size_t k = 0; k < ss->n_spans; k++)
                nev += ss->spans[k]->n_events;
        }
    if (n > max_spans)
        return ldg_json_fail(err, errlen, "At most %zu spans per request (got %zu)", max_spans, n);
    out->n = n;
    out->row_us = ldg_arena_alloc(arena, (n ? n : 1) * sizeof *out->row_us);
    out->exc_logs = ldg_arena_alloc(arena, (nev ? nev : 1) * sizeof *out->exc_logs);
    struct ldg__otlp_map mc = {.a = arena};
    size_t idx = 0;
    ldg_json_build_begin(arena);
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Ldg__Otlp__ResourceSpans *rs = req->resource_spans[i];
        struct ldg__otlp_res ri;
        ldg__otlp_resinfo_fill(&mc, rs->resource, &ri);
        const char *service = NULL;
        for (size_t k = 0; k < ri.nservice; k++)
            if (strcmp(ri.service[k]->key, "service.name") == 0)
                service = ldg__otlp_any_str(ri.service[k]->value);
        if (service && !ldg__otlp_utf8_ok(service))
            service = NULL;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Ldg__Otlp__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++, idx++)
                map_span(&mc, &ri, service, ss->spans[k], idx, project_id, now_us, copy, out);
        }
    }
    ldg_json_build_end();
    return 0;
}

