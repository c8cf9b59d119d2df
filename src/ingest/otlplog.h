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

/* Append the Export<signal>ServiceResponse for `rejected` refused items (0: no partial_success, an
 * empty message) with `message` (NULL or "" when rejected is 0) to out. */
void ldg_otlp_response(enum ldg_otlp_encoding enc, enum ldg_otlp_signal sig, int64_t rejected,
                       const char *message, struct ldg_buf *out);

/* Append a google.rpc.Status for an HTTP error status (code mapped to the gRPC code) to out. */
void ldg_otlp_status(enum ldg_otlp_encoding enc, int http_status, const char *message, struct ldg_buf *out);

/* The encoding a Content-Type header value names, or -1 for another type. */
int ldg_otlp_content_type(const char *v, size_t n);

#endif
