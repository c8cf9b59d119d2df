/*
 * logcodec.h: the wire forms of one struct ldg_log (reference §5.1, §5.2, §7.2; decisions D5).
 *
 *   - queue entry (format 2): a MessagePack array of the §5.1 fields by position, with the
 *     timestamps as Unix microseconds plus the client's offset, so a reader needs no date parsing.
 *     Format 1, a map with the §5.1 keys (what the Python reference pushes) plus `ts_us` and
 *     `ingested_us`, is still read, and written on request;
 *   - COPY row: one line of PostgreSQL COPY text format for LDG_LOGCODEC_COPY_COLUMNS;
 *   - notification: the §5.2 JSON object published on `notifications:errors:<project_id>`.
 *
 * Everything here is pure (no I/O, no global state): any thread, any callback. Output buffers and
 * arenas belong to the caller and are appended to, never reset.
 */
#ifndef LDG_INGEST_LOGCODEC_H
#define LDG_INGEST_LOGCODEC_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "ingest/log.h"

/* Deepest container nesting accepted inside `attributes`, the attributes object itself counting as
 * 1. It is the JSON writer's limit, so whatever encode accepts, decode can turn back into text. */
#define LDG_LOGCODEC_MAX_DEPTH LDG_JSON_MAX_DEPTH

/* Column list matching ldg_logcodec_copy_row, for
 * `COPY logs (` LDG_LOGCODEC_COPY_COLUMNS `) FROM STDIN`. */
#define LDG_LOGCODEC_COPY_COLUMNS                                                                            \
    "project_id, \"timestamp\", ingested_at, level, log_type, importance, environment, release, message, "   \
    "error_type, error_message, stack_trace, attributes, sdk_version, platform, platform_version, "          \
    "error_fingerprint"

enum ldg_logcodec_format {
    LDG_LOGCODEC_ARRAY, /* format 2, what ingest writes */
    LDG_LOGCODEC_MAP,   /* format 1, read for entries queued by earlier versions */
};

/*
 * Append the queue entry for l to out in format 2: a MessagePack array of 19 elements,
 * [2, project_id, ts_us, ts_offset_min, ingested_us, level, log_type, importance, environment,
 * release, message, error_type, error_message, stack_trace, attributes, sdk_version, platform,
 * platform_version, error_fingerprint]: no key names and no date strings, so fewer bytes to queue,
 * copy and decode than format 1.
 * ldg_logcodec_encode_as writes either format. Format 1 is a MessagePack map, 19 keys, §5.1 order
 * then ts_us, ingested_us.
 * `timestamp` is Python isoformat() with the client's offset (`2025-01-15T10:30:45.123000+05:30`,
 * microseconds only when non-zero), `ingested_at` the same in UTC. Absent strings, absent
 * attributes and an empty fingerprint are nil. `attributes` (the tree if set, else the JSON text) becomes a
 * map: integral numbers that fit become int64, other numbers float64. Numbers go through cJSON's double, so
 * integers beyond 2^53 lose precision (stored as the nearest double).
 * Returns 0, or -EINVAL (out unchanged) when the attributes text is not a JSON object or nests
 * deeper than LDG_LOGCODEC_MAX_DEPTH.
 */
int ldg_logcodec_encode(const struct ldg_log *l, struct ldg_buf *out) LDG_MUSTCHECK;
int ldg_logcodec_encode_as(const struct ldg_log *l, enum ldg_logcodec_format format,
                           struct ldg_buf *out) LDG_MUSTCHECK;

/*
 * Decode one queue entry data[0..len) into *out. Every string (and the attributes, turned back
 * into compact JSON text) is copied into `arena`, NUL-terminated: *out borrows from the arena, never
 * from data, which may be freed as soon as this returns. level/log_type/importance point to static
 * strings.
 *
 * Either format. Format 2 must have at least its 19 elements (more are skipped), version 2, an
 * offset within ±24 h, and the types below. Format 1 required keys: project_id, ts_us,
 * ingested_us (ints), level, log_type, importance (known values).
 * `timestamp` (optional) supplies the client's offset from its `±HH:MM` / `Z` suffix; `ingested_at`
 * is checked to be a string and otherwise ignored (ingested_us is authoritative). Unknown keys are
 * skipped, duplicate keys rejected. Strings must be valid UTF-8 without NUL; the fingerprint is nil,
 * "" or 64 lowercase hex digits; attributes are nil or a map with string keys.
 *
 * Returns 0, or -EINVAL for anything malformed (truncated, trailing bytes, wrong types, nesting
 * deeper than LDG_LOGCODEC_MAX_DEPTH, reserved or bin/ext types). Never reads past data + len and
 * never allocates from the input's claimed sizes. On failure *out is unspecified and the arena may
 * hold some garbage (released with the arena).
 */
int ldg_logcodec_decode(const char *data, size_t len, struct ldg_arena *arena,
                        struct ldg_log *out) LDG_MUSTCHECK;

/*
 * Decode the first of several queue entries packed back to back in data[0..len) (a stream entry
 * carrying a whole batch). *used is the size of that first map when its structure is sound (even if
 * its content is then rejected), so the caller can go on with data + *used; 0 when the structure
 * itself is broken (nothing after it can be delimited). Returns what ldg_logcodec_decode returns
 * for data[0..*used), or -EINVAL with *used = 0.
 */
int ldg_logcodec_decode_next(const char *data, size_t len, struct ldg_arena *arena, struct ldg_log *out,
                             size_t *used) LDG_MUSTCHECK;

/*
 * Append one COPY text-format line (ending in '\n') for l, columns LDG_LOGCODEC_COPY_COLUMNS:
 * tab-separated, `\N` for null (absent strings and attributes, empty fingerprint), timestamps as
 * `YYYY-MM-DD HH:MM:SS.ffffff+00` (UTC), text with `\` tab LF CR escaped as `\\` `\t` `\n` `\r`.
 */
void ldg_logcodec_copy_row(const struct ldg_log *l, struct ldg_buf *out);

/* Does l get a §5.2 notification? level critical (if `critical`), level error (if `errors`), or
 * log_type exception at any level. Whether notifications are enabled at all is the caller's check. */
bool ldg_logcodec_notifiable(const struct ldg_log *l, bool errors, bool critical);

/*
 * Append the §5.2 notification JSON for l:
 * {"log_id":null,"project_id":…,"level":…,"log_type":…,"message":<first 500 code points or "">,
 *  "error_type":…,"timestamp":<isoformat, client's offset, "Z" for UTC>,"error_fingerprint":…,
 *  "attributes":<object, {} if none>,"sdk_version":…,"platform":…}
 */
void ldg_logcodec_notification(const struct ldg_log *l, struct ldg_buf *out);

/* Append ts_us rendered as Python isoformat() at UTC offset offset_min (`…T…[.ffffff]±HH:MM`);
 * with utc_z, offset 0 renders as `Z`. Exposed for tests and for other renderers of log times. */
void ldg_logcodec_isoformat(int64_t ts_us, int32_t offset_min, bool utc_z, struct ldg_buf *out);

#endif
