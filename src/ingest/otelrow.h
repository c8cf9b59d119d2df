/*
 * otelrow.h: spans and metric points as rows of the ingest queue (docs/otlp.md "How they are
 * written").
 *
 * A traces or metrics request's rows travel in the same queue entries as logs (the `m` field: items
 * back to back), each one MessagePack array of 4 that no log encoding uses:
 *   [table, project_id, ts_us, line]
 * table 16 (spans) or 17 (metric points) as a positive fixint, project_id and ts_us (the span's
 * start time, the point's time, Unix µs) as int64 (0xd3), line as str32 (0xdb): the row's COPY text
 * line without its newline, columns LDG_OTELROW_SPAN_COLS / LDG_OTELROW_METRIC_COLS. The storage
 * role appends the row's queue id column and copies it into its table; ts_us is what the row's
 * partition and duplicate lookup use. A log item starts with a map (format 1) or an array of 19
 * (format 2, array16), never with a fixarray of 4, so one byte pair tells them apart.
 *
 * Pure (no I/O, no globals): any thread.
 */
#ifndef LDG_INGEST_OTELROW_H
#define LDG_INGEST_OTELROW_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum ldg_otelrow_table {
    LDG_OTELROW_LOG = 0, /* not an OTel row: a log (the storage batch's default) */
    LDG_OTELROW_SPAN = 16,
    LDG_OTELROW_METRIC = 17,
};

#define LDG_OTELROW_SPAN_COLS                                                                                \
    "project_id, trace_id, span_id, parent_span_id, name, kind, service, start_time, duration_us, "          \
    "status_code, status_message, attributes, events"
#define LDG_OTELROW_METRIC_COLS                                                                              \
    "project_id, name, type, unit, temporality, monotonic, service, \"time\", start_time, value, count, "    \
    "sum, min, max, bounds, bucket_counts, attributes"

/* The storage role's COPY statements: the columns above and the queue id. */
#define LDG_OTELROW_SPAN_COPY_SQL "COPY spans (" LDG_OTELROW_SPAN_COLS ", queue_id) FROM STDIN"
#define LDG_OTELROW_METRIC_COPY_SQL "COPY metric_points (" LDG_OTELROW_METRIC_COLS ", queue_id) FROM STDIN"

struct ldg_otelrow {
    enum ldg_otelrow_table table;
    int64_t project_id, ts_us;
    const char *line; /* into the decoded bytes; not NUL-terminated */
    size_t len;
};

/* Append one row item (line without its '\n'). */
void ldg_otelrow_encode(enum ldg_otelrow_table t, int64_t project_id, int64_t ts_us, const char *line,
                        size_t len, struct ldg_buf *out);

/* Is the item at p an OTel row (by its first two bytes)? */
static inline int ldg_otelrow_is(const char *p, size_t n)
{
    return n >= 2 && (unsigned char)p[0] == 0x94 &&
           ((unsigned char)p[1] == LDG_OTELROW_SPAN || (unsigned char)p[1] == LDG_OTELROW_METRIC);
}

/* Decode the row item at p (ldg_otelrow_is true): 0 and *used = its size, or -1 when it is cut or
 * malformed (*used = 0). */
int ldg_otelrow_decode(const char *p, size_t n, struct ldg_otelrow *out, size_t *used);

#endif
