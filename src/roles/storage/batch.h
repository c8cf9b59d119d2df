/*
 * batch.h: one storage batch, the unit the storage role writes in one PostgreSQL transaction.
 *
 * Queue entries (stream entry id, the `p`, `n` and `m` fields) are added in stream order. An
 * entry carries the logs of one ingest request: `m` holds n MessagePack logs back to back (without
 * an `n` field, exactly one), some of them possibly in compressed blocks (ingest/qzip.h). Spans and
 * metric points travel as items of their own among them
 * (ingest/otelrow.h): such a row keeps its table and its COPY line (with the queue id) and goes
 * through every step below like a log, except that it has no error group and is copied into its
 * own table. Each log becomes a row (struct ldg_batch_entry), decoded once
 * (ingest/logcodec.h) into its COPY line, kept in one buffer, plus the few fields the transaction
 * needs besides: project, timestamp, month, its MessagePack bytes (for a dead letter), and for
 * fingerprinted logs the error-group sample. A row that cannot be decoded is DEAD at once.
 *
 * A row's queue id (logs.queue_id) is "<entry id>/<index in the entry>", or the entry id alone for
 * an entry without `n`. Rows then move PENDING -> STORED (committed), DUPLICATE (a row with its
 * queue id already exists: delivered before and committed, D5) or DEAD (PostgreSQL rejected it).
 * Whatever their states, stream entries are finally acknowledged whole; DEAD rows go to the
 * dead-letter stream. The rows of one entry are contiguous and share the LOST state.
 *
 * Ranges [lo, hi) of rows are what the writer stores together (all of them normally; halves of
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
#define LDG_BATCH_SID_MAX 44
/* A row's queue id: the entry id, '/' and the row's index. */
#define LDG_BATCH_ID_MAX (LDG_BATCH_SID_MAX + 12)

enum ldg_batch_state {
    LDG_BATCH_PENDING,
    LDG_BATCH_STORED,
    LDG_BATCH_DUPLICATE,
    LDG_BATCH_DEAD,
    LDG_BATCH_LOST,   /* claimed by another consumer meanwhile: not ours to store or acknowledge */
    LDG_BATCH_PARKED, /* of another logs shard than the one being written (shardsplit.h); only
                       * while a write runs */
};

struct ldg_batch_entry {       /* one row */
    char id[LDG_BATCH_ID_MAX]; /* queue id, NUL-terminated; its first sid_len bytes are the entry id */
    uint8_t sid_len;
    bool first;              /* first row of its stream entry */
    uint32_t depth_n;        /* first row: logs its entry counts in queue_depth (`n`, else 1) */
    uint32_t depth_bytes;    /* first row: its entry's `m` size, counted in queue_bytes */
    int64_t depth_pid;       /* the entry's `p` field (whose queue depth it counts in); 0 = none */
    size_t raw_off, raw_len; /* its MessagePack bytes in `raw` */
    bool maybe_stored;       /* delivered before (pending list or claimed): check for its row */
    enum ldg_batch_state state;
    const char *reason; /* DEAD: why (static or in the batch arena) */
    /* Decoded entries (never DEAD at add time): */
    uint8_t table;           /* enum ldg_otelrow_table: 0 a log, else a span or metric point row */
    int64_t project_id, ts_us;
    int32_t month;           /* UTC year * 12 + month - 1 of ts_us */
    size_t row_off, row_len; /* its COPY line in `rows` (queue_id column included) */
    /* Fingerprinted entries only (arena strings, NULL otherwise): */
    const char *fingerprint, *error_type, *error_message, *stack_trace;
};

struct ldg_batch {
    struct ldg_batch_entry *e; /* owned array */
    size_t n, cap;             /* rows */
    size_t entries;            /* stream entries */
    size_t payload_bytes;      /* sum of the added `m` sizes (the batch's byte bound) */
    struct ldg_buf rows;       /* COPY lines of the decoded rows, back to back */
    struct ldg_buf raw;        /* every row's MessagePack bytes, back to back */
    struct ldg_buf inflated;   /* the compressed block being read (ingest/qzip.h) */
    struct ldg_arena keep;     /* error-group samples and reasons, until reset */
    struct ldg_arena scratch;  /* one entry's decode */
    char *scratch_mem;         /* owned: scratch's first chunk */
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
 * Add one stream entry: its rows. `id` must be a stream id (digits-digits, < LDG_BATCH_SID_MAX);
 * `pid`, `n` and `m` are the entry's fields (NULL if absent). An entry whose id is not an id is
 * refused (-EINVAL, nothing added). Anything else adds at least one row: a row is DEAD with a reason
 * when its log cannot be decoded or its project differs from `p`; when the logs' structure breaks,
 * the rest of `m` is one DEAD row. The first row's depth_n is `n` (if a positive number; else the
 * number of rows). Returns the number of rows added.
 */
int ldg_batch_add(struct ldg_batch *b, const char *id, size_t idlen, const char *pid, size_t pidlen,
                  const char *n, size_t nlen, const char *m, size_t mlen, bool maybe_stored) LDG_MUSTCHECK;

/* The end (one past the last row) of the stream entry whose first row is i. */
size_t ldg_batch_entry_end(const struct ldg_batch *b, size_t i);

/* Mark LOST every row of the stream entry with this id; returns how many rows. */
size_t ldg_batch_lose(struct ldg_batch *b, const char *sid, size_t sidlen);

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

/* Append the COPY lines of the PENDING logs of [lo, hi); returns how many. */
size_t ldg_batch_copy(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out);
/* The same for the rows of one table (enum ldg_otelrow_table; 0 = logs). */
size_t ldg_batch_copy_table(const struct ldg_batch *b, size_t lo, size_t hi, int table, struct ldg_buf *out);

/*
 * Append the error groups of the PENDING fingerprinted entries of [lo, hi) as one JSON array,
 * aggregated per (project, fingerprint) and sorted by them (so that concurrent writers lock
 * error_groups rows in one order):
 *   [{"p":pid,"f":fp,"t":error_type,"m":error_message,"s":stack_trace,"first":us,"last":us,"n":count}]
 * The sample fields come from the group's earliest log. Returns the number of groups (0: "[]").
 */
size_t ldg_batch_groups_json(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out);
/* The same, and into `keys` the same groups with only their keys and first occurrence,
 * [{"p":pid,"f":fp,"first":us}]: what the regression statement needs (PostgreSQL then parses the
 * samples, stack traces mostly, once per batch instead of twice). */
size_t ldg_batch_groups_json_keys(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out,
                                  struct ldg_buf *keys);

/*
 * What a failed statement of the storage transaction means (SQLSTATE, and the constraint the server
 * named, "" if none):
 *   DUPLICATE     23505 or 23P01 on a queue-id key (a constraint whose name holds "queue_id": the
 *                 exclusion constraint of stored_entries, schema 0009, or 0007's unique key): some rows
 *                 of the range were committed by another transaction: look them up, write the rest
 *   NO_PARTITION  23514 naming no constraint: "no partition of relation ... found for row" (a CHECK
 *                 violation names its constraint)
 *   DATA          any other class 22 (data exception) or 23 (integrity constraint): the rows are bad
 *   TRANSIENT     the server or the connection, not the rows: 08 connection, 40 rollback (deadlock,
 *                 serialization), 53 resources, 55 object state (lock not available), 57 operator
 *                 intervention (shutdown, cancel), 58 system error; and failures without a SQLSTATE
 *   PERSISTENT    anything else (42 a missing column, 54 a program limit, XX internal, ...): retried
 *                 a bounded number of times, then treated like DATA
 */
enum ldg_batch_failure {
    LDG_BATCH_FAIL_TRANSIENT,
    LDG_BATCH_FAIL_PERSISTENT,
    LDG_BATCH_FAIL_DATA,
    LDG_BATCH_FAIL_NO_PARTITION,
    LDG_BATCH_FAIL_DUPLICATE,
};
enum ldg_batch_failure ldg_batch_classify(const char *sqlstate, const char *constraint);

/* Mark the PENDING entries of [lo, hi) maybe_stored (to be looked up before the next COPY). */
void ldg_batch_recheck(struct ldg_batch *b, size_t lo, size_t hi);

#endif
