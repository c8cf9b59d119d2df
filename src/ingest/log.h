/*
 * log.h: one log entry as ingestion and storage see it (reference §4, decisions D6).
 *
 * Produced by ingest/logentry.c from a request's JSON (validated, enriched), carried through the
 * queue by ingest/logcodec.c (MessagePack, reference §5.1) and written by the storage role.
 *
 * Memory: every pointer is borrowed from whoever filled the struct (a request arena, a decoded
 * queue entry); the struct itself holds nothing to free. Pure data: any thread.
 */
#ifndef LDG_INGEST_LOG_H
#define LDG_INGEST_LOG_H

#include "core/common.h"
#include "core/str.h"

/* Lengths in code points (reference §4.1). */
#define LDG_LOG_MAX_MESSAGE 10000
#define LDG_LOG_MAX_ERROR_TYPE 255
#define LDG_LOG_MAX_ERROR_MESSAGE 5000
#define LDG_LOG_MAX_STACK_TRACE 50000
#define LDG_LOG_MAX_ENVIRONMENT 20
#define LDG_LOG_MAX_RELEASE 100
#define LDG_LOG_MAX_SDK_VERSION 20
#define LDG_LOG_MAX_PLATFORM 50
#define LDG_LOG_MAX_PLATFORM_VERSION 50
#define LDG_LOG_MAX_ATTRIBUTES_BYTES 100000 /* serialised JSON (D6: what /settings reports) */
#define LDG_LOG_FUTURE_TOLERANCE_S 300
#define LDG_LOG_FINGERPRINT_LEN 64

struct ldg_log {
    int64_t project_id;
    int64_t ts_us;          /* the log's timestamp: Unix microseconds, UTC */
    int32_t ts_offset_min;  /* the UTC offset the client wrote it with, in minutes (0 for Z / numbers) */
    int64_t ingested_us;    /* server time of acceptance: Unix microseconds, UTC */
    const char *level;      /* static: debug info warning error critical */
    const char *log_type;   /* static: console logger exception database endpoint custom */
    const char *importance; /* static: critical high standard low */
    /* Optional strings: p == NULL means null/absent. Valid UTF-8, no NUL. */
    struct ldg_str message, error_type, error_message, stack_trace, environment, release, sdk_version,
        platform, platform_version;
    struct ldg_str attributes; /* compact JSON text of the attributes object; p == NULL: none */
    /* The attributes object as parsed from a request (ingest only), NULL otherwise. When set, the
     * text above is only filled on demand (ldg_logentry_attributes_text). */
    const struct cJSON *attributes_tree;
    char fingerprint[LDG_LOG_FINGERPRINT_LEN + 1]; /* "" = none (§4.3) */
};

#endif
