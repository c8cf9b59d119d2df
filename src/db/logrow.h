/*
 * logrow.h: a `logs` row as the API's LogEntryResponse (GET /api/v1/logs/{id}, list, search and
 * the live tail all render rows with this one function, so every answer has the same fields).
 *
 * A statement selects LDG_LOGROW_COLS (in this order, possibly after other columns it skips by
 * passing `first`); ldg_logrow_write appends the JSON object of one row.
 *
 * Pure (no I/O); any thread; the result and the writer are the caller's.
 */
#ifndef LDG_DB_LOGROW_H
#define LDG_DB_LOGROW_H

#include <libpq-fe.h>

#include "core/common.h"
#include "core/json.h"

/* The columns, unqualified (a statement joining `logs` with other relations must not bring
 * columns of these names). Timestamps come as Unix microseconds. */
#define LDG_LOGROW_COLS                                                                                      \
    "id, project_id, (extract(epoch FROM \"timestamp\") * 1000000)::bigint AS ts_us, "                       \
    "(extract(epoch FROM ingested_at) * 1000000)::bigint AS ing_us, level, log_type, importance, "           \
    "environment, release, message, error_type, error_message, stack_trace, attributes::text, sdk_version, " \
    "platform, platform_version, processing_time_ms, error_fingerprint"
#define LDG_LOGROW_NCOLS 19
#define LDG_LOGROW_COL_ID 0
#define LDG_LOGROW_COL_TS 2

/* Append the LogEntryResponse of row `row`, whose LDG_LOGROW_COLS start at column `first`:
 * empty strings and `{}` attributes as null (as v1 answers), timestamps as UTC ISO 8601 with `Z`
 * (fraction only when non-zero). */
void ldg_logrow_write(struct ldg_json_writer *jw, const PGresult *res, int row, int first);

/* The `Z` form of a Unix-µs timestamp as a JSON string (2025-11-21T14:30:00.123456Z). */
void ldg_logrow_write_ts(struct ldg_json_writer *jw, int64_t us);

#endif
