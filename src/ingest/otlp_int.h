/*
 * otlp_int.h: what the OTLP decoders share (otlplog.c: scan, OTLP/JSON helpers, the log record
 * mapping, COPY helpers; otlptrace.c and otlpmetric.c use them). Internal to src/ingest/otlp*.c.
 * Same rules as otlplog.h: pure, any thread, everything allocated in the arena passed in.
 */
#ifndef LDG_INGEST_OTLP_INT_H
#define LDG_INGEST_OTLP_INT_H

#include <protobuf-c/protobuf-c.h>

#include "ingest/otlp.pb-c.h"
#include "ingest/otlplog.h"

typedef Ldg__Otlp__AnyValue AnyValue;
typedef Ldg__Otlp__KeyValue KeyValue;
typedef Ldg__Otlp__LogRecord LogRecord;
typedef Ldg__Otlp__ResourceLogs ResourceLogs;
typedef Ldg__Otlp__ScopeLogs ScopeLogs;
typedef Ldg__Otlp__ExportLogsServiceRequest LogsRequest;

/* The messages whose nesting matters (ldg__otlp_scan_pb), and for each the fields that hold
 * messages. */
enum ldg__otlp_msg {
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

/* Is data[p..end) well-formed wire format of message m, with AnyValues nested at most depth more
 * levels? 0 or -1. */
int ldg__otlp_scan_pb(const uint8_t *p, const uint8_t *end, enum ldg__otlp_msg m, int depth);

/* protobuf-c allocator callbacks over an arena (allocator_data = the struct ldg_arena *). */
void *ldg__otlp_pb_alloc(void *data, size_t n);
void ldg__otlp_pb_free(void *data, void *p);

/* ---- OTLP/JSON → protobuf-c structs. Each helper reads member `name` of obj; on a wrong type it
 * writes a message to jc->err, sets *rc to -EINVAL and returns a neutral value (NULL, "", 0), so a
 * converter can read on and check *rc once. */
struct ldg__otlp_json {
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

const cJSON *ldg__otlp_jarr(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc);
const cJSON *ldg__otlp_jobj(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc);
/* Array member `name` of obj (as ldg__otlp_jarr) in *arr, and returns room for one pointer per item
 * (at least one) in jc's arena, for a repeated message field. */
void *ldg__otlp_jarr_room(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, const cJSON **arr,
                          int *rc);
/* Member "resource" of obj with its attributes, in jc's arena; NULL when absent or not an object. */
Ldg__Otlp__Resource *ldg__otlp_j_resource(struct ldg__otlp_json *jc, const cJSON *obj, int *rc);
char *ldg__otlp_jstr(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc);
/* 64-bit integers: a number or a decimal string. */
int64_t ldg__otlp_jint_value(struct ldg__otlp_json *jc, const cJSON *v, const char *name, int *rc);
int64_t ldg__otlp_jint(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, int *rc);
/* A trace/span id: 2 * bytes hex digits; "" or absent = empty. */
ProtobufCBinaryData ldg__otlp_jid(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, size_t bytes,
                                  int *rc);
/* An attribute list (arr may be NULL); values nest at most depth levels. */
KeyValue **ldg__otlp_j_kvs(struct ldg__otlp_json *jc, const cJSON *arr, size_t *n, int depth, int *rc);
/* An enum given as an integer or by one of its n names. */
int32_t ldg__otlp_j_enum(struct ldg__otlp_json *jc, const cJSON *obj, const char *name, const char *const *names,
                         size_t n, int *rc);

/* ---- mapping ---- */

/* What a resource contributes to every item of it. */
struct ldg__otlp_res {
    const char *environment, *release, *platform, *sdk_version, *platform_version;
    const KeyValue *const *service; /* resource attributes service.* */
    size_t nservice;
};

/* The mapping's arena and the first problem of the current item (static text). */
struct ldg__otlp_map {
    struct ldg_arena *a;
    const char *err; /* first mapping problem of the current record */
};

const char *ldg__otlp_any_str(const AnyValue *v);
bool ldg__otlp_utf8_ok(const char *s);
/* A value / an attribute list as JSON (cJSON build mode: nodes in mc->a). */
cJSON *ldg__otlp_any_json(struct ldg__otlp_map *mc, const AnyValue *v, int depth);
cJSON *ldg__otlp_kvlist_json(struct ldg__otlp_map *mc, KeyValue *const *kvs, size_t n, int depth);
/* Put value under a dotted key as nested objects (see otlplog.c). */
void ldg__otlp_put_dotted(struct ldg__otlp_map *mc, cJSON *root, const char *key, cJSON *value);
char *ldg__otlp_hex(struct ldg__otlp_map *mc, ProtobufCBinaryData d);
bool ldg__otlp_all_zero(ProtobufCBinaryData d);
void ldg__otlp_resinfo_fill(struct ldg__otlp_map *mc, const Ldg__Otlp__Resource *res, struct ldg__otlp_res *ri);
/* One log record → a v1 log object, or NULL with mc->err set. */
cJSON *ldg__otlp_map_record(struct ldg__otlp_map *mc, const struct ldg__otlp_res *ri, const LogRecord *r,
                            int64_t now_us);

/* ---- COPY lines (traces, metrics) ---- */

/* COPY text: `\` tab LF CR escaped. */
void ldg__otlp_copy_text(struct ldg_buf *b, const char *s);
void ldg__otlp_copy_ts(struct ldg_buf *b, int64_t us);
/* Count a refused item; its reason is quoted for the first three. */
void ldg__otlp_row_problem(struct ldg_otlp_rows *out, size_t i, const char *why);
/* Note the month of us; false when the request already has LDG_OTLP_MAX_MONTHS others. */
bool ldg__otlp_add_month(struct ldg_otlp_rows *out, int64_t us);

#endif
