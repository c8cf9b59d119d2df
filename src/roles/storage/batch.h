/*
 * batch.h: one storage batch, the unit the storage role writes in one PostgreSQL transaction.
 *
 * Queue entries (stream entry id, the `p` field, the MessagePack `m` field) are added in stream
 * order. Each is decoded once (ingest/logcodec.h) into its COPY line, kept in one buffer, plus the
 * few fields the transaction needs besides: project, timestamp, month, and for fingerprinted logs the
 * error-group sample. An entry that cannot be decoded is DEAD at once, with its reason.
 *
 * Entries then move PENDING -> STORED (committed), DUPLICATE (a row with its entry id already
 * exists: delivered before and committed, D5) or DEAD (PostgreSQL rejected it). Whatever the state,
 * every entry is finally acknowledged; DEAD ones go to the dead-letter stream.
 *
 * Ranges [lo, hi) of entries are what the writer stores together (all of them normally; halves of
 * halves while it isolates a row PostgreSQL rejects).
 *
 * Pure (no I/O, no globals); not thread-safe; owned by one storage consumer.
 */
#ifndef LDG_ROLES_STORAGE_BATCH_H
#define LDG_ROLES_STORAGE_BATCH_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/common.h"

/* A stream entry id "<ms>-<seq>": two 64-bit decimals and the dash. */
#define LDG_BATCH_ID_MAX 44

enum ldg_batch_state {
    LDG_BATCH_PENDING,
    LDG_BATCH_STORED,
    LDG_BATCH_DUPLICATE,
    LDG_BATCH_DEAD,
    LDG_BATCH_LOST, /* claimed by another consumer meanwhile: not ours to store or acknowledge */
};

struct ldg_batch_entry {
    char id[LDG_BATCH_ID_MAX]; /* stream entry id, NUL-terminated */
    int64_t depth_pid;         /* the entry's `p` field (whose queue depth it counts in); 0 = none */
    bool maybe_stored;         /* delivered before (pending list or claimed): check for its row */
    enum ldg_batch_state state;
    const char *reason; /* DEAD: why (static or in the batch arena) */
    /* Decoded entries (never DEAD at add time): */
    int64_t project_id, ts_us;
    int32_t month;           /* UTC year * 12 + month - 1 of ts_us */
    size_t row_off, row_len; /* its COPY line in `rows` (queue_id column included) */
    /* Fingerprinted entries only (arena strings, NULL otherwise): */
    const char *fingerprint, *error_type, *error_message, *stack_trace;
};

struct ldg_batch {
    struct ldg_batch_entry *e; /* owned array */
    size_t n, cap;
    size_t payload_bytes;     /* sum of the added `m` sizes (the batch's byte bound) */
    struct ldg_buf rows;      /* COPY lines of the decoded entries, back to back */
    struct ldg_arena keep;    /* error-group samples and reasons, until reset */
    struct ldg_arena scratch; /* one entry's decode */
    char *scratch_mem;        /* owned: scratch's first chunk */
};

/* Column list of the COPY lines: the codec's columns and the entry id. */
#define LDG_BATCH_COPY_SQL                                                                                   \
    "COPY logs (project_id, \"timestamp\", ingested_at, level, log_type, importance, environment, release, " \
    "message, error_type, error_message, stack_trace, attributes, sdk_version, platform, platform_version, " \
    "error_fingerprint, queue_id) FROM STDIN"

void ldg_batch_init(struct ldg_batch *b);
/* Forget every entry; keep allocations (up to a bound) for the next batch. */
void ldg_batch_reset(struct ldg_batch *b);
void ldg_batch_free(struct ldg_batch *b);

/*
 * Add one stream entry. `id` must be a stream id (digits-digits, < LDG_BATCH_ID_MAX); `pid` is the
 * `p` field (NULL if absent), `m` the MessagePack payload (NULL if absent). An entry whose id is
 * not an id is refused (-EINVAL, nothing added); anything else is added, as DEAD with a reason when
 * the payload cannot be decoded or its project differs from `p`.
 */
int ldg_batch_add(struct ldg_batch *b, const char *id, size_t idlen, const char *pid, size_t pidlen,
                  const char *m, size_t mlen, bool maybe_stored) LDG_MUSTCHECK;

/* Counts of the entries in [lo, hi) in a state / PENDING and maybe_stored. */
size_t ldg_batch_count(const struct ldg_batch *b, size_t lo, size_t hi, enum ldg_batch_state st);
size_t ldg_batch_count_unchecked(const struct ldg_batch *b, size_t lo, size_t hi);

/* Set the state of the PENDING entries of [lo, hi) (and DEAD ones' reason, copied). */
void ldg_batch_set(struct ldg_batch *b, size_t lo, size_t hi, enum ldg_batch_state st, const char *reason);

/* The distinct months of the PENDING entries of [lo, hi) into out (up to max), ascending.
 * Returns their number when it is <= max; a number > max means some did not fit. */
size_t ldg_batch_months(const struct ldg_batch *b, size_t lo, size_t hi, int32_t *out, size_t max);

/* Mark DEAD (with reason) the PENDING entries of [lo, hi) whose month is `month`. */
void ldg_batch_kill_month(struct ldg_batch *b, size_t lo, size_t hi, int32_t month, const char *reason);

/* "YYYY-MM-15 00:00:00+00": a timestamp inside month (for logs_ensure_partition). */
void ldg_batch_month_text(int32_t month, char *out, size_t cap);

/*
 * The duplicate check's parameters for the PENDING, maybe_stored entries of [lo, hi): three
 * PostgreSQL array literals (project ids, timestamps in Unix µs, entry ids), appended to the
 * buffers, NUL-terminated. Returns the number of entries.
 */
size_t ldg_batch_dup_params(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *pids,
                            struct ldg_buf *ts, struct ldg_buf *ids);

/* Mark the PENDING entry of [lo, hi) with this id DUPLICATE; false if there is none. */
bool ldg_batch_mark_duplicate(struct ldg_batch *b, size_t lo, size_t hi, const char *id, size_t idlen);

/* Append the COPY lines of the PENDING entries of [lo, hi); returns how many. */
size_t ldg_batch_copy(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out);

/*
 * Append the error groups of the PENDING fingerprinted entries of [lo, hi) as one JSON array,
 * aggregated per (project, fingerprint) and sorted by them (so that concurrent writers lock
 * error_groups rows in one order):
 *   [{"p":pid,"f":fp,"t":error_type,"m":error_message,"s":stack_trace,"first":us,"last":us,"n":count}]
 * The sample fields come from the group's earliest log. Returns the number of groups (0: "[]").
 */
size_t ldg_batch_groups_json(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out);

#endif
