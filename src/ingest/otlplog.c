/*
 * otlplog.c: OTLP logs requests → v1 log objects; OTLP responses and google.rpc.Status bodies.
 *
 * Both encodings end in the same protobuf-c structs: protobuf bodies are unpacked by the code
 * protoc-c generates from otlp.proto (allocating from the arena), OTLP/JSON bodies are parsed with
 * cJSON and converted into those structs here. One mapping then serves both.
 *
 * protobuf-c has no nesting limit of its own, and AnyValue nests (arrays, key-value lists): a
 * 10 MB body of nested AnyValues would exhaust the stack while unpacking. scan_pb walks the wire
 * format first, knowing which fields of which message are messages, and refuses bodies nested deeper
 * than LDG_OTLP_MAX_DEPTH values or not well-formed.
 */
#include "ingest/otlplog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "ingest/log.h"
#include "ingest/logcodec.h"
#include "ingest/otlp.pb-c.h"

typedef Ldg__Otlp__AnyValue AnyValue;
typedef Ldg__Otlp__KeyValue KeyValue;
typedef Ldg__Otlp__LogRecord LogRecord;
typedef Ldg__Otlp__ResourceLogs ResourceLogs;
typedef Ldg__Otlp__ScopeLogs ScopeLogs;
typedef Ldg__Otlp__ExportLogsServiceRequest LogsRequest;

/* ---- protobuf structure scan -------------------------------------------------------------------- */

/* The messages whose nesting matters, and for each the fields that hold messages. */
enum pbmsg {
    M_NONE,
    M_LOGSREQ,
    M_RESLOGS,
    M_RESOURCE,
    M_SCOPELOGS,
    M_SCOPE,
    M_RECORD,
    M_KV,
    M_ANY,
    M_ARR,
    M_KVL,
    M_TRACEREQ,
    M_RESSPANS,
    M_SCOPESPANS,
    M_SPAN,
    M_EVENT,
    M_METRICSREQ,
    M_RESMETRICS,
    M_SCOPEMETRICS,
    M_METRIC,
    M_NUMSERIES, /* Gauge, Sum */
    M_HISTSERIES,
    M_NUMPOINT,
    M_HISTPOINT,
};

static enum pbmsg child_of(enum pbmsg m, uint32_t field)
{
    switch (m) {
    case M_LOGSREQ:
        return field == 1 ? M_RESLOGS : M_NONE;
    case M_RESLOGS:
        return field == 1 ? M_RESOURCE : field == 2 ? M_SCOPELOGS : M_NONE;
    case M_RESOURCE:
        return field == 1 ? M_KV : M_NONE;
    case M_SCOPELOGS:
        return field == 1 ? M_SCOPE : field == 2 ? M_RECORD : M_NONE;
    case M_SCOPE:
        return field == 3 ? M_KV : M_NONE;
    case M_RECORD:
        return field == 5 ? M_ANY : field == 6 ? M_KV : M_NONE;
    case M_KV:
        return field == 2 ? M_ANY : M_NONE;
    case M_ANY:
        return field == 5 ? M_ARR : field == 6 ? M_KVL : M_NONE;
    case M_ARR:
        return field == 1 ? M_ANY : M_NONE;
    case M_KVL:
        return field == 1 ? M_KV : M_NONE;
    case M_TRACEREQ:
        return field == 1 ? M_RESSPANS : M_NONE;
    case M_RESSPANS:
        return field == 1 ? M_RESOURCE : field == 2 ? M_SCOPESPANS : M_NONE;
    case M_SCOPESPANS:
        return field == 1 ? M_SCOPE : field == 2 ? M_SPAN : M_NONE;
    case M_SPAN:
        return field == 9 ? M_KV : field == 11 ? M_EVENT : M_NONE;
    case M_EVENT:
        return field == 3 ? M_KV : M_NONE;
    case M_METRICSREQ:
        return field == 1 ? M_RESMETRICS : M_NONE;
    case M_RESMETRICS:
        return field == 1 ? M_RESOURCE : field == 2 ? M_SCOPEMETRICS : M_NONE;
    case M_SCOPEMETRICS:
        return field == 1 ? M_SCOPE : field == 2 ? M_METRIC : M_NONE;
    case M_METRIC:
        return field == 5 || field == 7 ? M_NUMSERIES : field == 9 ? M_HISTSERIES : M_NONE;
    case M_NUMSERIES:
        return field == 1 ? M_NUMPOINT : M_NONE;
    case M_HISTSERIES:
        return field == 1 ? M_HISTPOINT : M_NONE;
    case M_NUMPOINT:
        return field == 7 ? M_KV : M_NONE;
    case M_HISTPOINT:
        return field == 9 ? M_KV : M_NONE;
    default:
        return M_NONE;
    }
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Well-formed wire format, message fields nested at most `depth` more levels. */
static int scan_pb(const uint8_t *p, const uint8_t *end, enum pbmsg m, int depth)
{
    if (depth < 0)
        return -1;
    while (p < end) {
        uint64_t key, v;
        if (read_varint(&p, end, &key) < 0)
            return -1;
        switch (key & 7) {
        case 0:
            if (read_varint(&p, end, &v) < 0)
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2: {
            if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            enum pbmsg c = child_of(m, (uint32_t)(key >> 3));
            if (c != M_NONE && scan_pb(p, p + v, c, c == M_ANY ? depth - 1 : depth) < 0)
                return -1;
            p += v;
            break;
        }
        default:
            return -1; /* groups (3, 4) are not used by OTLP */
        }
    }
    return 0;
}

static void *on_pb_alloc(void *data, size_t n)
{
    return ldg_arena_alloc(data, n ? n : 1);
}

static void on_pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the arena releases everything at once */
}

/* ---- OTLP/JSON → protobuf-c structs -------------------------------------------------------------- */

struct jctx {
    struct ldg_arena *a;
    char *err;
    size_t errlen;
};

#define NEW(jc, T, init)                                                                                     \
    ({                                                                                                       \
        T *x_ = ldg_arena_alloc((jc)->a, sizeof(T));                                                         \
        *x_ = (T)init;                                                                                       \
        x_;                                                                                                  \
    })

static const cJSON *jarr(struct jctx *jc, const cJSON *obj, const char *name, int *rc)
{
    const cJSON *v = ldg_json_member(obj, name);
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsArray(v)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be an array", name);
        return NULL;
    }
    return v;
}

static const cJSON *jobj(struct jctx *jc, const cJSON *obj, const char *name, int *rc)
{
    const cJSON *v = ldg_json_member(obj, name);
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsObject(v)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be an object", name);
        return NULL;
    }
    return v;
}

static char *jstr(struct jctx *jc, const cJSON *obj, const char *name, int *rc)
{
    const cJSON *v = ldg_json_member(obj, name);
    if (!v || cJSON_IsNull(v))
        return (char *)protobuf_c_empty_string;
    if (!cJSON_IsString(v)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be a string", name);
        return (char *)protobuf_c_empty_string;
    }
    return v->valuestring;
}

/* A 64-bit integer: JSON number or decimal string (the proto3 JSON mapping writes strings). v is the
 * value of field `name` (for the message); absent or null is 0. */
static int64_t jint_value(struct jctx *jc, const cJSON *v, const char *name, int *rc)
{
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d >= -9.2e18 && d <= 1.8e19)
            return d >= 9.2e18 ? (int64_t)(uint64_t)d : (int64_t)d;
    } else if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        errno = 0;
        const char *s = v->valuestring;
        int64_t r = s[0] == '-' ? (int64_t)strtoll(s, &end, 10) : (int64_t)strtoull(s, &end, 10);
        if (!errno && *end == '\0')
            return r;
    }
    *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be an integer", name);
    return 0;
}

static int64_t jint(struct jctx *jc, const cJSON *obj, const char *name, int *rc)
{
    return jint_value(jc, ldg_json_member(obj, name), name, rc);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* trace/span ids: hex in OTLP/JSON; "" = absent. */
static ProtobufCBinaryData jid(struct jctx *jc, const cJSON *obj, const char *name, size_t bytes, int *rc)
{
    ProtobufCBinaryData d = {0, NULL};
    const char *s = jstr(jc, obj, name, rc);
    size_t n = strlen(s);
    if (!n)
        return d;
    if (n != 2 * bytes) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be %zu hex digits", name, 2 * bytes);
        return d;
    }
    uint8_t *out = ldg_arena_alloc(jc->a, bytes);
    for (size_t i = 0; i < bytes; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "Field '%s' must be %zu hex digits", name, 2 * bytes);
            return d;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    d.len = bytes;
    d.data = out;
    return d;
}

static KeyValue **j_kvs(struct jctx *jc, const cJSON *arr, size_t *n, int depth, int *rc);

static AnyValue *j_any(struct jctx *jc, const cJSON *o, int depth, int *rc)
{
    AnyValue *v = NEW(jc, AnyValue, LDG__OTLP__ANY_VALUE__INIT);
    if (!o || cJSON_IsNull(o))
        return v;
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "An AnyValue must be an object");
        return v;
    }
    if (depth <= 0) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "Values nest deeper than %d levels", LDG_OTLP_MAX_DEPTH);
        return v;
    }
    const cJSON *x;
    if ((x = ldg_json_member(o, "stringValue")) && !cJSON_IsNull(x)) {
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = jstr(jc, o, "stringValue", rc);
    } else if ((x = ldg_json_member(o, "boolValue")) && !cJSON_IsNull(x)) {
        if (!cJSON_IsBool(x))
            *rc = ldg_json_fail(jc->err, jc->errlen, "Field 'boolValue' must be a boolean");
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = cJSON_IsTrue(x);
    } else if ((x = ldg_json_member(o, "intValue")) && !cJSON_IsNull(x)) {
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = jint(jc, o, "intValue", rc);
    } else if ((x = ldg_json_member(o, "doubleValue")) && !cJSON_IsNull(x)) {
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
        if (cJSON_IsNumber(x))
            v->double_value = x->valuedouble;
        else if (cJSON_IsString(x)) /* "NaN", "Infinity", "-Infinity" or a decimal */
            v->double_value = strtod(x->valuestring, NULL);
        else
            *rc = ldg_json_fail(jc->err, jc->errlen, "Field 'doubleValue' must be a number");
    } else if ((x = jobj(jc, o, "arrayValue", rc))) {
        const cJSON *vals = jarr(jc, x, "values", rc);
        Ldg__Otlp__ArrayValue *av = NEW(jc, Ldg__Otlp__ArrayValue, LDG__OTLP__ARRAY_VALUE__INIT);
        size_t n = vals ? (size_t)cJSON_GetArraySize(vals) : 0, i = 0;
        av->values = ldg_arena_alloc(jc->a, (n ? n : 1) * sizeof *av->values);
        for (const cJSON *it = vals ? vals->child : NULL; it && *rc == 0; it = it->next)
            av->values[i++] = j_any(jc, it, depth - 1, rc);
        av->n_values = i;
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = av;
    } else if ((x = jobj(jc, o, "kvlistValue", rc))) {
        Ldg__Otlp__KeyValueList *kl = NEW(jc, Ldg__Otlp__KeyValueList, LDG__OTLP__KEY_VALUE_LIST__INIT);
        kl->values = j_kvs(jc, jarr(jc, x, "values", rc), &kl->n_values, depth - 1, rc);
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE;
        v->kvlist_value = kl;
    } else if ((x = ldg_json_member(o, "bytesValue")) && !cJSON_IsNull(x)) {
        /* base64 in OTLP/JSON: kept as that text (protobuf bytes are stored base64-encoded too) */
        const char *s = jstr(jc, o, "bytesValue", rc);
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = (char *)s;
    }
    return v;
}

static KeyValue **j_kvs(struct jctx *jc, const cJSON *arr, size_t *n, int depth, int *rc)
{
    size_t cap = arr ? (size_t)cJSON_GetArraySize(arr) : 0, i = 0;
    KeyValue **kvs = ldg_arena_alloc(jc->a, (cap ? cap : 1) * sizeof *kvs);
    for (const cJSON *it = arr ? arr->child : NULL; it && *rc == 0; it = it->next) {
        if (!cJSON_IsObject(it)) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "An attribute must be an object");
            break;
        }
        KeyValue *kv = NEW(jc, KeyValue, LDG__OTLP__KEY_VALUE__INIT);
        kv->key = jstr(jc, it, "key", rc);
        kv->value = j_any(jc, ldg_json_member(it, "value"), depth, rc);
        kvs[i++] = kv;
    }
    *n = i;
    return kvs;
}

static const char *const severity_names[] = {
    "SEVERITY_NUMBER_UNSPECIFIED", "SEVERITY_NUMBER_TRACE",  "SEVERITY_NUMBER_TRACE2", "SEVERITY_NUMBER_TRACE3",
    "SEVERITY_NUMBER_TRACE4",      "SEVERITY_NUMBER_DEBUG",  "SEVERITY_NUMBER_DEBUG2", "SEVERITY_NUMBER_DEBUG3",
    "SEVERITY_NUMBER_DEBUG4",      "SEVERITY_NUMBER_INFO",   "SEVERITY_NUMBER_INFO2",  "SEVERITY_NUMBER_INFO3",
    "SEVERITY_NUMBER_INFO4",       "SEVERITY_NUMBER_WARN",   "SEVERITY_NUMBER_WARN2",  "SEVERITY_NUMBER_WARN3",
    "SEVERITY_NUMBER_WARN4",       "SEVERITY_NUMBER_ERROR",  "SEVERITY_NUMBER_ERROR2", "SEVERITY_NUMBER_ERROR3",
    "SEVERITY_NUMBER_ERROR4",      "SEVERITY_NUMBER_FATAL",  "SEVERITY_NUMBER_FATAL2", "SEVERITY_NUMBER_FATAL3",
    "SEVERITY_NUMBER_FATAL4",
};

static int32_t j_severity(struct jctx *jc, const cJSON *rec, int *rc)
{
    const cJSON *v = ldg_json_member(rec, "severityNumber");
    if (cJSON_IsString(v)) {
        for (size_t i = 0; i < LDG_ARRAY_SIZE(severity_names); i++)
            if (strcmp(v->valuestring, severity_names[i]) == 0)
                return (int32_t)i;
        *rc = ldg_json_fail(jc->err, jc->errlen, "Unknown severityNumber '%.40s'", v->valuestring);
        return 0;
    }
    return (int32_t)jint(jc, rec, "severityNumber", rc);
}

static LogRecord *j_record(struct jctx *jc, const cJSON *o, int *rc)
{
    LogRecord *r = NEW(jc, LogRecord, LDG__OTLP__LOG_RECORD__INIT);
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "A log record must be an object");
        return r;
    }
    r->time_unix_nano = (uint64_t)jint(jc, o, "timeUnixNano", rc);
    r->observed_time_unix_nano = (uint64_t)jint(jc, o, "observedTimeUnixNano", rc);
    r->severity_number = j_severity(jc, o, rc);
    r->severity_text = jstr(jc, o, "severityText", rc);
    const cJSON *body = ldg_json_member(o, "body");
    r->body = body && !cJSON_IsNull(body) ? j_any(jc, body, LDG_OTLP_MAX_DEPTH, rc) : NULL;
    r->attributes = j_kvs(jc, jarr(jc, o, "attributes", rc), &r->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
    r->trace_id = jid(jc, o, "traceId", 16, rc);
    r->span_id = jid(jc, o, "spanId", 8, rc);
    r->event_name = jstr(jc, o, "eventName", rc);
    return r;
}

static int json_to_request(struct jctx *jc, const cJSON *root, LogsRequest **out)
{
    int rc = 0;
    if (!cJSON_IsObject(root))
        return ldg_json_fail(jc->err, jc->errlen, "Request body must be a JSON object");
    LogsRequest *req = NEW(jc, LogsRequest, LDG__OTLP__EXPORT_LOGS_SERVICE_REQUEST__INIT);
    const cJSON *rls = jarr(jc, root, "resourceLogs", &rc);
    size_t nrl = rls ? (size_t)cJSON_GetArraySize(rls) : 0;
    req->resource_logs = ldg_arena_alloc(jc->a, (nrl ? nrl : 1) * sizeof *req->resource_logs);
    for (const cJSON *it = rls ? rls->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsObject(it))
            return ldg_json_fail(jc->err, jc->errlen, "resourceLogs items must be objects");
        ResourceLogs *rl = NEW(jc, ResourceLogs, LDG__OTLP__RESOURCE_LOGS__INIT);
        req->resource_logs[req->n_resource_logs++] = rl;
        const cJSON *res = jobj(jc, it, "resource", &rc);
        if (res) {
            rl->resource = NEW(jc, Ldg__Otlp__Resource, LDG__OTLP__RESOURCE__INIT);
            rl->resource->attributes = j_kvs(jc, jarr(jc, res, "attributes", &rc), &rl->resource->n_attributes,
                                             LDG_OTLP_MAX_DEPTH, &rc);
        }
        const cJSON *sls = jarr(jc, it, "scopeLogs", &rc);
        size_t nsl = sls ? (size_t)cJSON_GetArraySize(sls) : 0;
        rl->scope_logs = ldg_arena_alloc(jc->a, (nsl ? nsl : 1) * sizeof *rl->scope_logs);
        for (const cJSON *s = sls ? sls->child : NULL; s && rc == 0; s = s->next) {
            if (!cJSON_IsObject(s))
                return ldg_json_fail(jc->err, jc->errlen, "scopeLogs items must be objects");
            ScopeLogs *sl = NEW(jc, ScopeLogs, LDG__OTLP__SCOPE_LOGS__INIT);
            rl->scope_logs[rl->n_scope_logs++] = sl;
            const cJSON *recs = jarr(jc, s, "logRecords", &rc);
            size_t nr = recs ? (size_t)cJSON_GetArraySize(recs) : 0;
            sl->log_records = ldg_arena_alloc(jc->a, (nr ? nr : 1) * sizeof *sl->log_records);
            for (const cJSON *r = recs ? recs->child : NULL; r && rc == 0; r = r->next)
                sl->log_records[sl->n_log_records++] = j_record(jc, r, &rc);
        }
    }
    *out = req;
    return rc;
}

/* ---- mapping ------------------------------------------------------------------------------------- */

struct resinfo {
    const char *environment, *release, *platform, *sdk_version, *platform_version;
    const KeyValue *const *service; /* resource attributes service.* */
    size_t nservice;
};

struct mapctx {
    struct ldg_arena *a;
    const char *err; /* first mapping problem of the current record */
};

static const char *any_str(const AnyValue *v)
{
    return v && v->value_case == LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE ? v->string_value : NULL;
}

static bool any_int(const AnyValue *v, int64_t *out)
{
    if (!v)
        return false;
    if (v->value_case == LDG__OTLP__ANY_VALUE__VALUE_INT_VALUE) {
        *out = v->int_value;
        return true;
    }
    if (v->value_case == LDG__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE && v->double_value > -9e18 &&
        v->double_value < 9e18) {
        *out = (int64_t)v->double_value;
        return true;
    }
    const char *s = any_str(v);
    if (s && *s) {
        char *end;
        long long r = strtoll(s, &end, 10);
        if (*end == '\0') {
            *out = r;
            return true;
        }
    }
    return false;
}

static bool utf8_ok(const char *s)
{
    size_t chars;
    return ldg_utf8_count(s, strlen(s), &chars) == 0;
}

static void b64(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static cJSON *any_json(struct mapctx *mc, const AnyValue *v, int depth);

static cJSON *kvlist_json(struct mapctx *mc, KeyValue *const *kvs, size_t n, int depth)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        if (!utf8_ok(kvs[i]->key)) {
            mc->err = "Attribute key is not valid UTF-8";
            continue;
        }
        cJSON_AddItemToObject(o, kvs[i]->key, any_json(mc, kvs[i]->value, depth - 1));
    }
    return o;
}

static cJSON *any_json(struct mapctx *mc, const AnyValue *v, int depth)
{
    if (!v || depth <= 0)
        return cJSON_CreateNull();
    switch (v->value_case) {
    case LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE:
        if (!utf8_ok(v->string_value)) {
            mc->err = "String value is not valid UTF-8";
            return cJSON_CreateNull();
        }
        return cJSON_CreateString(v->string_value);
    case LDG__OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
        return cJSON_CreateBool(v->bool_value);
    case LDG__OTLP__ANY_VALUE__VALUE_INT_VALUE:
        if (v->int_value > (1LL << 53) || v->int_value < -(1LL << 53)) { /* keep every digit */
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)v->int_value);
            return cJSON_CreateString(num);
        }
        return cJSON_CreateNumber((double)v->int_value);
    case LDG__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return cJSON_CreateNumber(v->double_value);
    case LDG__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE: {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++)
            cJSON_AddItemToArray(arr, any_json(mc, v->array_value->values[i], depth - 1));
        return arr;
    }
    case LDG__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
        return v->kvlist_value ? kvlist_json(mc, v->kvlist_value->values, v->kvlist_value->n_values, depth)
                               : cJSON_CreateObject();
    case LDG__OTLP__ANY_VALUE__VALUE_BYTES_VALUE: {
        char *s = ldg_arena_alloc(mc->a, (v->bytes_value.len + 2) / 3 * 4 + 1);
        b64(v->bytes_value.data, v->bytes_value.len, s);
        return cJSON_CreateString(s);
    }
    default:
        return cJSON_CreateNull();
    }
}

/*
 * Put value under a dotted key as nested objects: `http.route` → {"http": {"route": …}}, so the
 * existing attribute filters (`attributes.http.route=…`) reach OTel's dotted names. When the path
 * is taken by a non-object (`http` = "x" and `http.route`), or a key repeats, or a segment is
 * empty, the value is kept under its whole dotted key at the top level instead (if that is free).
 */
static void put_dotted(struct mapctx *mc, cJSON *root, const char *key, cJSON *value)
{
    cJSON *cur = root;
    const char *seg = key;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (n == 0)
            break; /* empty segment: flat */
        char *name = ldg_arena_strndup(mc->a, seg, n);
        cJSON *have = cJSON_GetObjectItemCaseSensitive(cur, name);
        if (!dot) {
            if (have)
                break;
            cJSON_AddItemToObject(cur, name, value);
            return;
        }
        if (!have) {
            have = cJSON_CreateObject();
            cJSON_AddItemToObject(cur, name, have);
        } else if (!cJSON_IsObject(have)) {
            break;
        }
        cur = have;
        seg = dot + 1;
    }
    if (!cJSON_GetObjectItemCaseSensitive(root, key))
        cJSON_AddItemToObject(root, key, value);
}

/* s cut to at most max code points (s is valid UTF-8). */
static const char *cut(struct mapctx *mc, const char *s, size_t max)
{
    size_t chars = 0, i = 0;
    while (s[i]) {
        if (chars == max)
            return ldg_arena_strndup(mc->a, s, i);
        i++;
        while (((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        chars++;
    }
    return s;
}

static const char *level_of(const LogRecord *r)
{
    int32_t s = r->severity_number;
    if (s >= 1 && s <= 24)
        return s <= 8 ? "debug" : s <= 12 ? "info" : s <= 16 ? "warning" : s <= 20 ? "error" : "critical";
    const char *t = r->severity_text ? r->severity_text : "";
    static const struct {
        const char *prefix, *level;
    } words[] = {{"trace", "debug"}, {"debug", "debug"},       {"info", "info"},       {"notice", "info"},
                 {"warn", "warning"}, {"err", "error"},        {"fatal", "critical"}, {"crit", "critical"},
                 {"alert", "critical"}, {"emerg", "critical"}, {"panic", "critical"}};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(words); i++)
        if (strncasecmp(t, words[i].prefix, strlen(words[i].prefix)) == 0)
            return words[i].level;
    return "info";
}

static const char *importance_of(const char *level)
{
    return strcmp(level, "critical") == 0 ? "critical"
           : strcmp(level, "error") == 0  ? "high"
           : strcmp(level, "debug") == 0  ? "low"
                                          : "standard";
}

static void add_str(cJSON *o, const char *name, const char *v)
{
    if (v && *v)
        cJSON_AddItemToObject(o, name, cJSON_CreateString(v));
}

static char *hex(struct mapctx *mc, ProtobufCBinaryData d)
{
    static const char digits[] = "0123456789abcdef";
    char *s = ldg_arena_alloc(mc->a, 2 * d.len + 1);
    for (size_t i = 0; i < d.len; i++) {
        s[2 * i] = digits[d.data[i] >> 4];
        s[2 * i + 1] = digits[d.data[i] & 15];
    }
    s[2 * d.len] = '\0';
    return s;
}

static bool all_zero(ProtobufCBinaryData d)
{
    for (size_t i = 0; i < d.len; i++)
        if (d.data[i])
            return false;
    return true;
}

static cJSON *map_record(struct mapctx *mc, const struct resinfo *ri, const LogRecord *r, int64_t now_us)
{
    mc->err = NULL;
    /* the attributes ledgerd reads */
    const AnyValue *lt = NULL, *imp = NULL, *dur = NULL, *etype = NULL, *emsg = NULL, *estack = NULL,
                   *method = NULL, *route = NULL, *upath = NULL, *status = NULL;
    bool exc = false, db = false, code = false;
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key;
        const AnyValue *v = r->attributes[i]->value;
        if (strncmp(k, "ledger.", 7) == 0) {
            if (strcmp(k + 7, "log_type") == 0)
                lt = v;
            else if (strcmp(k + 7, "importance") == 0)
                imp = v;
            else if (strcmp(k + 7, "duration_ms") == 0)
                dur = v;
        } else if (strncmp(k, "exception.", 10) == 0) {
            exc = true;
            if (strcmp(k + 10, "type") == 0)
                etype = v;
            else if (strcmp(k + 10, "message") == 0)
                emsg = v;
            else if (strcmp(k + 10, "stacktrace") == 0)
                estack = v;
        } else if (strcmp(k, "http.request.method") == 0 || (strcmp(k, "http.method") == 0 && !method)) {
            method = v;
        } else if (strcmp(k, "http.route") == 0) {
            route = v;
        } else if (strcmp(k, "url.path") == 0 || (strcmp(k, "http.target") == 0 && !upath)) {
            upath = v;
        } else if (strcmp(k, "http.response.status_code") == 0 || (strcmp(k, "http.status_code") == 0 && !status)) {
            status = v;
        } else if (strcmp(k, "db.system") == 0 || strcmp(k, "db.system.name") == 0) {
            db = true;
        } else if (strncmp(k, "code.", 5) == 0) {
            code = true;
        }
    }
    int64_t status_code = 0;
    bool has_status = any_int(status, &status_code);

    cJSON *o = cJSON_CreateObject();
    /* time: the event's, else when the SDK saw it, else now */
    uint64_t ns = r->time_unix_nano ? r->time_unix_nano : r->observed_time_unix_nano;
    int64_t us = ns ? (int64_t)(ns / 1000) : now_us;
    struct ldg_buf tb;
    char tmp[64];
    ldg_buf_init(&tb);
    ldg_logcodec_isoformat(us, 0, true, &tb);
    snprintf(tmp, sizeof tmp, "%.*s", (int)ldg_buf_size(&tb), ldg_buf_head(&tb));
    ldg_buf_free(&tb);
    cJSON_AddItemToObject(o, "timestamp", cJSON_CreateString(tmp));

    const char *level = level_of(r);
    cJSON_AddItemToObject(o, "level", cJSON_CreateString(level));
    const char *log_type = any_str(lt);
    if (!log_type || !*log_type) {
        log_type = exc                                          ? "exception"
                   : (any_str(method) && has_status)            ? "endpoint"
                   : db                                         ? "database"
                   : code                                       ? "logger"
                                                                : "custom";
    }
    cJSON_AddItemToObject(o, "log_type", cJSON_CreateString(log_type));
    const char *importance = any_str(imp);
    cJSON_AddItemToObject(o, "importance", cJSON_CreateString(importance && *importance ? importance : importance_of(level)));

    if (r->body && r->body->value_case != LDG__OTLP__ANY_VALUE__VALUE__NOT_SET) {
        const char *msg = any_str(r->body);
        if (msg && !utf8_ok(msg)) {
            mc->err = "Log body is not valid UTF-8";
        } else if (!msg) { /* a structured body: its JSON text */
            cJSON *b = any_json(mc, r->body, LDG_OTLP_MAX_DEPTH);
            msg = cJSON_PrintUnformatted(b); /* in the arena too (build mode) */
        }
        if (msg)
            cJSON_AddItemToObject(o, "message", cJSON_CreateString(cut(mc, msg, LDG_LOG_MAX_MESSAGE)));
    }
    if (strcmp(log_type, "exception") == 0 || exc) {
        const char *t = any_str(etype), *m = any_str(emsg), *st = any_str(estack);
        if ((t && !utf8_ok(t)) || (m && !utf8_ok(m)) || (st && !utf8_ok(st)))
            mc->err = "exception.* attribute is not valid UTF-8";
        else {
            add_str(o, "error_type", t && *t ? cut(mc, t, LDG_LOG_MAX_ERROR_TYPE) : exc ? "Exception" : NULL);
            add_str(o, "error_message", m ? cut(mc, m, LDG_LOG_MAX_ERROR_MESSAGE) : NULL);
            add_str(o, "stack_trace", st ? cut(mc, st, LDG_LOG_MAX_STACK_TRACE) : NULL);
        }
    }
    add_str(o, "environment", ri->environment);
    add_str(o, "release", ri->release);
    add_str(o, "sdk_version", ri->sdk_version);
    add_str(o, "platform", ri->platform);
    add_str(o, "platform_version", ri->platform_version);

    cJSON *attrs = cJSON_CreateObject();
    for (size_t i = 0; i < ri->nservice; i++)
        put_dotted(mc, attrs, ri->service[i]->key, any_json(mc, ri->service[i]->value, LDG_OTLP_MAX_DEPTH));
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key;
        if (strncmp(k, "ledger.", 7) == 0 || strncmp(k, "exception.", 10) == 0)
            continue; /* carried by columns */
        if (!utf8_ok(k)) {
            mc->err = "Attribute key is not valid UTF-8";
            continue;
        }
        put_dotted(mc, attrs, k, any_json(mc, r->attributes[i]->value, LDG_OTLP_MAX_DEPTH));
    }
    if (r->trace_id.len && !all_zero(r->trace_id))
        put_dotted(mc, attrs, "trace_id", cJSON_CreateString(hex(mc, r->trace_id)));
    if (r->span_id.len && !all_zero(r->span_id))
        put_dotted(mc, attrs, "span_id", cJSON_CreateString(hex(mc, r->span_id)));
    if (r->event_name && *r->event_name && utf8_ok(r->event_name))
        put_dotted(mc, attrs, "event.name", cJSON_CreateString(r->event_name));
    /* an endpoint log: the endpoint object from the HTTP attributes (unless the record has none
     * and carries its own `endpoint` attribute, as a v1 log converted to OTLP does) */
    if (strcmp(log_type, "endpoint") == 0 &&
        (method || route || upath || status || !cJSON_GetObjectItemCaseSensitive(attrs, "endpoint"))) {
        cJSON *ep = cJSON_CreateObject();
        const char *m = any_str(method), *p = any_str(route);
        if (!p || !*p)
            p = any_str(upath);
        cJSON_AddItemToObject(ep, "method", m && utf8_ok(m) ? cJSON_CreateString(m) : cJSON_CreateNull());
        cJSON_AddItemToObject(ep, "path", p && utf8_ok(p) ? cJSON_CreateString(p) : cJSON_CreateNull());
        cJSON_AddItemToObject(ep, "status_code", has_status ? cJSON_CreateNumber((double)status_code) : cJSON_CreateNull());
        int64_t d;
        if (dur && dur->value_case == LDG__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE)
            cJSON_AddItemToObject(ep, "duration_ms", cJSON_CreateNumber(dur->double_value));
        else if (any_int(dur, &d))
            cJSON_AddItemToObject(ep, "duration_ms", cJSON_CreateNumber((double)d));
        else
            cJSON_AddItemToObject(ep, "duration_ms", cJSON_CreateNull());
        cJSON_DeleteItemFromObjectCaseSensitive(attrs, "endpoint"); /* nodes live in the arena */
        cJSON_AddItemToObject(attrs, "endpoint", ep);
    }
    if (attrs->child)
        cJSON_AddItemToObject(o, "attributes", attrs);
    return mc->err ? NULL : o;
}

static void resinfo_fill(struct mapctx *mc, const Ldg__Otlp__Resource *res, struct resinfo *ri)
{
    memset(ri, 0, sizeof *ri);
    if (!res)
        return;
    const KeyValue **svc = ldg_arena_alloc(mc->a, (res->n_attributes + 1) * sizeof *svc);
    const char *env_old = NULL;
    for (size_t i = 0; i < res->n_attributes; i++) {
        const KeyValue *kv = res->attributes[i];
        const char *s = any_str(kv->value);
        if (s && !utf8_ok(s))
            s = NULL;
        if (strcmp(kv->key, "deployment.environment.name") == 0)
            ri->environment = s;
        else if (strcmp(kv->key, "deployment.environment") == 0)
            env_old = s;
        else if (strcmp(kv->key, "telemetry.sdk.language") == 0)
            ri->platform = s ? cut(mc, s, LDG_LOG_MAX_PLATFORM) : NULL;
        else if (strcmp(kv->key, "telemetry.sdk.version") == 0 && s && strlen(s) <= LDG_LOG_MAX_SDK_VERSION)
            ri->sdk_version = s;
        else if (strcmp(kv->key, "process.runtime.version") == 0 && s)
            ri->platform_version = cut(mc, s, LDG_LOG_MAX_PLATFORM_VERSION);
        if (strncmp(kv->key, "service.", 8) == 0 && utf8_ok(kv->key)) {
            svc[ri->nservice++] = kv;
            if (strcmp(kv->key, "service.version") == 0)
                ri->release = s;
        }
    }
    if (!ri->environment)
        ri->environment = env_old;
    ri->service = (const KeyValue *const *)svc;
}

/* ---- entry points -------------------------------------------------------------------------------- */

int ldg_otlp_logs_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                         size_t max_records, struct ldg_arena *arena, struct ldg_otlp_logs *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    LogsRequest *req = NULL;
    if (enc == LDG_OTLP_PROTOBUF) {
        const uint8_t *p = (const uint8_t *)body;
        if (len && scan_pb(p, p + len, M_LOGSREQ, LDG_OTLP_MAX_DEPTH) < 0)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportLogsServiceRequest protobuf");
        ProtobufCAllocator al = {.alloc = on_pb_alloc, .free = on_pb_free, .allocator_data = arena};
        req = ldg__otlp__export_logs_service_request__unpack(&al, len, p);
        if (!req)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportLogsServiceRequest protobuf");
    } else {
        cJSON *root = len ? ldg_json_parse_in(body, len, arena) : NULL;
        if (!root)
            return ldg_json_fail(err, errlen, "Request body must be valid JSON (UTF-8, no NUL characters)");
        struct jctx jc = {arena, err, errlen};
        if (json_to_request(&jc, root, &req) < 0)
            return -EINVAL;
    }
    size_t n = 0;
    for (size_t i = 0; i < req->n_resource_logs; i++)
        for (size_t j = 0; j < req->resource_logs[i]->n_scope_logs; j++)
            n += req->resource_logs[i]->scope_logs[j]->n_log_records;
    if (n > max_records)
        return ldg_json_fail(err, errlen, "At most %zu log records per request (got %zu)", max_records, n);
    out->n = n;
    out->logs = ldg_arena_alloc(arena, (n ? n : 1) * sizeof *out->logs);
    out->errs = ldg_arena_alloc(arena, (n ? n : 1) * sizeof *out->errs);
    struct mapctx mc = {.a = arena};
    size_t k = 0;
    ldg_json_build_begin(arena);
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const ResourceLogs *rl = req->resource_logs[i];
        struct resinfo ri;
        resinfo_fill(&mc, rl->resource, &ri);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const ScopeLogs *sl = rl->scope_logs[j];
            for (size_t r = 0; r < sl->n_log_records; r++, k++) {
                out->logs[k] = map_record(&mc, &ri, sl->log_records[r], now_us);
                out->errs[k] = out->logs[k] ? NULL : mc.err;
            }
        }
    }
    ldg_json_build_end();
    return 0;
}

int ldg_otlp_content_type(const char *v, size_t n)
{
    size_t e = 0;
    while (e < n && v[e] != ';' && v[e] != ' ' && v[e] != '\t')
        e++;
    if (e == 22 && strncasecmp(v, "application/x-protobuf", 22) == 0)
        return LDG_OTLP_PROTOBUF;
    if (e == 16 && strncasecmp(v, "application/json", 16) == 0)
        return LDG_OTLP_JSON;
    return -1;
}

void ldg_otlp_response(enum ldg_otlp_encoding enc, enum ldg_otlp_signal sig, int64_t rejected,
                       const char *message, struct ldg_buf *out)
{
    static const char *const count_name[] = {"rejectedLogRecords", "rejectedSpans", "rejectedDataPoints"};
    if (!message)
        message = "";
    if (enc == LDG_OTLP_JSON) {
        if (!rejected && !*message) {
            ldg_buf_puts(out, "{}");
            return;
        }
        ldg_buf_printf(out, "{\"partialSuccess\":{\"%s\":\"%lld\",\"errorMessage\":\"", count_name[sig],
                       (long long)rejected);
        ldg_buf_json_escape(out, message, strlen(message));
        ldg_buf_puts(out, "\"}}");
        return;
    }
    if (!rejected && !*message)
        return; /* an empty message */
    /* All three responses have the same shape: field 1 = {1: int64 count, 2: string message}. */
    Ldg__Otlp__ExportLogsPartialSuccess ps = LDG__OTLP__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
    ps.rejected_log_records = rejected;
    ps.error_message = (char *)message;
    Ldg__Otlp__ExportLogsServiceResponse resp = LDG__OTLP__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
    resp.partial_success = &ps;
    size_t sz = ldg__otlp__export_logs_service_response__get_packed_size(&resp);
    uint8_t *dst = (uint8_t *)ldg_buf_reserve(out, sz, 0);
    ldg_buf_commit(out, ldg__otlp__export_logs_service_response__pack(&resp, dst));
}

static int grpc_code(int http_status)
{
    switch (http_status) {
    case 400:
    case 413:
    case 415:
        return 3; /* INVALID_ARGUMENT */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return 5; /* NOT_FOUND */
    case 402:
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return http_status >= 500 ? 13 : 2; /* INTERNAL, UNKNOWN */
    }
}

void ldg_otlp_status(enum ldg_otlp_encoding enc, int http_status, const char *message, struct ldg_buf *out)
{
    if (enc == LDG_OTLP_JSON) {
        ldg_buf_printf(out, "{\"code\":%d,\"message\":\"", grpc_code(http_status));
        ldg_buf_json_escape(out, message, strlen(message));
        ldg_buf_puts(out, "\"}");
        return;
    }
    Ldg__Otlp__Status st = LDG__OTLP__STATUS__INIT;
    st.code = grpc_code(http_status);
    st.message = (char *)message;
    size_t sz = ldg__otlp__status__get_packed_size(&st);
    uint8_t *dst = (uint8_t *)ldg_buf_reserve(out, sz, 0);
    ldg_buf_commit(out, ldg__otlp__status__pack(&st, dst));
}

/* ---- traces -------------------------------------------------------------------------------------- */

typedef Ldg__Otlp__Span Span;
typedef Ldg__Otlp__SpanEvent SpanEvent;
typedef Ldg__Otlp__ExportTraceServiceRequest TraceRequest;

static const char *const kind_names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                         "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

/* An enum given as an integer or by name. */
static int32_t j_enum(struct jctx *jc, const cJSON *obj, const char *name, const char *const *names, size_t n,
                      int *rc)
{
    const cJSON *v = ldg_json_member(obj, name);
    if (cJSON_IsString(v)) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(v->valuestring, names[i]) == 0)
                return (int32_t)i;
        *rc = ldg_json_fail(jc->err, jc->errlen, "Unknown %s '%.40s'", name, v->valuestring);
        return 0;
    }
    return (int32_t)jint(jc, obj, name, rc);
}

static Span *j_span(struct jctx *jc, const cJSON *o, int *rc)
{
    Span *sp = NEW(jc, Span, LDG__OTLP__SPAN__INIT);
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "A span must be an object");
        return sp;
    }
    sp->trace_id = jid(jc, o, "traceId", 16, rc);
    sp->span_id = jid(jc, o, "spanId", 8, rc);
    sp->parent_span_id = jid(jc, o, "parentSpanId", 8, rc);
    sp->name = jstr(jc, o, "name", rc);
    sp->kind = j_enum(jc, o, "kind", kind_names, LDG_ARRAY_SIZE(kind_names), rc);
    sp->start_time_unix_nano = (uint64_t)jint(jc, o, "startTimeUnixNano", rc);
    sp->end_time_unix_nano = (uint64_t)jint(jc, o, "endTimeUnixNano", rc);
    sp->attributes = j_kvs(jc, jarr(jc, o, "attributes", rc), &sp->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
    const cJSON *evs = jarr(jc, o, "events", rc);
    size_t ne = evs ? (size_t)cJSON_GetArraySize(evs) : 0;
    sp->events = ldg_arena_alloc(jc->a, (ne ? ne : 1) * sizeof *sp->events);
    for (const cJSON *it = evs ? evs->child : NULL; it && *rc == 0; it = it->next) {
        if (!cJSON_IsObject(it)) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "A span event must be an object");
            break;
        }
        SpanEvent *ev = NEW(jc, SpanEvent, LDG__OTLP__SPAN_EVENT__INIT);
        ev->time_unix_nano = (uint64_t)jint(jc, it, "timeUnixNano", rc);
        ev->name = jstr(jc, it, "name", rc);
        ev->attributes = j_kvs(jc, jarr(jc, it, "attributes", rc), &ev->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
        sp->events[sp->n_events++] = ev;
    }
    const cJSON *st = jobj(jc, o, "status", rc);
    if (st) {
        sp->status = NEW(jc, Ldg__Otlp__SpanStatus, LDG__OTLP__SPAN_STATUS__INIT);
        sp->status->message = jstr(jc, st, "message", rc);
        sp->status->code = j_enum(jc, st, "code", status_names, LDG_ARRAY_SIZE(status_names), rc);
    }
    return sp;
}

static int json_to_traces(struct jctx *jc, const cJSON *root, TraceRequest **out)
{
    int rc = 0;
    if (!cJSON_IsObject(root))
        return ldg_json_fail(jc->err, jc->errlen, "Request body must be a JSON object");
    TraceRequest *req = NEW(jc, TraceRequest, LDG__OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT);
    const cJSON *rss = jarr(jc, root, "resourceSpans", &rc);
    size_t nrs = rss ? (size_t)cJSON_GetArraySize(rss) : 0;
    req->resource_spans = ldg_arena_alloc(jc->a, (nrs ? nrs : 1) * sizeof *req->resource_spans);
    for (const cJSON *it = rss ? rss->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsObject(it))
            return ldg_json_fail(jc->err, jc->errlen, "resourceSpans items must be objects");
        Ldg__Otlp__ResourceSpans *rs = NEW(jc, Ldg__Otlp__ResourceSpans, LDG__OTLP__RESOURCE_SPANS__INIT);
        req->resource_spans[req->n_resource_spans++] = rs;
        const cJSON *res = jobj(jc, it, "resource", &rc);
        if (res) {
            rs->resource = NEW(jc, Ldg__Otlp__Resource, LDG__OTLP__RESOURCE__INIT);
            rs->resource->attributes = j_kvs(jc, jarr(jc, res, "attributes", &rc), &rs->resource->n_attributes,
                                             LDG_OTLP_MAX_DEPTH, &rc);
        }
        const cJSON *sss = jarr(jc, it, "scopeSpans", &rc);
        size_t nss = sss ? (size_t)cJSON_GetArraySize(sss) : 0;
        rs->scope_spans = ldg_arena_alloc(jc->a, (nss ? nss : 1) * sizeof *rs->scope_spans);
        for (const cJSON *s = sss ? sss->child : NULL; s && rc == 0; s = s->next) {
            if (!cJSON_IsObject(s))
                return ldg_json_fail(jc->err, jc->errlen, "scopeSpans items must be objects");
            Ldg__Otlp__ScopeSpans *ss = NEW(jc, Ldg__Otlp__ScopeSpans, LDG__OTLP__SCOPE_SPANS__INIT);
            rs->scope_spans[rs->n_scope_spans++] = ss;
            const cJSON *spans = jarr(jc, s, "spans", &rc);
            size_t n = spans ? (size_t)cJSON_GetArraySize(spans) : 0;
            ss->spans = ldg_arena_alloc(jc->a, (n ? n : 1) * sizeof *ss->spans);
            for (const cJSON *sp = spans ? spans->child : NULL; sp && rc == 0; sp = sp->next)
                ss->spans[ss->n_spans++] = j_span(jc, sp, &rc);
        }
    }
    *out = req;
    return rc;
}

/* COPY text: `\` tab LF CR escaped; the rest as is. */
static void copy_text(struct ldg_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : NULL;
        if (!esc)
            continue;
        ldg_buf_put(b, run, (size_t)(s - run));
        ldg_buf_puts(b, esc);
        run = s + 1;
    }
    ldg_buf_put(b, run, (size_t)(s - run));
}

static void copy_ts(struct ldg_buf *b, int64_t us)
{
    ldg_logcodec_isoformat(us, 0, true, b);
}

static void copy_json(struct ldg_buf *b, const cJSON *v)
{
    copy_text(b, cJSON_PrintUnformatted(v)); /* build mode: the text is in the arena */
}

static void span_problem(struct ldg_otlp_rows *out, size_t i, const char *why)
{
    out->rejected++;
    if (out->rejected > 3)
        return;
    if (ldg_buf_size(&out->message))
        ldg_buf_puts(&out->message, "; ");
    ldg_buf_printf(&out->message, "%s %zu: %s", out->what, i, why);
}

static bool valid_id(ProtobufCBinaryData d, size_t len)
{
    return d.len == len && !all_zero(d);
}

static bool add_month(struct ldg_otlp_rows *out, int64_t us)
{
    int64_t day = us / 86400000000LL; /* months differ only when days do: compare civil months */
    struct ldg_buf t;
    char m[8];
    ldg_buf_init(&t);
    ldg_logcodec_isoformat(day * 86400000000LL, 0, true, &t);
    memcpy(m, ldg_buf_head(&t), 7);
    ldg_buf_free(&t);
    for (size_t i = 0; i < out->nmonths; i++) {
        char o[8];
        ldg_buf_init(&t);
        ldg_logcodec_isoformat(out->month_us[i], 0, true, &t);
        memcpy(o, ldg_buf_head(&t), 7);
        ldg_buf_free(&t);
        if (memcmp(o, m, 7) == 0)
            return true;
    }
    if (out->nmonths == LDG_OTLP_MAX_MONTHS)
        return false;
    out->month_us[out->nmonths++] = us;
    return true;
}

/* The log record an `exception` event stands for. */
static cJSON *exception_log(struct mapctx *mc, const struct resinfo *ri, const Span *sp, const SpanEvent *ev,
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
            msg = any_str(ev->attributes[i]->value);
    body.value_case = LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    body.string_value = (char *)(msg && *msg ? msg : sp->name);
    r.body = &body;
    cJSON *log = map_record(mc, ri, &r, now_us);
    if (log && !ldg_json_member(log, "error_type")) /* an exception event without exception.* */
        cJSON_AddItemToObject(log, "error_type", cJSON_CreateString("Exception"));
    if (log) {
        cJSON_DeleteItemFromObjectCaseSensitive(log, "log_type");
        cJSON_AddItemToObject(log, "log_type", cJSON_CreateString("exception"));
        cJSON *attrs = (cJSON *)ldg_json_member(log, "attributes");
        if (attrs && utf8_ok(sp->name))
            put_dotted(mc, attrs, "span.name", cJSON_CreateString(sp->name));
    }
    return log;
}

static void map_span(struct mapctx *mc, const struct resinfo *ri, const char *service, const Span *sp, size_t i,
                     int64_t project_id, int64_t now_us, struct ldg_buf *copy, struct ldg_otlp_rows *out)
{
    mc->err = NULL;
    if (!valid_id(sp->trace_id, 16) || !valid_id(sp->span_id, 8)) {
        span_problem(out, i, "trace_id must be 16 bytes and span_id 8 bytes, not all zero");
        return;
    }
    if (!sp->start_time_unix_nano) {
        span_problem(out, i, "start_time_unix_nano is required");
        return;
    }
    if (!utf8_ok(sp->name) || (sp->status && !utf8_ok(sp->status->message))) {
        span_problem(out, i, "name and status message must be valid UTF-8");
        return;
    }
    int64_t start_us = (int64_t)(sp->start_time_unix_nano / 1000);
    int64_t dur_us = sp->end_time_unix_nano > sp->start_time_unix_nano
                         ? (int64_t)((sp->end_time_unix_nano - sp->start_time_unix_nano) / 1000)
                         : 0;
    if (start_us > now_us + 300 * 1000000LL) {
        span_problem(out, i, "Span cannot start more than 5 minutes in the future");
        return;
    }
    cJSON *attrs = cJSON_CreateObject();
    for (size_t k = 0; k < sp->n_attributes; k++)
        if (utf8_ok(sp->attributes[k]->key))
            put_dotted(mc, attrs, sp->attributes[k]->key, any_json(mc, sp->attributes[k]->value, LDG_OTLP_MAX_DEPTH));
    cJSON *events = cJSON_CreateArray();
    for (size_t k = 0; k < sp->n_events; k++) {
        const SpanEvent *ev = sp->events[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "name", cJSON_CreateString(utf8_ok(ev->name) ? ev->name : ""));
        struct ldg_buf t;
        ldg_buf_init(&t);
        ldg_logcodec_isoformat((int64_t)(ev->time_unix_nano / 1000), 0, true, &t);
        ldg_buf_put(&t, "", 1);
        cJSON_AddItemToObject(e, "time", cJSON_CreateString(ldg_buf_head(&t)));
        ldg_buf_free(&t);
        cJSON_AddItemToObject(e, "attributes", kvlist_json(mc, ev->attributes, ev->n_attributes, LDG_OTLP_MAX_DEPTH));
        cJSON_AddItemToArray(events, e);
    }
    if (mc->err) {
        span_problem(out, i, mc->err);
        return;
    }
    if (!add_month(out, start_us)) {
        span_problem(out, i, "spans of one request may start in at most 8 different months");
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
    copy_text(copy, hex(mc, sp->trace_id));
    ldg_buf_puts(copy, "\t");
    copy_text(copy, hex(mc, sp->span_id));
    ldg_buf_puts(copy, "\t");
    if (valid_id(sp->parent_span_id, 8))
        copy_text(copy, hex(mc, sp->parent_span_id));
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    copy_text(copy, sp->name);
    ldg_buf_printf(copy, "\t%d\t", sp->kind >= 0 && sp->kind <= 5 ? sp->kind : 0);
    if (service)
        copy_text(copy, service);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    copy_ts(copy, start_us);
    ldg_buf_printf(copy, "\t%lld\t%d\t", (long long)dur_us,
                   sp->status && sp->status->code >= 0 && sp->status->code <= 2 ? sp->status->code : 0);
    if (sp->status && sp->status->message[0])
        copy_text(copy, sp->status->message);
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
    out->rows++;
}

int ldg_otlp_spans_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                          int64_t project_id, size_t max_spans, struct ldg_arena *arena, struct ldg_buf *copy,
                          struct ldg_otlp_rows *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->what = "Span";
    ldg_buf_init(&out->message);
    TraceRequest *req = NULL;
    if (enc == LDG_OTLP_PROTOBUF) {
        const uint8_t *p = (const uint8_t *)body;
        if (len && scan_pb(p, p + len, M_TRACEREQ, LDG_OTLP_MAX_DEPTH) < 0)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportTraceServiceRequest protobuf");
        ProtobufCAllocator al = {.alloc = on_pb_alloc, .free = on_pb_free, .allocator_data = arena};
        req = ldg__otlp__export_trace_service_request__unpack(&al, len, p);
        if (!req)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportTraceServiceRequest protobuf");
    } else {
        cJSON *root = len ? ldg_json_parse_in(body, len, arena) : NULL;
        if (!root)
            return ldg_json_fail(err, errlen, "Request body must be valid JSON (UTF-8, no NUL characters)");
        struct jctx jc = {arena, err, errlen};
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
    out->exc_logs = ldg_arena_alloc(arena, (nev ? nev : 1) * sizeof *out->exc_logs);
    struct mapctx mc = {.a = arena};
    size_t idx = 0;
    ldg_json_build_begin(arena);
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Ldg__Otlp__ResourceSpans *rs = req->resource_spans[i];
        struct resinfo ri;
        resinfo_fill(&mc, rs->resource, &ri);
        const char *service = NULL;
        for (size_t k = 0; k < ri.nservice; k++)
            if (strcmp(ri.service[k]->key, "service.name") == 0)
                service = any_str(ri.service[k]->value);
        if (service && !utf8_ok(service))
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

/* ---- metrics ------------------------------------------------------------------------------------- */

typedef Ldg__Otlp__Metric Metric;
typedef Ldg__Otlp__NumberDataPoint NumPoint;
typedef Ldg__Otlp__HistogramDataPoint HistPoint;
typedef Ldg__Otlp__ExportMetricsServiceRequest MetricsRequest;

static const char *const temporality_names[] = {"AGGREGATION_TEMPORALITY_UNSPECIFIED", "AGGREGATION_TEMPORALITY_DELTA",
                                                "AGGREGATION_TEMPORALITY_CUMULATIVE"};

static double jdouble(struct jctx *jc, const cJSON *obj, const char *name, int *rc)
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

static NumPoint **j_numpoints(struct jctx *jc, const cJSON *arr, size_t *n, int *rc)
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
        p->start_time_unix_nano = (uint64_t)jint(jc, it, "startTimeUnixNano", rc);
        p->time_unix_nano = (uint64_t)jint(jc, it, "timeUnixNano", rc);
        const cJSON *v;
        if ((v = ldg_json_member(it, "asDouble")) && !cJSON_IsNull(v)) {
            p->value_case = LDG__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
            p->as_double = jdouble(jc, it, "asDouble", rc);
        } else if ((v = ldg_json_member(it, "asInt")) && !cJSON_IsNull(v)) {
            p->value_case = LDG__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
            p->as_int = jint(jc, it, "asInt", rc);
        }
        p->attributes = j_kvs(jc, jarr(jc, it, "attributes", rc), &p->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
        pts[(*n)++] = p;
    }
    return pts;
}

static HistPoint **j_histpoints(struct jctx *jc, const cJSON *arr, size_t *n, int *rc)
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
        p->start_time_unix_nano = (uint64_t)jint(jc, it, "startTimeUnixNano", rc);
        p->time_unix_nano = (uint64_t)jint(jc, it, "timeUnixNano", rc);
        p->count = (uint64_t)jint(jc, it, "count", rc);
        p->sum = jdouble(jc, it, "sum", rc);
        p->min = jdouble(jc, it, "min", rc);
        p->max = jdouble(jc, it, "max", rc);
        const cJSON *bc = jarr(jc, it, "bucketCounts", rc), *eb = jarr(jc, it, "explicitBounds", rc);
        size_t nb = bc ? (size_t)cJSON_GetArraySize(bc) : 0, ne = eb ? (size_t)cJSON_GetArraySize(eb) : 0;
        p->bucket_counts = ldg_arena_alloc(jc->a, (nb ? nb : 1) * sizeof *p->bucket_counts);
        p->explicit_bounds = ldg_arena_alloc(jc->a, (ne ? ne : 1) * sizeof *p->explicit_bounds);
        for (const cJSON *x = bc ? bc->child : NULL; x && *rc == 0; x = x->next)
            p->bucket_counts[p->n_bucket_counts++] = (uint64_t)jint_value(jc, x, "bucketCounts", rc);
        for (const cJSON *x = eb ? eb->child : NULL; x && *rc == 0; x = x->next) {
            if (!cJSON_IsNumber(x)) {
                *rc = ldg_json_fail(jc->err, jc->errlen, "explicitBounds must hold numbers");
                break;
            }
            p->explicit_bounds[p->n_explicit_bounds++] = x->valuedouble;
        }
        p->attributes = j_kvs(jc, jarr(jc, it, "attributes", rc), &p->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
        pts[(*n)++] = p;
    }
    return pts;
}

static Metric *j_metric(struct jctx *jc, const cJSON *o, int *rc)
{
    Metric *m = NEW(jc, Metric, LDG__OTLP__METRIC__INIT);
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "A metric must be an object");
        return m;
    }
    m->name = jstr(jc, o, "name", rc);
    m->unit = jstr(jc, o, "unit", rc);
    const cJSON *d;
    if ((d = jobj(jc, o, "gauge", rc))) {
        m->data_case = LDG__OTLP__METRIC__DATA_GAUGE;
        m->gauge = NEW(jc, Ldg__Otlp__Gauge, LDG__OTLP__GAUGE__INIT);
        m->gauge->data_points = j_numpoints(jc, jarr(jc, d, "dataPoints", rc), &m->gauge->n_data_points, rc);
    } else if ((d = jobj(jc, o, "sum", rc))) {
        m->data_case = LDG__OTLP__METRIC__DATA_SUM;
        m->sum = NEW(jc, Ldg__Otlp__Sum, LDG__OTLP__SUM__INIT);
        m->sum->data_points = j_numpoints(jc, jarr(jc, d, "dataPoints", rc), &m->sum->n_data_points, rc);
        m->sum->aggregation_temporality =
            j_enum(jc, d, "aggregationTemporality", temporality_names, LDG_ARRAY_SIZE(temporality_names), rc);
        const cJSON *mono = ldg_json_member(d, "isMonotonic");
        m->sum->is_monotonic = cJSON_IsTrue(mono);
    } else if ((d = jobj(jc, o, "histogram", rc))) {
        m->data_case = LDG__OTLP__METRIC__DATA_HISTOGRAM;
        m->histogram = NEW(jc, Ldg__Otlp__Histogram, LDG__OTLP__HISTOGRAM__INIT);
        m->histogram->data_points =
            j_histpoints(jc, jarr(jc, d, "dataPoints", rc), &m->histogram->n_data_points, rc);
        m->histogram->aggregation_temporality =
            j_enum(jc, d, "aggregationTemporality", temporality_names, LDG_ARRAY_SIZE(temporality_names), rc);
    } else if ((d = jobj(jc, o, "exponentialHistogram", rc)) || (d = jobj(jc, o, "summary", rc))) {
        bool exp = ldg_json_member(o, "exponentialHistogram") != NULL;
        Ldg__Otlp__UnstoredPoints *u = NEW(jc, Ldg__Otlp__UnstoredPoints, LDG__OTLP__UNSTORED_POINTS__INIT);
        const cJSON *pts = jarr(jc, d, "dataPoints", rc);
        u->n_data_points = pts ? (size_t)cJSON_GetArraySize(pts) : 0;
        m->data_case = exp ? LDG__OTLP__METRIC__DATA_EXPONENTIAL_HISTOGRAM : LDG__OTLP__METRIC__DATA_SUMMARY;
        if (exp)
            m->exponential_histogram = u;
        else
            m->summary = u;
    }
    return m;
}

static int json_to_metrics(struct jctx *jc, const cJSON *root, MetricsRequest **out)
{
    int rc = 0;
    if (!cJSON_IsObject(root))
        return ldg_json_fail(jc->err, jc->errlen, "Request body must be a JSON object");
    MetricsRequest *req = NEW(jc, MetricsRequest, LDG__OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT);
    const cJSON *rms = jarr(jc, root, "resourceMetrics", &rc);
    size_t nrm = rms ? (size_t)cJSON_GetArraySize(rms) : 0;
    req->resource_metrics = ldg_arena_alloc(jc->a, (nrm ? nrm : 1) * sizeof *req->resource_metrics);
    for (const cJSON *it = rms ? rms->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsObject(it))
            return ldg_json_fail(jc->err, jc->errlen, "resourceMetrics items must be objects");
        Ldg__Otlp__ResourceMetrics *rm = NEW(jc, Ldg__Otlp__ResourceMetrics, LDG__OTLP__RESOURCE_METRICS__INIT);
        req->resource_metrics[req->n_resource_metrics++] = rm;
        const cJSON *res = jobj(jc, it, "resource", &rc);
        if (res) {
            rm->resource = NEW(jc, Ldg__Otlp__Resource, LDG__OTLP__RESOURCE__INIT);
            rm->resource->attributes = j_kvs(jc, jarr(jc, res, "attributes", &rc), &rm->resource->n_attributes,
                                             LDG_OTLP_MAX_DEPTH, &rc);
        }
        const cJSON *sms = jarr(jc, it, "scopeMetrics", &rc);
        size_t nsm = sms ? (size_t)cJSON_GetArraySize(sms) : 0;
        rm->scope_metrics = ldg_arena_alloc(jc->a, (nsm ? nsm : 1) * sizeof *rm->scope_metrics);
        for (const cJSON *s = sms ? sms->child : NULL; s && rc == 0; s = s->next) {
            if (!cJSON_IsObject(s))
                return ldg_json_fail(jc->err, jc->errlen, "scopeMetrics items must be objects");
            Ldg__Otlp__ScopeMetrics *sm = NEW(jc, Ldg__Otlp__ScopeMetrics, LDG__OTLP__SCOPE_METRICS__INIT);
            rm->scope_metrics[rm->n_scope_metrics++] = sm;
            const cJSON *ms = jarr(jc, s, "metrics", &rc);
            size_t n = ms ? (size_t)cJSON_GetArraySize(ms) : 0;
            sm->metrics = ldg_arena_alloc(jc->a, (n ? n : 1) * sizeof *sm->metrics);
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
        copy_ts(b, (int64_t)(ns / 1000));
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
static bool metric_head(struct mapctx *mc, struct ldg_buf *copy, const struct mrow *m, int64_t project_id,
                        uint64_t time_ns, uint64_t start_ns, KeyValue **attrs, size_t nattrs, int64_t now_us,
                        size_t idx, struct ldg_otlp_rows *out, const char **attrs_text)
{
    mc->err = NULL;
    if (!time_ns) {
        span_problem(out, idx, "time_unix_nano is required");
        return false;
    }
    int64_t us = (int64_t)(time_ns / 1000);
    if (us > now_us + 300 * 1000000LL) {
        span_problem(out, idx, "Data point cannot be more than 5 minutes in the future");
        return false;
    }
    cJSON *a = kvlist_json(mc, attrs, nattrs, LDG_OTLP_MAX_DEPTH);
    if (mc->err) {
        span_problem(out, idx, mc->err);
        return false;
    }
    if (!add_month(out, us)) {
        span_problem(out, idx, "data points of one request may lie in at most 8 different months");
        return false;
    }
    *attrs_text = a->child ? cJSON_PrintUnformatted(a) : NULL;
    ldg_buf_put_i64(copy, project_id);
    ldg_buf_puts(copy, "\t");
    copy_text(copy, m->name);
    ldg_buf_printf(copy, "\t%s\t", m->type);
    if (m->unit && *m->unit)
        copy_text(copy, m->unit);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_printf(copy, "\t%d\t%s\t", m->temporality, m->monotonic ? "t" : "f");
    if (m->service)
        copy_text(copy, m->service);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\t");
    copy_ts(copy, us);
    ldg_buf_puts(copy, "\t");
    copy_opt_ts(copy, start_ns);
    return true;
}

static void metric_tail(struct ldg_buf *copy, const char *attrs_text, struct ldg_otlp_rows *out)
{
    ldg_buf_puts(copy, "\t");
    if (attrs_text)
        copy_text(copy, attrs_text);
    else
        ldg_buf_puts(copy, "\\N");
    ldg_buf_puts(copy, "\n");
    out->rows++;
}

static void map_metric(struct mapctx *mc, const char *service, const Metric *m, size_t *idx, int64_t project_id,
                       int64_t now_us, struct ldg_buf *copy, struct ldg_otlp_rows *out)
{
    struct mrow r = {.name = m->name, .unit = m->unit, .service = service};
    bool named = m->name && *m->name && utf8_ok(m->name) && utf8_ok(m->unit);
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
                span_problem(out, *idx, "metric name must be non-empty UTF-8");
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
                span_problem(out, *idx, "metric name must be non-empty UTF-8");
                continue;
            }
            if (p->n_bucket_counts && p->n_bucket_counts != p->n_explicit_bounds + 1) {
                span_problem(out, *idx, "a histogram needs one bucket count more than explicit bounds");
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
            span_problem(out, *idx,
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
                            int64_t project_id, size_t max_points, struct ldg_arena *arena, struct ldg_buf *copy,
                            struct ldg_otlp_rows *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->what = "Data point";
    ldg_buf_init(&out->message);
    MetricsRequest *req = NULL;
    if (enc == LDG_OTLP_PROTOBUF) {
        const uint8_t *p = (const uint8_t *)body;
        if (len && scan_pb(p, p + len, M_METRICSREQ, LDG_OTLP_MAX_DEPTH) < 0)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportMetricsServiceRequest protobuf");
        ProtobufCAllocator al = {.alloc = on_pb_alloc, .free = on_pb_free, .allocator_data = arena};
        req = ldg__otlp__export_metrics_service_request__unpack(&al, len, p);
        if (!req)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportMetricsServiceRequest protobuf");
    } else {
        cJSON *root = len ? ldg_json_parse_in(body, len, arena) : NULL;
        if (!root)
            return ldg_json_fail(err, errlen, "Request body must be valid JSON (UTF-8, no NUL characters)");
        struct jctx jc = {arena, err, errlen};
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
    struct mapctx mc = {.a = arena};
    size_t idx = 0;
    ldg_json_build_begin(arena);
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Ldg__Otlp__ResourceMetrics *rm = req->resource_metrics[i];
        struct resinfo ri;
        resinfo_fill(&mc, rm->resource, &ri);
        const char *service = NULL;
        for (size_t k = 0; k < ri.nservice; k++)
            if (strcmp(ri.service[k]->key, "service.name") == 0)
                service = any_str(ri.service[k]->value);
        if (service && !utf8_ok(service))
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
