/*
 * otlplog.h: an OTLP ExportLogsServiceRequest (protobuf or OTLP/JSON) → Ledger log objects, and
 * the OTLP response and error bodies (docs/otlp.md has the mapping table).
 *
 * Each log record becomes one log object of the v1 ingest shape (a cJSON tree: timestamp, level,
 * log_type, importance, message, error_*, environment, release, platform, sdk_version,
 * platform_version, attributes), which the ingest role then validates and queues exactly like a
 * log of POST /api/v1/ingest/batch (ingest/logentry.h). So durability, idempotency, validation
 * messages and storage are the same for both routes.
 *
 * Pure: no I/O, no loop, no global state but cJSON's allocation hooks (core/json.h); any thread.
 * Everything decoded or built lives in the arena passed in.
 */
#ifndef LDG_INGEST_OTLPLOG_H
#define LDG_INGEST_OTLPLOG_H

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/buf.h"
#include "ingest/otelrow.h"

enum ldg_otlp_encoding {
    LDG_OTLP_PROTOBUF, /* application/x-protobuf */
    LDG_OTLP_JSON,     /* application/json (OTLP/JSON: camelCase names, hex ids) */
};

/* Which Export*ServiceResponse a response body is for. */
enum ldg_otlp_signal { LDG_OTLP_LOGS, LDG_OTLP_TRACES, LDG_OTLP_METRICS };

/* Deepest AnyValue nesting (arrays, key-value lists) accepted in a body or attribute; deeper
 * bodies are undecodable (400). Keeps every recursion here and in the protobuf decoder bounded. */
#define LDG_OTLP_MAX_DEPTH 24

struct ldg_otlp_logs {
    size_t n;           /* log records in the request */
    cJSON **logs;       /* [n]: the mapped log object, or NULL when the record could not be mapped */
    const char **errs;  /* [n]: why logs[i] is NULL (client-facing), else NULL */
};

/*
 * Decode body[0..len) in encoding enc and map every log record. now_us (Unix µs) is the time of
 * records without a time. Records beyond max_records are not mapped: -E2BIG.
 * Returns 0 with *out filled, -EINVAL when the body is not a decodable request (message in err),
 * -E2BIG (too many records; message in err). Everything in *out lives in arena (nodes made
 * through cJSON's hooks while this runs: never cJSON_Delete them).
 */
int ldg_otlp_logs_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                         size_t max_records, struct ldg_arena *arena, struct ldg_otlp_logs *out, char *err,
                         size_t errlen) LDG_MUSTCHECK;

/* Column list of the span COPY lines of ldg_otlp_spans_decode. */
#define LDG_OTLP_SPAN_COPY_SQL "COPY spans (" LDG_OTELROW_SPAN_COLS ") FROM STDIN"

/* Column list of the metric point COPY lines of ldg_otlp_metrics_decode. */
#define LDG_OTLP_METRIC_COPY_SQL "COPY metric_points (" LDG_OTELROW_METRIC_COLS ") FROM STDIN"

#define LDG_OTLP_MAX_MONTHS 8 /* distinct months of the rows of one request */

/* What a traces or metrics request decoded into: COPY lines (in the caller's buffer) and counts. */
struct ldg_otlp_rows {
    size_t n;               /* spans (data points) in the request */
    size_t rows;            /* COPY lines written */
    size_t rejected;        /* refused (n - rows) */
    struct ldg_buf message; /* the first problems, "Span <i>: <reason>; ..." (caller frees) */
    const char *what;       /* "Span" or "Data point" (static) */
    cJSON **exc_logs;       /* log objects of the spans' `exception` events */
    size_t nexc;
    int64_t month_us[LDG_OTLP_MAX_MONTHS]; /* one start time per distinct month of the rows */
    size_t nmonths;
    int64_t *row_us; /* arena: per COPY line, its span's start time / point's time (Unix µs) */
    int64_t last_us;   /* internal: the time of the row being mapped */
    int64_t oldest_us; /* internal: the decoder's oldest_us */
};

/*
 * Decode an ExportTraceServiceRequest and append one COPY text line per valid span to copy
 * (columns LDG_OTLP_SPAN_COPY_SQL; project_id given). A span needs a 16-byte trace id and an 8-byte
 * span id (not all zero), a start time, valid UTF-8; spans starting in more than
 * LDG_OTLP_MAX_MONTHS distinct months are refused past the limit. Every event named `exception`
 * also becomes a log object (mapped as a log record carrying the event's attributes, the span's
 * ids and severity ERROR). A span starting before oldest_us (the project's retention; 0 = no bound)
 * is refused. Returns 0, -EINVAL (undecodable; err), -E2BIG (more than max_spans).
 * out->message is initialised here in every case (ldg_buf_free it).
 */
int ldg_otlp_spans_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                          int64_t oldest_us, int64_t project_id, size_t max_spans, struct ldg_arena *arena, struct ldg_buf *copy,
                          struct ldg_otlp_rows *out, char *err, size_t errlen) LDG_MUSTCHECK;

/*
 * Decode an ExportMetricsServiceRequest and append one COPY line per stored data point to copy
 * (columns LDG_OTLP_METRIC_COPY_SQL): gauge and sum points (value), histogram points (count, sum,
 * min, max, bounds, bucket counts). Exponential histograms and summaries are refused (counted in
 * rejected with a message), as are points without a name or time. Point attributes are kept flat
 * (dotted keys as sent). Returns as ldg_otlp_spans_decode; out->exc_logs is empty.
 */
int ldg_otlp_metrics_decode(enum ldg_otlp_encoding enc, const char *body, size_t len, int64_t now_us,
                            int64_t oldest_us, int64_t project_id, size_t max_points, struct ldg_arena *arena, struct ldg_buf *copy,
                            struct ldg_otlp_rows *out, char *err, size_t errlen) LDG_MUSTCHECK;

/* Append the Export<signal>ServiceResponse for `rejected` refused items (0: no partial_success, an
 * empty message) with `message` (NULL or "" when rejected is 0) to out. */
void ldg_otlp_response(enum ldg_otlp_encoding enc, enum ldg_otlp_signal sig, int64_t rejected,
                       const char *message, struct ldg_buf *out);

/* Append a google.rpc.Status for an HTTP error status (code mapped to the gRPC code) to out. */
void ldg_otlp_status(enum ldg_otlp_encoding enc, int http_status, const char *message, struct ldg_buf *out);

/* The encoding a Content-Type header value names, or -1 for another type. */
int ldg_otlp_content_type(const char *v, size_t n);

#endif
