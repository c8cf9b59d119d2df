/*
 * otlpmetric.c: an OTLP ExportMetricsServiceRequest → COPY lines of `metric_points`
 * (ldg_otlp_metrics_decode, otlplog.h; docs/otlp.md "Metrics").
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

/* ---- decoding ------------------------------------------------------------------------------------- */

typedef Ldg__Otlp__Metric Metric;
typedef Ldg__Otlp__NumberDataPoint NumPoint;
typedef Ldg__Otlp__HistogramDataPoint HistPoint;
typedef Ldg__Otlp__ExportMetricsServiceRequest MetricsRequest;

static const char *const temporality_names[] = {"AGGREGATION_TEMPORALITY_UNSPECIFIED", "AGGREGATION_TEMPORALITY_DELTA",
                                                "AGGREGATION_TEMPORALITY_CUMULATIVE"};

static double jdouble(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc)
{
    const cJSON *v = ldg_json_member(obj, name);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v))
        return v->valuedouble;
    if (cJSON_IsString(v)) /* "NaN", "Infinity", "-Infinity" */
        return strtod(v->valuestring, NULL);
    *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be a number", name);
    return 0;
}

static NumPoint **j_numpoints(struct ldg__otlp_json *jc, const cJSON *arr, size_t *n, int *rc)
{
    size_t cap = arr ? (size_t)cJSON_GetArraySize(arr) : 0;
    NumPoint **pts = ldg_arena_alloc(jc->a, (cap ? cap : 1) * sizeof *pts);
    *n = 0;
    for (const cJSON *it = arr ? arr->child : NULL; it && *rc == 0; it = it->next) {
        if (!cJSON_IsObject(it)) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "A data point must be an object");
            break;
        }
        NumPoint *p = NEW(jc, NumPoint, LDG__OTLP__NUMBER_DATA_POINT__INIT);
        p->start_time_unix_nano = (uint64_t)ldg__otlp_jint(jc, it, "startTimeUnixNano", rc);
        p->time_unix_nano = (uint64_t)ldg__otlp_jint(jc, it, "timeUnixNano", rc);
        const cJSON *v;
        if ((v = ldg_json_member(it, "asDouble")) && !cJSON_IsNull(v)) {
            p->value_case = LDG__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
            p->as_double = jdouble(jc, it, "asDouble", rc);
        } else if ((v = ldg_json_member(it, "asInt")) && !cJSON_IsNull(v)) {
            p->value_case = LDG__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
            p->as_int = ldg__otlp_jint(jc, it, "asInt", rc);
        }
        p->attributes = ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, it, "attributes", rc), &p->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
        pts[(*n)++] = p;
    }
    return pts;
}

static HistPoint **j_histpoints(struct ldg__otlp_json *jc, const cJSON *arr, size_t *n, int *rc)
{
    size_t cap = arr ? (size_t)cJSON_GetArraySize(arr) : 0;
    HistPoint **pts = ldg_arena_alloc(jc->a, (cap ? cap : 1) * sizeof *pts);
    *n = 0;
    for (const cJSON *it = arr ? arr->child : NULL; it && *rc == 0; it = it->next) {
        if (!cJSON_IsObject(it)) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "A data point must be an object");
            break;
        }
        HistPoint *p = NEW(jc, HistPoint, LDG__OTLP__HISTOGRAM_DATA_POINT__INIT);
        p->start_time_unix_nano = (uint64_t)ldg__otlp_jint(jc, it, "startTimeUnixNano", rc);
        p->time_unix_nano = (uint64_t)ldg__otlp_jint(jc, it, "timeUnixNano", rc);
        p->count = (uint64_t)ldg__otlp_jint(jc, it, "count", rc);
        p->sum = jdouble(jc, it, "sum", rc);
        p->min = jdouble(jc, it, "min", rc);
        p->max = jdouble(jc, it, "max", rc);
        const cJSON *bc = ldg__otlp_jarr(jc, it, "bucketCounts", rc), *eb = ldg__otlp_jarr(jc, it, "explicitBounds", rc);
        size_t nb = bc ? (size_t)cJSON_GetArraySize(bc) : 0, ne = eb ? (size_t)cJSON_GetArraySize(eb) : 0;
        p->bucket_counts = ldg_arena_alloc(jc->a, (nb ? nb : 1) * sizeof *p->bucket_counts);
        p->explicit_bounds = ldg_arena_alloc(jc->a, (ne ? ne : 1) * sizeof *p->explicit_bounds);
        for (const cJSON *x = bc ? bc->child : NULL; x && *rc == 0; x = x->next)
            p->bucket_counts[p->n_bucket_counts++] = (uint64_t)ldg__otlp_jint_value(jc, x, "bucketCounts", rc);
        for (const cJSON *x = eb ? eb->child : NULL; x && *rc == 0; x = x->next) {
            if (!cJSON_IsNumber(x)) {
                *rc = ldg_json_fail(jc->err, jc->errlen, "explicitBounds must hold numbers");
                break;
            }
            p->explicit_bounds[p->n_explicit_bounds++] = x->valuedouble;
        }
        p->attributes = ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, it, "attributes", rc), &p->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
        pts[(*n)++] = p;
    }
    return pts;
}

static Metric *j_metric(struct ldg__otlp_json *jc, const cJSON *o, int *rc)
{
    Metric *m = NEW(jc, Metric, LDG__OTLP__METRIC__INIT);
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "A metric must be an object");
        return m;
    }
    m->name = ldg__otlp_jstr(jc, o, "name", rc);
    m->unit = ldg__otlp_jstr(jc, o, "unit", rc);
    const cJSON *d;
    if ((d = ldg__otlp_jobj(jc, o, "gauge", rc))) {
        m->data_case = LDG__OTLP__METRIC__DATA_GAUGE;
        m->gauge = NEW(jc, Ldg__Otlp__Gauge, LDG__OTLP__GAUGE__INIT);
        m->gauge->data_points = j_numpoints(jc, ldg__otlp_jarr(jc, d, "dataPoints", rc), &m->gauge->n_data_points, rc);
    } else if ((d = ldg__otlp_jobj(jc, o, "sum", rc))) {
        m->data_case = LDG__OTLP__METRIC__DATA_SUM;
        m->sum = NEW(jc, Ldg__Otlp__Sum, LDG__OTLP__SUM__INIT);
        m->sum->data_points = j_numpoints(jc, ldg__otlp_jarr(jc, d, "dataPoints", rc), &m->sum->n_data_points, rc);
        m->sum->aggregation_temporality =
            ldg__otlp_j_enum(jc, d, "aggregationTemporality", temporality_names, LDG_ARRAY_SIZE(temporality_names), rc);
        const cJSON *mono = ldg_json_member(d, "isMonotonic");
        m->sum->is_monotonic = cJSON_IsTrue(mono);
    } else if ((d = ldg__otlp_jobj(jc, o, "histogram", rc))) {
        m->data_case = LDG__OTLP__METRIC__DATA_HISTOGRAM;
        m->histogram = NEW(jc, Ldg__Otlp__Histogram, LDG__OTLP__HISTOGRAM__INIT);
        m->histogram->data_points =
            j_histpoints(jc, ldg__otlp_jarr(jc, d, "dataPoints", rc), &m->histogram->n_data_points, rc);
        m->histogram->aggregation_temporality =
            ldg__otlp_j_enum(jc, d, "aggregationTemporality", temporality_names, LDG_ARRAY_SIZE(temporality_names), rc);
    } else if ((d = ldg__otlp_jobj(jc, o, "exponentialHistogram", rc)) || (d = ldg__otlp_jobj(jc, o, "summary", rc))) {
        bool exp = ldg_json_member(o, "exponentialHistogram") != NULL;
        Ldg__Otlp__UnstoredPoints *u = NEW(jc, Ldg__Otlp__UnstoredPoints, LDG__OTLP__UNSTORED_POINTS__INIT);
        const cJSON *pts = ldg__otlp_jarr(jc, d, "dataPoints", rc);
        u->n_data_points = pts ? (size_t)cJSON_GetArraySize(pts) : 0;
        m->data_case = exp ? LDG__OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM : LDG__OTLP__METRIC__DATA_SUMMARY;
        if (exp)
            m->exponential_histogram = u;
        else
            m->summary = u;
    }
    return m;
}

static int json_to_metrics(struct ldg__otlp_json *jc, const cJSON *root, MetricsRequest **out)
{
    int rc = 0;
    if (!cJSON_IsObject(root))
        return ldg_json_fail(jc->err, jc->errlen, "Request body must be a JSON object");
    MetricsRequest *req = NEW(jc, MetricsRequest, LDG__OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT);
    const cJSON *rms;
    req->resource_metrics = ldg__otlp_jarr_room(jc, root, "resourceMetrics", &rms, &rc);
    for (const cJSON *it = rms ? rms->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsObject(it))
            return ldg_json_fail(jc->err, jc->errlen, "resourceMetrics items must be objects");
        Ldg__Otlp__ResourceMetrics *rm = NEW(jc, Ldg__Otlp__ResourceMetrics, LDG__OTLP__RESOURCE_METRICS__INIT);
        req->resource_metrics[req->n_resource_metrics++] = rm;
        rm->resource = ldg__otlp_j_resource(jc, it, &rc);
        const cJSON *sms;
        rm->scope_metrics = ldg__otlp_jarr_room(jc, it, "scopeMetrics", &sms, &rc);
        for (const cJSON *s = sms ? sms->child : NULL; s && rc == 0; s = s->next) {
            if (!cJSON_IsObject(s))
                return ldg_json_fail(jc->err, jc->errlen, "scopeMetrics items must be objects");
            Ldg__Otlp__ScopeMetrics *sm = NEW(jc, Ldg__Otlp__ScopeMetrics, LDG__OTLP__SCOPE_METRICS__INIT);
            rm->scope_metrics[rm->n_scope_metrics++] = sm;
            const cJSON *ms;
            sm->metrics = ldg__otlp_jarr_room(jc, s, "metrics", &ms, &rc);
            for (const cJSON *m = ms ? ms->child : NULL; m && rc == 0; m = m->next)
                sm->metrics[sm->n_metrics++] = j_metric(jc, m, &rc);
        }
    }
    *out = req;
    return rc;
}

static void copy_double(struct ldg_buf *b, double v)
{
    if (isnan(v))
        ldg_buf_puts(b, "NaN");
    else if (isinf(v))
        ldg_buf_puts(b, v > 0 ? "Infinity" : "-Infinity");
    else
        ldg_buf_printf(b, "%.17g", v);
}

static void copy_opt_ts(struct ldg_buf *b, uint64_t ns)
{
    if (ns)
        ldg__otlp_copy_ts(b, (int64_t)(ns / 1000));
    else
        ldg_buf_puts(b, "\\N");
}

struct mrow {
    const char *name, *type, *unit, *service;
    int temporality;
    bool monotonic;
};

/* The common head of a metric point's COPY line, through start_time; false when the point is
 * refused. */
static bool metric_head(struct ldg__otlp_map *mc, struct ldg_buf *copy, const struct mrow *m, int64_t project_id,
                        uint64_t time_ns, uint64_t start_ns, KeyValue **attrs, size_t nattrs, int64_t now_us,
                        size_t idx, struct ldg_otlp_rows *out, const char **attrs_text)
{
    mc->err = NULL;
    if (!time_ns) {
        ldg__otlp_row_problem(out, idx, "time_unix_nano is required");
        return false;
    }
    int64_t us = (int64_t)(time_ns / 1000);
    if (us > now_us + 300 * 1000000LL) {
        ldg__otlp_row_problem(out, idx, "Data point cannot be more than 5 minutes in the future");
        return false;
    }
    if (us < out->oldest_us) {
        ldg__otlp_row_problem(out, idx, "Data point lies before the project's retention period");
        return false;
    }
    cJSON *a = ldg__otlp_kvlist_json(mc, attrs, nattrs, LDG_OTLP_MAX_DEPTH);
    if (mc->err) {
        ldg__otlp_row_problem(out, idx, mc->err);
        return false;
    }
    if (!ldg__otlp_add_month(out, us)) {
        ldg__otlp_row_problem(out, idx, "data points of one request may lie in at most 8 different months");
        return false;
    }
    *attrs_text = a->child ? cJSON_PrintUnformatted(a) : NULL;
    out->last_us = us;
    ldg_buf_put_i64(copy, project_id);
    ldg_buf_puts(copy, "\t");
    ldg__otlp_copy_text(copy, m->name);
    ldg_buf_printf(copy, "\t%s\t", m->type);
    if (m->unit && *m->unit)
        ldg__otlp_copy_text(copy, m->unit);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_printf(copy, "\t%d\t%s\t", m->temporality, m->monotonic ? "t" : "f");
    if (m->service)
        ldg__otlp_copy_text(copy, m->service);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    ldg__otlp_copy_ts(copy, us);
    ldg_buf_puts(copy, "\t");
    copy_opt_ts(copy, start_ns);
    return true;
}

static void metric_tail(struct ldg_buf *copy, const char *attrs_text, struct ldg_otlp_rows *out)
{
    ldg_buf_puts(copy, "\t");
    if (attrs_text)
        ldg__otlp_copy_text(copy, attrs_text);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\n");
    out->row_us[out->rows++] = out->last_us;
}

static void map_metric(struct ldg__otlp_map *mc, const char *service, const Metric *m, size_t *idx, int64_t project_id,
                       int64_t now_us, struct ldg_buf *copy, struct ldg_otlp_rows *out)
{
    struct mrow r = {.name = m->name, .unit = m->unit, .service = service};
    bool named = m->name && *m->name && ldg__otlp_utf8_ok(m->name) && ldg__otlp_utf8_ok(m->unit);
    const char *attrs_text;
    switch (m->data_case) {
    case LDG__OTLP__METRIC__DATA_GAUGE:
    case LDG__OTLP__METRIC__DATA_SUM: {
        bool gauge = m->data_case == LDG__OTLP__METRIC__DATA_GAUGE;
        size_t n = gauge ? m->gauge->n_data_points : m->sum->n_data_points;
        NumPoint **pts = gauge ? m->gauge->data_points : m->sum->data_points;
        r.type = gauge ? "gauge" : "sum";
        if (!gauge) {
            r.temporality = m->sum->aggregation_temporality >= 0 && m->sum->aggregation_temporality <= 2
                                ? m->sum->aggregation_temporality
                                : 0;
            r.monotonic = m->sum->is_monotonic;
        }
        for (size_t i = 0; i < n; i++, (*idx)++) {
            const NumPoint *p = pts[i];
            if (!named) {
                ldg__otlp_row_problem(out, *idx, "metric name must be non-empty UTF-8");
                continue;
            }
            if (!metric_head(mc, copy, &r, project_id, p->time_unix_nano, p->start_time_unix_nano, p->attributes,
                             p->n_attributes, now_us, *idx, out, &attrs_text))
                continue;
            ldg_buf_puts(copy, "\t");
            if (p->value_case == LDG__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT)
                ldg_buf_put_i64(copy, p->as_int);
            else if (p->value_case == LDG__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
                copy_double(copy, p->as_double);
            else
                ldg_buf_puts(copy, "\\N");
            ldg_buf_puts(copy, "\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N");
            metric_tail(copy, attrs_text, out);
        }
        break;
    }
    case LDG__OTLP__METRIC__DATA_HISTOGRAM: {
        r.type = "histogram";
        r.temporality = m->histogram->aggregation_temporality >= 0 && m->histogram->aggregation_temporality <= 2
                            ? m->histogram->aggregation_temporality
                            : 0;
        for (size_t i = 0; i < m->histogram->n_data_points; i++, (*idx)++) {
            const HistPoint *p = m->histogram->data_points[i];
            if (!named) {
                ldg__otlp_row_problem(out, *idx, "metric name must be non-empty UTF-8");
                continue;
            }
            if (p->n_bucket_counts && p->n_bucket_counts != p->n_explicit_bounds + 1) {
                ldg__otlp_row_problem(out, *idx, "a histogram needs one bucket count more than explicit bounds");
                continue;
            }
            if (!metric_head(mc, copy, &r, project_id, p->time_unix_nano, p->start_time_unix_nano, p->attributes,
                             p->n_attributes, now_us, *idx, out, &attrs_text))
                continue;
            ldg_buf_printf(copy, "\t\\N\t%llu\t", (unsigned long long)p->count);
            copy_double(copy, p->sum);
            bool minmax = p->min != 0 || p->max != 0; /* both 0: not sent (or truly 0) */
            ldg_buf_puts(copy, "\t");
            if (minmax)
                copy_double(copy, p->min);
            else
                ldg_buf_puts(copy, "\\N");
            ldg_buf_puts(copy, "\t");
            if (minmax)
                copy_double(copy, p->max);
            else
                ldg_buf_puts(copy, "\\N");
            ldg_buf_puts(copy, "\t{");
            for (size_t k = 0; k < p->n_explicit_bounds; k++) {
                if (k)
                    ldg_buf_puts(copy, ",");
                copy_double(copy, p->explicit_bounds[k]);
            }
            ldg_buf_puts(copy, "}\t{");
            for (size_t k = 0; k < p->n_bucket_counts; k++)
                ldg_buf_printf(copy, "%s%llu", k ? "," : "", (unsigned long long)p->bucket_counts[k]);
            ldg_buf_puts(copy, "}");
            metric_tail(copy, attrs_text, out);
        }
        break;
    }
    case LDG__OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
    case LDG__OTLP__METRIC__DATA_SUMMARY: {
        const Ldg__Otlp__UnstoredPoints *u =
            m->data_case == LDG__OTLP__METRIC__DATA_SUMMARY ? m->summary : m->exponential_histogram;
        for (size_t i = 0; i < u->n_data_points; i++, (*idx)++)
            ldg__otlp_row_problem(out, *idx,
                         m->data_case == LDG__OTLP__METRIC__DATA_SUMMARY
                             ? "summary metrics are not stored"
                             : "exponential histograms are not stored (configure explicit bucket histograms)");
        break;
    }
    default:
        break;
    }
}

static size_t metric_points(const Metric *m)
{
    switch (m->data_case) {
    case LDG__OTLP__METRIC__DATA_GAUGE:
        return m->gauge->n_data_points;
    case LDG__OTLP__METRIC__DATA_SUM:
        return m->sum->n_data_points;
    case LDG__OTLP__METRIC__DATA_HISTOGRAM:
        return m->histogram->n_data_points;
    case LDG__OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->n_data_points;
    case LDG__OTLP__METRIC__DATA_SUMMARY:
        return m->summary->n_data_points;
    default:
        return 0;
    }
}

int ldg_otlp_metrics_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                            int64_t oldest_us, int64_t project_id, size_t max_points, struct ldg_arena *arena, struct ldg_buf *copy,
                            struct ldg_otlp_rows *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->what = "Data point";
    out->oldest_us = oldest_us;
    ldg_buf_init(&out->message);
    MetricsRequest *req = NULL;
    if (enc == LDG_OTLP_PROTOBUF) {
        const uint8_t *p = (const uint8_t *)body;
        if (len && ldg__otlp_scan_pb(p, p + len, M_METRICSREQ, LDG_OTLP_MAX_DEPTH) < 0)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportMetricsServiceRequest protobuf");
        ProtobufCAllocator al = {.alloc = ldg__otlp_pb_alloc, .free = ldg__otlp_pb_free, .allocator_data = arena};
        req = ldg__otlp__export_metrics_service_request__unpack(&al, len, p);
        if (!req)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportMetricsServiceRequest protobuf");
    } else {
        cJSON *root = len ? ldg_json_parse_in(body, len, arena, NULL) : NULL;
        if (!root)
            return ldg_json_fail(err, errlen, "Request body must be valid JSON (UTF-8, no NUL characters)");
        struct ldg__otlp_json jc = {arena, err, errlen};
        if (json_to_metrics(&jc, root, &req) < 0)
            return -EINVAL;
    }
    size_t n = 0;
    for (size_t i = 0; i < req->n_resource_metrics; i++)
        for (size_t j = 0; j < req->resource_metrics[i]->n_scope_metrics; j++) {
            const Ldg__Otlp__ScopeMetrics *sm = req->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++)
                n += metric_points(sm->metrics[k]);
        }
    if (n > max_points)
        return ldg_json_fail(err, errlen, "At most %zu data points per request (got %zu)", max_points, n);
    out->n = n;
    out->row_us = ldg_arena_alloc(arena, (n ? n : 1) * sizeof *out->row_us);
    struct ldg__otlp_map mc = {.a = arena};
    size_t idx = 0;
    ldg_json_build_begin(arena);
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Ldg__Otlp__ResourceMetrics *rm = req->resource_metrics[i];
        struct ldg__otlp_res ri;
        ldg__otlp_resinfo_fill(&mc, rm->resource, &ri);
        const char *service = NULL;
        for (size_t k = 0; k < ri.nservice; k++)
            if (strcmp(ri.service[k]->key, "service.name") == 0)
                service = ldg__otlp_any_str(ri.service[k]->value);
        if (service && !ldg__otlp_utf8_ok(service))
            service = NULL;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Ldg__Otlp__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++)
                map_metric(&mc, service, sm->metrics[k], &idx, project_id, now_us, copy, out);
        }
    }
    ldg_json_build_end();
    return 0;
}
