/*
 * otlplog.c: OTLP logs requests → v1 log objects; OTLP responses and google.rpc.Status bodies; what
 * the traces and metrics decoders share (otlp_int.h).
 *
 * Both encodings end in the same protobuf-c structs: protobuf bodies are unpacked by the code
 * protoc-c generates from otlp.proto (allocating from the arena), OTLP/JSON bodies are parsed with
 * cJSON and converted into those structs here. One mapping then serves both.
 *
 * protobuf-c has no nesting limit of its own, and AnyValue nests (arrays, key-value lists): a
 * 10 MB body of nested AnyValues would exhaust the stack while unpacking. ldg__otlp_scan_pb walks the wire
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
#include "ingest/otlp_int.h"


/* ---- protobuf structure scan -------------------------------------------------------------------- */

/* The messages whose nesting matters, and for each the fields that hold messages. */

static enum ldg__otlp_msg child_of(enum ldg__otlp_msg m, uint32_t field)
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
int ldg__otlp_scan_pb(const uint8_t *p, const uint8_t *end, enum ldg__otlp_msg m, int depth)
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
            enum ldg__otlp_msg c = child_of(m, (uint32_t)(key >> 3));
            if (c != M_NONE && ldg__otlp_scan_pb(p, p + v, c, c == M_ANY ? depth - 1 : depth) < 0)
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

void *ldg__otlp_pb_alloc(void *data, size_t n)
{
    return ldg_arena_alloc(data, n ? n : 1);
}

void ldg__otlp_pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the arena releases everything at once */
}

/* ---- OTLP/JSON → protobuf-c structs -------------------------------------------------------------- */


const cJSON *ldg__otlp_jarr(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc)
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

const cJSON *ldg__otlp_jobj(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc)
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

void *ldg__otlp_jarr_room(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, const cJSON **arr,
                          int *rc)
{
    *arr = ldg__otlp_jarr(jc, obj, name, rc);
    size_t n = *arr ? (size_t)cJSON_GetArraySize(*arr) : 0;
    return ldg_arena_alloc(jc->a, (n ? n : 1) * sizeof(void *));
}

Ldg__Otlp__Resource *ldg__otlp_j_resource(struct ldg__otlp_json *jc, const cJSON *obj, int *rc)
{
    const cJSON *res = ldg__otlp_jobj(jc, obj, "resource", rc);
    if (!res)
        return NULL;
    Ldg__Otlp__Resource *r = NEW(jc, Ldg__Otlp__Resource, LDG__OTLP__RESOURCE__INIT);
    r->attributes =
        ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, res, "attributes", rc), &r->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
    return r;
}

char *ldg__otlp_jstr(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc)
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
int64_t ldg__otlp_jint_value(struct ldg__otlp_json *jc, const cJSON *v, const char *name, int *rc)
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

int64_t ldg__otlp_jint(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc)
{
    return ldg__otlp_jint_value(jc, ldg_json_member(obj, name), name, rc);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* trace/span ids: hex in OTLP/JSON; "" = absent. */
ProtobufCBinaryData ldg__otlp_jid(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, size_t bytes, int *rc)
{
    ProtobufCBinaryData d = {0, NULL};
    const char *s = ldg__otlp_jstr(jc, obj, name, rc);
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

/* How many bytes of s (valid UTF-8) to quote in a message: at most QUOTE_MAX, never half a
 * character (a google.rpc.Status message is a protobuf string: it must stay valid UTF-8). */
#define QUOTE_MAX 40
static int quote_len(const char *s)
{
    size_t n = strnlen(s, QUOTE_MAX + 1);
    if (n <= QUOTE_MAX)
        return (int)n;
    n = QUOTE_MAX; /* s[n] is the first byte left out: back off while it continues a character */
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

static AnyValue *j_any(struct ldg__otlp_json *jc, const cJSON *o, int depth, int *rc)
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
        v->string_value = ldg__otlp_jstr(jc, o, "stringValue", rc);
    } else if ((x = ldg_json_member(o, "boolValue")) && !cJSON_IsNull(x)) {
        if (!cJSON_IsBool(x))
            *rc = ldg_json_fail(jc->err, jc->errlen, "Field 'boolValue' must be a boolean");
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = cJSON_IsTrue(x);
    } else if ((x = ldg_json_member(o, "intValue")) && !cJSON_IsNull(x)) {
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = ldg__otlp_jint(jc, o, "intValue", rc);
    } else if ((x = ldg_json_member(o, "doubleValue")) && !cJSON_IsNull(x)) {
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
        if (cJSON_IsNumber(x))
            v->double_value = x->valuedouble;
        else if (cJSON_IsString(x)) /* "NaN", "Infinity", "-Infinity" or a decimal */
            v->double_value = strtod(x->valuestring, NULL);
        else
            *rc = ldg_json_fail(jc->err, jc->errlen, "Field 'doubleValue' must be a number");
    } else if ((x = ldg__otlp_jobj(jc, o, "arrayValue", rc))) {
        const cJSON *vals = ldg__otlp_jarr(jc, x, "values", rc);
        Ldg__Otlp__ArrayValue *av = NEW(jc, Ldg__Otlp__ArrayValue, LDG__OTLP__ARRAY_VALUE__INIT);
        size_t n = vals ? (size_t)cJSON_GetArraySize(vals) : 0, i = 0;
        av->values = ldg_arena_alloc(jc->a, (n ? n : 1) * sizeof *av->values);
        for (const cJSON *it = vals ? vals->child : NULL; it && *rc == 0; it = it->next)
            av->values[i++] = j_any(jc, it, depth - 1, rc);
        av->n_values = i;
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = av;
    } else if ((x = ldg__otlp_jobj(jc, o, "kvlistValue", rc))) {
        Ldg__Otlp__KeyValueList *kl = NEW(jc, Ldg__Otlp__KeyValueList, LDG__OTLP__KEY_VALUE_LIST__INIT);
        kl->values = ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, x, "values", rc), &kl->n_values, depth - 1, rc);
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE;
        v->kvlist_value = kl;
    } else if ((x = ldg_json_member(o, "bytesValue")) && !cJSON_IsNull(x)) {
        /* base64 in OTLP/JSON: kept as that text (protobuf bytes are stored base64-encoded too) */
        const char *s = ldg__otlp_jstr(jc, o, "bytesValue", rc);
        v->value_case = LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = (char *)s;
    }
    return v;
}

KeyValue **ldg__otlp_j_kvs(struct ldg__otlp_json *jc, const cJSON *arr, size_t *n, int depth, int *rc)
{
    size_t cap = arr ? (size_t)cJSON_GetArraySize(arr) : 0, i = 0;
    KeyValue **kvs = ldg_arena_alloc(jc->a, (cap ? cap : 1) * sizeof *kvs);
    for (const cJSON *it = arr ? arr->child : NULL; it && *rc == 0; it = it->next) {
        if (!cJSON_IsObject(it)) {
            *rc = ldg_json_fail(jc->err, jc->errlen, "An attribute must be an object");
            break;
        }
        KeyValue *kv = NEW(jc, KeyValue, LDG__OTLP__KEY_VALUE__INIT);
        kv->key = ldg__otlp_jstr(jc, it, "key", rc);
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

static int32_t j_severity(struct ldg__otlp_json *jc, const cJSON *rec, int *rc)
{
    const cJSON *v = ldg_json_member(rec, "severityNumber");
    if (cJSON_IsString(v)) {
        for (size_t i = 0; i < LDG_ARRAY_SIZE(severity_names); i++)
            if (strcmp(v->valuestring, severity_names[i]) == 0)
                return (int32_t)i;
        *rc = ldg_json_fail(jc->err, jc->errlen, "Unknown severityNumber '%.*s'", quote_len(v->valuestring),
                            v->valuestring);
        return 0;
    }
    return (int32_t)ldg__otlp_jint(jc, rec, "severityNumber", rc);
}

static LogRecord *j_record(struct ldg__otlp_json *jc, const cJSON *o, int *rc)
{
    LogRecord *r = NEW(jc, LogRecord, LDG__OTLP__LOG_RECORD__INIT);
    if (!cJSON_IsObject(o)) {
        *rc = ldg_json_fail(jc->err, jc->errlen, "A log record must be an object");
        return r;
    }
    r->time_unix_nano = (uint64_t)ldg__otlp_jint(jc, o, "timeUnixNano", rc);
    r->observed_time_unix_nano = (uint64_t)ldg__otlp_jint(jc, o, "observedTimeUnixNano", rc);
    r->severity_number = j_severity(jc, o, rc);
    r->severity_text = ldg__otlp_jstr(jc, o, "severityText", rc);
    const cJSON *body = ldg_json_member(o, "body");
    r->body = body && !cJSON_IsNull(body) ? j_any(jc, body, LDG_OTLP_MAX_DEPTH, rc) : NULL;
    r->attributes = ldg__otlp_j_kvs(jc, ldg__otlp_jarr(jc, o, "attributes", rc), &r->n_attributes, LDG_OTLP_MAX_DEPTH, rc);
    r->trace_id = ldg__otlp_jid(jc, o, "traceId", 16, rc);
    r->span_id = ldg__otlp_jid(jc, o, "spanId", 8, rc);
    r->event_name = ldg__otlp_jstr(jc, o, "eventName", rc);
    return r;
}

static int json_to_request(struct ldg__otlp_json *jc, const cJSON *root, LogsRequest **out)
{
    int rc = 0;
    if (!cJSON_IsObject(root))
        return ldg_json_fail(jc->err, jc->errlen, "Request body must be a JSON object");
    LogsRequest *req = NEW(jc, LogsRequest, LDG__OTLP__EXPORT_LOGS_SERVICE_REQUEST__INIT);
    const cJSON *rls;
    req->resource_logs = ldg__otlp_jarr_room(jc, root, "resourceLogs", &rls, &rc);
    for (const cJSON *it = rls ? rls->child : NULL; it && rc == 0; it = it->next) {
        if (!cJSON_IsObject(it))
            return ldg_json_fail(jc->err, jc->errlen, "resourceLogs items must be objects");
        ResourceLogs *rl = NEW(jc, ResourceLogs, LDG__OTLP__RESOURCE_LOGS__INIT);
        req->resource_logs[req->n_resource_logs++] = rl;
        rl->resource = ldg__otlp_j_resource(jc, it, &rc);
        const cJSON *sls;
        rl->scope_logs = ldg__otlp_jarr_room(jc, it, "scopeLogs", &sls, &rc);
        for (const cJSON *s = sls ? sls->child : NULL; s && rc == 0; s = s->next) {
            if (!cJSON_IsObject(s))
                return ldg_json_fail(jc->err, jc->errlen, "scopeLogs items must be objects");
            ScopeLogs *sl = NEW(jc, ScopeLogs, LDG__OTLP__SCOPE_LOGS__INIT);
            rl->scope_logs[rl->n_scope_logs++] = sl;
            const cJSON *recs;
            sl->log_records = ldg__otlp_jarr_room(jc, s, "logRecords", &recs, &rc);
            for (const cJSON *r = recs ? recs->child : NULL; r && rc == 0; r = r->next)
                sl->log_records[sl->n_log_records++] = j_record(jc, r, &rc);
        }
    }
    *out = req;
    return rc;
}

/* ---- mapping ------------------------------------------------------------------------------------- */



const char *ldg__otlp_any_str(const AnyValue *v)
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
    const char *s = ldg__otlp_any_str(v);
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

bool ldg__otlp_utf8_ok(const char *s)
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

cJSON *ldg__otlp_kvlist_json(struct ldg__otlp_map *mc, KeyValue *const *kvs, size_t n, int depth)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        if (!ldg__otlp_utf8_ok(kvs[i]->key)) {
            mc->err = "Attribute key is not valid UTF-8";
            continue;
        }
        cJSON_AddItemToObject(o, kvs[i]->key, ldg__otlp_any_json(mc, kvs[i]->value, depth - 1));
    }
    return o;
}

cJSON *ldg__otlp_any_json(struct ldg__otlp_map *mc, const AnyValue *v, int depth)
{
    if (!v || depth <= 0)
        return cJSON_CreateNull();
    switch (v->value_case) {
    case LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE:
        if (!ldg__otlp_utf8_ok(v->string_value)) {
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
            cJSON_AddItemToArray(arr, ldg__otlp_any_json(mc, v->array_value->values[i], depth - 1));
        return arr;
    }
    case LDG__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
        return v->kvlist_value ? ldg__otlp_kvlist_json(mc, v->kvlist_value->values, v->kvlist_value->n_values, depth)
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
void ldg__otlp_put_dotted(struct ldg__otlp_map *mc, cJSON *root, const char *key, cJSON *value)
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
static const char *cut(struct ldg__otlp_map *mc, const char *s, size_t max)
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

char *ldg__otlp_hex(struct ldg__otlp_map *mc, ProtobufCBinaryData d)
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

bool ldg__otlp_all_zero(ProtobufCBinaryData d)
{
    for (size_t i = 0; i < d.len; i++)
        if (d.data[i])
            return false;
    return true;
}

cJSON *ldg__otlp_map_record(struct ldg__otlp_map *mc, const struct ldg__otlp_res *ri, const LogRecord *r, int64_t now_us)
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
    const char *log_type = ldg__otlp_any_str(lt);
    if (!log_type || !*log_type) {
        log_type = exc                                          ? "exception"
                   : (ldg__otlp_any_str(method) && has_status)            ? "endpoint"
                   : db                                         ? "database"
                   : code                                       ? "logger"
                                                                : "custom";
    }
    cJSON_AddItemToObject(o, "log_type", cJSON_CreateString(log_type));
    const char *importance = ldg__otlp_any_str(imp);
    cJSON_AddItemToObject(o, "importance", cJSON_CreateString(importance && *importance ? importance : importance_of(level)));

    if (r->body && r->body->value_case != LDG__OTLP__ANY_VALUE__VALUE__NOT_SET) {
        const char *msg = ldg__otlp_any_str(r->body);
        if (msg && !ldg__otlp_utf8_ok(msg)) {
            mc->err = "Log body is not valid UTF-8";
        } else if (!msg) { /* a structured body: its JSON text */
            cJSON *b = ldg__otlp_any_json(mc, r->body, LDG_OTLP_MAX_DEPTH);
            msg = cJSON_PrintUnformatted(b); /* in the arena too (build mode) */
        }
        if (msg)
            cJSON_AddItemToObject(o, "message", cJSON_CreateString(cut(mc, msg, LDG_LOG_MAX_MESSAGE)));
    }
    if (strcmp(log_type, "exception") == 0 || exc) {
        const char *t = ldg__otlp_any_str(etype), *m = ldg__otlp_any_str(emsg), *st = ldg__otlp_any_str(estack);
        if ((t && !ldg__otlp_utf8_ok(t)) || (m && !ldg__otlp_utf8_ok(m)) || (st && !ldg__otlp_utf8_ok(st)))
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
        ldg__otlp_put_dotted(mc, attrs, ri->service[i]->key, ldg__otlp_any_json(mc, ri->service[i]->value, LDG_OTLP_MAX_DEPTH));
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key;
        if (strncmp(k, "ledger.", 7) == 0 || strncmp(k, "exception.", 10) == 0)
            continue; /* carried by columns */
        if (!ldg__otlp_utf8_ok(k)) {
            mc->err = "Attribute key is not valid UTF-8";
            continue;
        }
        ldg__otlp_put_dotted(mc, attrs, k, ldg__otlp_any_json(mc, r->attributes[i]->value, LDG_OTLP_MAX_DEPTH));
    }
    if (r->trace_id.len && !ldg__otlp_all_zero(r->trace_id))
        ldg__otlp_put_dotted(mc, attrs, "trace_id", cJSON_CreateString(ldg__otlp_hex(mc, r->trace_id)));
    if (r->span_id.len && !ldg__otlp_all_zero(r->span_id))
        ldg__otlp_put_dotted(mc, attrs, "span_id", cJSON_CreateString(ldg__otlp_hex(mc, r->span_id)));
    if (r->event_name && *r->event_name && ldg__otlp_utf8_ok(r->event_name))
        ldg__otlp_put_dotted(mc, attrs, "event.name", cJSON_CreateString(r->event_name));
    /* an endpoint log: the endpoint object from the HTTP attributes (unless the record has none
     * and carries its own `endpoint` attribute, as a v1 log converted to OTLP does) */
    if (strcmp(log_type, "endpoint") == 0 &&
        (method || route || upath || status || !cJSON_GetObjectItemCaseSensitive(attrs, "endpoint"))) {
        cJSON *ep = cJSON_CreateObject();
        const char *m = ldg__otlp_any_str(method), *p = ldg__otlp_any_str(route);
        if (!p || !*p)
            p = ldg__otlp_any_str(upath);
        cJSON_AddItemToObject(ep, "method", m && ldg__otlp_utf8_ok(m) ? cJSON_CreateString(m) : cJSON_CreateNull());
        cJSON_AddItemToObject(ep, "path", p && ldg__otlp_utf8_ok(p) ? cJSON_CreateString(p) : cJSON_CreateNull());
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

void ldg__otlp_resinfo_fill(struct ldg__otlp_map *mc, const Ldg__Otlp__Resource *res, struct ldg__otlp_res *ri)
{
    memset(ri, 0, sizeof *ri);
    if (!res)
        return;
    const KeyValue **svc = ldg_arena_alloc(mc->a, (res->n_attributes + 1) * sizeof *svc);
    const char *env_old = NULL;
    for (size_t i = 0; i < res->n_attributes; i++) {
        const KeyValue *kv = res->attributes[i];
        const char *s = ldg__otlp_any_str(kv->value);
        if (s && !ldg__otlp_utf8_ok(s))
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
        if (strncmp(kv->key, "service.", 8) == 0 && ldg__otlp_utf8_ok(kv->key)) {
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
        if (len && ldg__otlp_scan_pb(p, p + len, M_LOGSREQ, LDG_OTLP_MAX_DEPTH) < 0)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportLogsServiceRequest protobuf");
        ProtobufCAllocator al = {.alloc = ldg__otlp_pb_alloc, .free = ldg__otlp_pb_free, .allocator_data = arena};
        req = ldg__otlp__export_logs_service_request__unpack(&al, len, p);
        if (!req)
            return ldg_json_fail(err, errlen, "Request body is not a valid ExportLogsServiceRequest protobuf");
    } else {
        cJSON *root = len ? ldg_json_parse_in(body, len, arena, NULL) : NULL;
        if (!root)
            return ldg_json_fail(err, errlen, "Request body must be valid JSON (UTF-8, no NUL characters)");
        struct ldg__otlp_json jc = {arena, err, errlen};
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
    struct ldg__otlp_map mc = {.a = arena};
    size_t k = 0;
    ldg_json_build_begin(arena);
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const ResourceLogs *rl = req->resource_logs[i];
        struct ldg__otlp_res ri;
        ldg__otlp_resinfo_fill(&mc, rl->resource, &ri);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const ScopeLogs *sl = rl->scope_logs[j];
            for (size_t r = 0; r < sl->n_log_records; r++, k++) {
                out->logs[k] = ldg__otlp_map_record(&mc, &ri, sl->log_records[r], now_us);
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

/* ---- shared by the traces and metrics decoders ---------------------------------------------------- */

/* An enum given as an integer or by name. */
int32_t ldg__otlp_j_enum(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, const char *const *names, size_t n,
                      int *rc)
{
    const cJSON *v = ldg_json_member(obj, name);
    if (cJSON_IsString(v)) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(v->valuestring, names[i]) == 0)
                return (int32_t)i;
        *rc = ldg_json_fail(jc->err, jc->errlen, "Unknown %s '%.*s'", name, quote_len(v->valuestring),
                            v->valuestring);
        return 0;
    }
    return (int32_t)ldg__otlp_jint(jc, obj, name, rc);
}

/* COPY text: `\` tab LF CR escaped; the rest as is. */
void ldg__otlp_copy_text(struct ldg_buf *b, const char *s)
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

void ldg__otlp_copy_ts(struct ldg_buf *b, int64_t us)
{
    ldg_logcodec_isoformat(us, 0, true, b);
}

void ldg__otlp_row_problem(struct ldg_otlp_rows *out, size_t i, const char *why)
{
    out->rejected++;
    if (out->rejected > 3)
        return;
    if (ldg_buf_size(&out->message))
        ldg_buf_puts(&out->message, "; ");
    ldg_buf_printf(&out->message, "%s %zu: %s", out->what, i, why);
}

bool ldg__otlp_add_month(struct ldg_otlp_rows *out, int64_t us)
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
