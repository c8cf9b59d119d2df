/*
 * consumer.c: the Redis side of a storage consumer (see consumer.h, storage.h).
 *
 * One command is in flight at a time (state REDIS). Every reply handler ends by calling step()
 * (directly or through the timer), which picks the next action from the batch and the flags:
 *
 *   stopping and nothing held        -> close
 *   group not created yet            -> XGROUP CREATE ... 0 MKSTREAM
 *   batch stored                     -> ack script
 *   batch full / wait over / source done -> writer
 *   source OWN                       -> XREADGROUP ... <own_cursor>
 *   claim due and batch empty        -> XAUTOCLAIM
 *   otherwise                        -> XREADGROUP ... BLOCK ... >
 */
#include "roles/storage/consumer.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/redis.h"
#include "roles/storage/storage.h"
#include "roles/storage/tailpub.h"
#include "settings.h"

/* Entries per XREADGROUP / XAUTOCLAIM: with rows_per_entry, bounds what one reply can add beyond
 * batch_max_logs and batch_max_bytes. A new consumer assumes full 1000-log entries. */
#define READ_COUNT_MAX 200
#define ROWS_PER_ENTRY_START 1000
/* ... and the bytes of an entry: a full coalesced flight (ingest COALESCE_BYTES) */
#define BYTES_PER_ENTRY_START (1024 * 1024)

/*
 * Acknowledge a batch. KEYS: stream, dead-letter stream, queue_depth:<pid>... then as many
 * queue_bytes:<pid> in the same order. ARGV: group, dead-letter max length, consumer, then per
 * entry: id, depth key index (0 = none; its bytes key is that plus the number of projects), logs
 * it counts in that depth, bytes it counts in queue_bytes, its p field, the number of dead rows,
 * and per dead row its queue id, reason and MessagePack bytes. An entry is counted (XDEL, depth
 * decremented, rows dead-lettered) only when it is pending in the group (what XACK acknowledges),
 * so a second ack of the same entry changes nothing. The counters and dead letters are written
 * before XACK/XDEL: those are the writes Redis refuses when it is out of memory (noeviction), and
 * it refuses the first one, so a refused ack changes nothing and the counters cannot drift.
 */
static const char ack_lua[] =
    "local dec, np, ids, dead = {}, (#KEYS - 2) / 2, {}, {}\n"
    "local i = 4\n"
    "while i <= #ARGV do\n"
    "  local id, k, cnt, nb, p = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]),\n"
    "                            ARGV[i + 4]\n"
    "  local nd = tonumber(ARGV[i + 5])\n"
    "  i = i + 6\n"
    "  if #redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1) > 0 then\n"
    "    ids[#ids + 1] = id\n"
    "    if k > 0 then dec[k], dec[k + np] = (dec[k] or 0) + cnt, (dec[k + np] or 0) + nb end\n"
    "    for d = i, i + 3 * (nd - 1), 3 do dead[#dead + 1] = {d, p} end\n"
    "  end\n"
    "  i = i + 3 * nd\n"
    "end\n"
    "for k, c in pairs(dec) do\n"
    "  if redis.call('DECRBY', KEYS[k], c) < 0 then redis.call('SET', KEYS[k], 0) end\n"
    "end\n"
    "for _, x in ipairs(dead) do\n"
    "  local d = x[1]\n"
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'id', ARGV[d], 'reason', ARGV[d + 1],\n"
    "             'consumer', ARGV[3], 'p', x[2], 'm', ARGV[d + 2])\n"
    "end\n"
    "for _, id in ipairs(ids) do\n"
    "  redis.call('XACK', KEYS[1], ARGV[1], id)\n"
    "  redis.call('XDEL', KEYS[1], id)\n"
    "end\n"
    "return #ids\n";

/*
 * Renew the lease of entries. KEYS: stream. ARGV: group, consumer, ids... Entries still pending
 * at this consumer are re-claimed (idle time reset); returns the ids that are not.
 */
static const char lease_lua[] = "local lost = {}\n"
                                "for i = 3, #ARGV do\n"
                                "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)\n"
                                "  if p[1] and p[1][2] == ARGV[2] then\n"
                                "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
                                "  else\n"
                                "    lost[#lost + 1] = ARGV[i]\n"
                                "  end\n"
                                "end\n"
                                "return lost\n";

static struct ldg_redis_script ack_script, lease_script;

void ldg__storage_consumer_init_global(void)
{
    ldg_redis_script_init(&ack_script, ack_lua);
    ldg_redis_script_init(&lease_script, lease_lua);
}

static const struct ldg_storage_cfg *cfg(void)
{
    return ldg__storage.cfg;
}

static uint64_t now_ms(const struct ldg__storage_consumer *c)
{
    return ldg_worker_now(c->w);
}

static void step(struct ldg__storage_consumer *c);
static void close_all(struct ldg__storage_consumer *c);

void ldg__storage_fail(struct ldg__storage_consumer *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    c->stats.failures++;
    ldg_stat_add(&c->w->stats.store_failures, 1);
    ldg_log_warn(c->ctx, "%s", c->last_error);
}

/* ---- scheduling ---------------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    struct ldg__storage_consumer *c = t->data;
    if (c->state == LDG_STORAGE_IDLE)
        step(c);
}

static void later(struct ldg__storage_consumer *c, uint64_t ms)
{
    c->state = LDG_STORAGE_IDLE;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void retry_later(struct ldg__storage_consumer *c)
{
    later(c, ldg_backoff_next(&c->backoff));
}

/* Send a command; on a refused send, retry after backoff. */
static void command(struct ldg__storage_consumer *c, ldg_redis_cb cb, int argc, const char **argv,
                    const size_t *argl)
{
    c->state = LDG_STORAGE_REDIS;
    int rc = ldg_redis_commandargv(c->redis, cb, c, argc, argv, argl);
    if (rc < 0) {
        if (rc != -ENOTCONN)
            ldg__storage_fail(c, "redis command refused: %s", strerror(-rc));
        retry_later(c);
    }
}

/* Closing: replies (NULL, from inside ldg_redis_close) are ignored. */
static bool gone(const struct ldg__storage_consumer *c)
{
    return c->state == LDG_STORAGE_CLOSING || c->state == LDG_STORAGE_CLOSED;
}

/* Common reply handling: closing, stopping with nothing held, no reply, error reply. Returns true
 * if the handler should stop here (what comes next is already arranged). */
static bool reply_common(struct ldg__storage_consumer *c, redisReply *reply, const char *what)
{
    if (gone(c))
        return true;
    c->state = LDG_STORAGE_IDLE;
    if (c->stopping && c->batch.n == 0) {
        close_all(c);
        return true;
    }
    if (!reply) {
        if (!c->stopping)
            ldg__storage_fail(c, "%s: no reply from Redis (connection lost or timed out)", what);
        /* A read may have delivered entries whose reply was lost: they sit in our pending list. */
        c->reread_own = true;
        retry_later(c);
        return true;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        ldg__storage_fail(c, "%s: %s", what, reply->str);
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            /* Redis lost the stream and the group (restart without persistence, FLUSHALL, DEL):
             * create the group again; a held batch is still stored and acknowledged (its XACKs
             * then find nothing pending). */
            c->group_ready = false;
            c->source = LDG_STORAGE_OWN;
            snprintf(c->own_cursor, sizeof c->own_cursor, "0");
            snprintf(c->claim_cursor, sizeof c->claim_cursor, "0-0");
        }
        retry_later(c);
        return true;
    }
    return false;
}

/* ---- consumer group ------------------------------------------------------------------------------ */

static void on_group(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_consumer *c = ud;
    if (gone(c))
        return;
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) == 0) {
        c->state = LDG_STORAGE_IDLE;
        c->group_ready = true;
        step(c);
        return;
    }
    if (reply_common(c, reply, "XGROUP CREATE"))
        return;
    c->group_ready = true;
    ldg_log_info(c->ctx, "consumer group created");
    step(c);
}

static void create_group(struct ldg__storage_consumer *c)
{
    const char *argv[] = {"XGROUP", "CREATE", ldg__storage.stream, cfg()->group, "0", "MKSTREAM"};
    command(c, on_group, 6, argv, NULL);
}

/* ---- reading ------------------------------------------------------------------------------------- */

static bool str_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

/* Is the stream entry `id` in the batch already? (Linear: only asked for claimed and re-read
 * entries, which are rare.) */
static bool in_batch(const struct ldg_batch *b, const char *id, size_t len)
{
    for (size_t i = 0; i < b->n; i = ldg_batch_entry_end(b, i))
        if (b->e[i].sid_len == len && memcmp(b->e[i].id, id, len) == 0)
            return true;
    return false;
}

/* Add one [id, [field, value...] | nil] element; returns false for a malformed element. */
static bool add_entry(struct ldg__storage_consumer *c, const redisReply *e, bool maybe_stored)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return false;
    const redisReply *id = e->element[0], *f = e->element[1];
    const char *p = NULL, *m = NULL, *n = NULL;
    size_t pn = 0, mn = 0, nn = 0;
    if (f->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < f->elements; i += 2) {
            const redisReply *k = f->element[i], *v = f->element[i + 1];
            if (v->type != REDIS_REPLY_STRING)
                continue;
            if (str_is(k, "p")) {
                p = v->str;
                pn = v->len;
            } else if (str_is(k, "m")) {
                m = v->str;
                mn = v->len;
            } else if (str_is(k, "n")) {
                n = v->str;
                nn = v->len;
            }
        }
    } else if (f->type != REDIS_REPLY_NIL)
        return false;
    if (c->source != LDG_STORAGE_NEW && in_batch(&c->batch, id->str, id->len))
        return true; /* claimed or re-read while already held: once per batch (one row per queue id) */
    if (c->batch.n == 0)
        c->batch_first_ms = now_ms(c);
    if (ldg_batch_add(&c->batch, id->str, id->len, p, pn, n, nn, m, mn, maybe_stored) < 0)
        return false;
    if (f->type == REDIS_REPLY_NIL) {
        /* Deleted from the stream while pending: nothing to store or dead-letter, only to ack. */
        struct ldg_batch_entry *be = &c->batch.e[c->batch.n - 1];
        be->state = LDG_BATCH_DUPLICATE;
        be->depth_pid = 0;
    }
    return true;
}

/* Add a list of entries; updates the lease and the rows-per-entry estimate. Returns the count of
 * entries, or -1 if malformed. */
static long add_entries(struct ldg__storage_consumer *c, const redisReply *list, bool maybe_stored)
{
    if (list->type != REDIS_REPLY_ARRAY)
        return -1;
    if (list->elements > 0 && c->batch.n == 0)
        c->lease_ms = c->source == LDG_STORAGE_OWN ? 0 : c->read_sent_ms;
    size_t rows = c->batch.n, bytes = c->batch.payload_bytes;
    for (size_t i = 0; i < list->elements; i++)
        if (!add_entry(c, list->element[i], maybe_stored))
            return -1;
    if (list->elements > 0) {
        size_t mean = (c->batch.n - rows + list->elements - 1) / list->elements;
        c->rows_per_entry = LDG_MAX(mean, c->rows_per_entry / 2);
        c->rows_per_entry = LDG_MAX(c->rows_per_entry, (size_t)1);
        mean = (c->batch.payload_bytes - bytes + list->elements - 1) / list->elements;
        c->bytes_per_entry = LDG_MAX(mean, c->bytes_per_entry / 2);
        c->bytes_per_entry = LDG_MAX(c->bytes_per_entry, (size_t)1);
    }
    return (long)list->elements;
}

static bool batch_full(const struct ldg__storage_consumer *c)
{
    return c->batch.n >= (size_t)cfg()->batch_max_logs ||
           c->batch.payload_bytes >= (size_t)cfg()->batch_max_bytes;
}

/* Entries to ask for: the batch's room in rows over the estimate of rows per entry, and its room
 * in bytes over the estimate of bytes per entry, whichever is less; at least 1 (a batch can go over
 * batch_max_logs by up to one entry's logs less one, and over batch_max_bytes by one entry, which
 * ingest bounds: one flight's logs of one project). */
static size_t read_count(const struct ldg__storage_consumer *c)
{
    size_t room = (size_t)cfg()->batch_max_logs - LDG_MIN(c->batch.n, (size_t)cfg()->batch_max_logs);
    size_t n = room / c->rows_per_entry;
    size_t broom =
        (size_t)cfg()->batch_max_bytes - LDG_MIN(c->batch.payload_bytes, (size_t)cfg()->batch_max_bytes);
    n = LDG_MIN(n, broom / c->bytes_per_entry);
    return n < 1 ? 1 : n < READ_COUNT_MAX ? n : READ_COUNT_MAX;
}

static void start_write(struct ldg__storage_consumer *c)
{
    uv_timer_stop(&c->timer);
    c->state = LDG_STORAGE_STORING;
    ldg__storage_write(c);
}

static void on_read(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_consumer *c = ud;
    if (reply_common(c, reply, "XREADGROUP"))
        return;
    bool own = c->source == LDG_STORAGE_OWN;
    long got = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
        const redisReply *s = reply->element[0];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            (got = add_entries(c, s->element[1], own)) < 0) {
            ldg__storage_fail(c, "XREADGROUP: unexpected reply shape");
            retry_later(c);
            return;
        }
        if (own && got > 0) {
            const struct ldg_batch_entry *last = &c->batch.e[c->batch.n - 1];
            snprintf(c->own_cursor, sizeof c->own_cursor, "%.*s", (int)last->sid_len, last->id);
        }
    } else if (reply->type != REDIS_REPLY_NIL) {
        ldg__storage_fail(c, "XREADGROUP: unexpected reply type %d", reply->type);
        retry_later(c);
        return;
    }
    ldg_backoff_reset(&c->backoff);
    if (own && got == 0) {
        c->source = LDG_STORAGE_NEW; /* the pending list is done; its batch (if any) goes now */
        if (c->batch.n > 0) {
            start_write(c);
            return;
        }
    } else if (!own && got == 0 && c->batch.n > 0) {
        start_write(c); /* the wait is over */
        return;
    }
    step(c);
}

static void read_own(struct ldg__storage_consumer *c)
{
    char count[24];
    snprintf(count, sizeof count, "%zu", read_count(c));
    const char *argv[] = {"XREADGROUP", "GROUP",   cfg()->group,        c->name,      "COUNT",
                          count,        "STREAMS", ldg__storage.stream, c->own_cursor};
    c->read_sent_ms = now_ms(c);
    command(c, on_read, 9, argv, NULL);
}

static void read_new(struct ldg__storage_consumer *c)
{
    uint64_t block = (uint64_t)cfg()->read_block_ms;
    if (c->batch.n > 0) {
        uint64_t waited = now_ms(c) - c->batch_first_ms;
        if (waited >= (uint64_t)cfg()->batch_wait_ms) {
            start_write(c);
            return;
        }
        block = (uint64_t)cfg()->batch_wait_ms - waited;
    }
    char count[24], blk[24];
    snprintf(count, sizeof count, "%zu", read_count(c));
    snprintf(blk, sizeof blk, "%" PRIu64, block);
    const char *argv[] = {"XREADGROUP", "GROUP",   cfg()->group,        c->name, "COUNT", count, "BLOCK",
                          blk,          "STREAMS", ldg__storage.stream, ">"};
    c->read_sent_ms = now_ms(c);
    command(c, on_read, 11, argv, NULL);
}

/* ---- claiming ------------------------------------------------------------------------------------- */

static void on_claim(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_consumer *c = ud;
    if (reply_common(c, reply, "XAUTOCLAIM"))
        return;
    long got;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        (got = add_entries(c, reply->element[1], true)) < 0) {
        ldg__storage_fail(c, "XAUTOCLAIM: unexpected reply shape");
        c->next_claim_ms = now_ms(c) + (uint64_t)cfg()->claim_interval_ms;
        retry_later(c);
        return;
    }
    /* Ids pending but deleted from the stream (Redis 7): acknowledge them, nothing else. */
    if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY) {
        const redisReply *del = reply->element[2];
        for (size_t i = 0; i < del->elements; i++) {
            const redisReply *id = del->element[i];
            if (id->type == REDIS_REPLY_STRING &&
                ldg_batch_add(&c->batch, id->str, id->len, NULL, 0, NULL, 0, NULL, 0, true) > 0) {
                struct ldg_batch_entry *be = &c->batch.e[c->batch.n - 1];
                be->state = LDG_BATCH_DUPLICATE;
                be->depth_pid = 0;
            }
        }
    }
    const redisReply *cur = reply->element[0];
    if (cur->len < sizeof c->claim_cursor) {
        memcpy(c->claim_cursor, cur->str, cur->len);
        c->claim_cursor[cur->len] = 0;
    }
    if (got > 0)
        ldg_log_info(c->ctx, "claimed %ld entries left pending by other consumers", got);
    if (strcmp(c->claim_cursor, "0-0") == 0)
        c->next_claim_ms = now_ms(c) + (uint64_t)cfg()->claim_interval_ms;
    ldg_backoff_reset(&c->backoff);
    if (c->batch.n > 0) {
        start_write(c);
        return;
    }
    step(c);
}

static void claim(struct ldg__storage_consumer *c)
{
    char idle[24], count[24];
    snprintf(idle, sizeof idle, "%" PRId64, cfg()->claim_idle_ms);
    snprintf(count, sizeof count, "%zu", read_count(c));
    c->source = LDG_STORAGE_CLAIM;
    const char *argv[] = {"XAUTOCLAIM", ldg__storage.stream, cfg()->group, c->name,
                          idle,         c->claim_cursor,     "COUNT",      count};
    c->read_sent_ms = now_ms(c);
    command(c, on_claim, 8, argv, NULL);
}

/* ---- leases ---------------------------------------------------------------------------------------- */

bool ldg__storage_lease_stale(const struct ldg__storage_consumer *c)
{
    return c->lease_ms == 0 || now_ms(c) - c->lease_ms >= (uint64_t)cfg()->claim_idle_ms / 2;
}

static void on_renewed(struct ldg_redis *r, redisReply *reply, void *ud);

/* Send the lease script over the entries that have PENDING rows. */
static int send_lease(struct ldg__storage_consumer *c, bool eval)
{
    const struct ldg_batch *b = &c->batch;
    size_t argc = 6 + b->entries, i = 0;
    const char **argv = ldg_malloc(argc * sizeof *argv);
    size_t *argl = ldg_malloc(argc * sizeof *argl);
    ldg_redis_script_head(&lease_script, eval, argv, argl);
    i = 2;
#define ARG(s, l) (argv[i] = (s), argl[i] = (l), i++)
    ARG("1", 1u);
    ARG(ldg__storage.stream, strlen(ldg__storage.stream));
    ARG(cfg()->group, strlen(cfg()->group));
    ARG(c->name, strlen(c->name));
    for (size_t k = 0, end; k < b->n; k = end) {
        end = ldg_batch_entry_end(b, k);
        if (ldg_batch_count(b, k, end, LDG_BATCH_PENDING) > 0)
            ARG(b->e[k].id, b->e[k].sid_len);
    }
#undef ARG
    LDG_ASSERT(i <= argc);
    c->state = LDG_STORAGE_REDIS;
    c->read_sent_ms = now_ms(c);
    int rc = ldg_redis_commandargv(c->redis, on_renewed, c, (int)i, argv, argl);
    free(argl);
    free(argv);
    return rc;
}

static void renew_done(struct ldg__storage_consumer *c, bool ok)
{
    void (*cb)(struct ldg__storage_consumer *, bool) = c->renew_cb;
    c->renew_cb = NULL;
    c->state = LDG_STORAGE_STORING;
    cb(c, ok);
}

static void on_renewed(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_consumer *c = ud;
    if (gone(c) || !c->renew_cb)
        return; /* closing, or the attempt was given up on (store deadline) */
    if (ldg_redis_noscript(reply)) {
        if (send_lease(c, true) == 0)
            return;
        reply = NULL;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        ldg__storage_fail(c, "lease renewal failed: %s",
                          !reply                             ? "no reply from Redis"
                          : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                             : "unexpected reply");
        renew_done(c, false);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *id = reply->element[i];
        if (id->type == REDIS_REPLY_STRING)
            c->stats.lost += ldg_batch_lose(&c->batch, id->str, id->len);
    }
    if (reply->elements > 0)
        ldg_log_warn(c->ctx, "%zu entries were claimed by another consumer; left to it", reply->elements);
    c->lease_ms = c->read_sent_ms;
    renew_done(c, true);
}

void ldg__storage_renew(struct ldg__storage_consumer *c, void (*cb)(struct ldg__storage_consumer *c, bool ok))
{
    LDG_ASSERT(!c->renew_cb);
    c->renew_cb = cb;
    if (ldg_batch_count(&c->batch, 0, c->batch.n, LDG_BATCH_PENDING) == 0) {
        c->renew_cb = NULL;
        cb(c, true);
        return;
    }
    if (send_lease(c, false) < 0) {
        ldg__storage_fail(c, "lease renewal not sent: Redis unavailable");
        renew_done(c, false);
    }
}

/* ---- acknowledging ------------------------------------------------------------------------------------ */

static void on_acked(struct ldg_redis *r, redisReply *reply, void *ud);

static int send_ack(struct ldg__storage_consumer *c, bool eval)
{
    struct ldg_batch *b = &c->batch;
    /* keys: stream, dead stream, then one queue_depth key per distinct project */
    int64_t *pids = ldg_malloc((b->n + 1) * sizeof *pids);
    size_t npids = 0, nentries = 0, ndead = 0;
    for (size_t i = 0, end; i < b->n; i = end) {
        end = ldg_batch_entry_end(b, i);
        if (b->e[i].state == LDG_BATCH_LOST)
            continue;
        nentries++;
        ndead += ldg_batch_count(b, i, end, LDG_BATCH_DEAD);
        int64_t p = b->e[i].depth_pid;
        bool seen = p <= 0;
        for (size_t k = 0; k < npids && !seen; k++)
            seen = pids[k] == p;
        if (!seen)
            pids[npids++] = p;
    }
    size_t argc = 3 + 2 + 2 * npids + 3 + 6 * nentries + 3 * ndead;
    const char **argv = ldg_malloc(argc * sizeof *argv);
    size_t *argl = ldg_malloc(argc * sizeof *argl);
    /* Numbers and key names go into one NUL-separated buffer first (it may move while growing);
     * pointers into it are taken after, in the same order. */
    struct ldg_buf *sb = &c->args;
    ldg_buf_reset(sb);
    ldg_buf_printf(sb, "%zu%c", 2 + 2 * npids, 0);
    for (size_t k = 0; k < npids; k++)
        ldg_buf_printf(sb, "queue_depth:%" PRId64 "%c", pids[k], 0);
    for (size_t k = 0; k < npids; k++)
        ldg_buf_printf(sb, "queue_bytes:%" PRId64 "%c", pids[k], 0);
    ldg_buf_printf(sb, "%" PRId64 "%c", cfg()->dead_letter_max_len, 0);
    for (size_t e = 0, end; e < b->n; e = end) {
        end = ldg_batch_entry_end(b, e);
        if (b->e[e].state == LDG_BATCH_LOST)
            continue;
        size_t k = 0;
        if (b->e[e].depth_pid > 0)
            while (pids[k] != b->e[e].depth_pid)
                k++;
        ldg_buf_printf(sb, "%zu%c%" PRIu32 "%c%" PRIu32 "%c", b->e[e].depth_pid > 0 ? k + 3 : 0, 0,
                       b->e[e].depth_n, 0, b->e[e].depth_bytes, 0);
        if (b->e[e].depth_pid > 0)
            ldg_buf_printf(sb, "%" PRId64, b->e[e].depth_pid);
        ldg_buf_printf(sb, "%c%zu%c", 0, ldg_batch_count(b, e, end, LDG_BATCH_DEAD), 0);
    }
    const char *base = ldg_buf_head(sb), *at = base;
    size_t i = 0;
#define ARG(s, l) (argv[i] = (s), argl[i] = (l), i++)
#define NUM() (ARG(at, strlen(at)), at += argl[i - 1] + 1)
    ldg_redis_script_head(&ack_script, eval, argv, argl);
    i = 2;
    NUM();
    ARG(ldg__storage.stream, strlen(ldg__storage.stream));
    ARG(cfg()->dead_letter_stream, strlen(cfg()->dead_letter_stream));
    for (size_t k = 0; k < 2 * npids; k++)
        NUM();
    ARG(cfg()->group, strlen(cfg()->group));
    NUM();
    ARG(c->name, strlen(c->name));
    const char *raw = ldg_buf_head(&b->raw);
    for (size_t e = 0, end; e < b->n; e = end) {
        end = ldg_batch_entry_end(b, e);
        if (b->e[e].state == LDG_BATCH_LOST)
            continue;
        ARG(b->e[e].id, b->e[e].sid_len);
        NUM(); /* depth key index */
        NUM(); /* logs counted */
        NUM(); /* bytes counted */
        NUM(); /* p */
        NUM(); /* dead rows */
        for (size_t r = e; r < end; r++) {
            const struct ldg_batch_entry *row = &b->e[r];
            if (row->state != LDG_BATCH_DEAD)
                continue;
            const char *reason = row->reason ? row->reason : "rejected";
            ARG(row->id, strlen(row->id));
            ARG(reason, strlen(reason));
            ARG(row->raw_len ? raw + row->raw_off : "", row->raw_len);
        }
    }
#undef NUM
#undef ARG
    LDG_ASSERT(i == argc && at == base + ldg_buf_size(sb));
    c->state = LDG_STORAGE_REDIS;
    int rc = ldg_redis_commandargv(c->redis, on_acked, c, (int)argc, argv, argl);
    free(argl);
    free(argv);
    free(pids);
    return rc;
}

static void batch_done(struct ldg__storage_consumer *c)
{
    struct ldg_batch *b = &c->batch;
    size_t stored = ldg_batch_count(b, 0, b->n, LDG_BATCH_STORED);
    size_t dup = ldg_batch_count(b, 0, b->n, LDG_BATCH_DUPLICATE);
    size_t dead = ldg_batch_count(b, 0, b->n, LDG_BATCH_DEAD);
    c->stats.batches++;
    c->stats.stored += stored;
    c->stats.duplicates += dup;
    c->stats.dead += dead;
    struct ldg_stats *ws = &c->w->stats;
    ldg_stat_add(&ws->store_stored, stored);
    ldg_stat_add(&ws->store_duplicates, dup);
    ldg_stat_add(&ws->store_dead, dead);
    if (c->source != LDG_STORAGE_NEW)
        ldg_stat_add(&ws->store_redelivered, b->n);
    if (dead)
        ldg_log_warn(c->ctx, "%zu entries dead-lettered to %s", dead, cfg()->dead_letter_stream);
    if (dup && c->source != LDG_STORAGE_NEW)
        ldg_log_info(c->ctx, "%zu redelivered logs were already stored", dup);
    ldg_log_debug(c->ctx, "batch acknowledged: stored=%zu duplicates=%zu dead=%zu", stored, dup, dead);
    ldg_batch_reset(b);
    c->stored = false;
    c->lease_ms = 0;
    c->failed_attempts = 0;
}

static void on_acked(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_consumer *c = ud;
    if (gone(c))
        return;
    if (ldg_redis_noscript(reply)) {
        if (send_ack(c, true) == 0)
            return;
        reply = NULL;
    }
    if (reply_common(c, reply, "acknowledge"))
        return;
    ldg_backoff_reset(&c->backoff);
    batch_done(c);
    step(c);
}

static void on_ack_pause(uv_timer_t *t)
{
    struct ldg__storage_consumer *c = t->data;
    if (send_ack(c, false) < 0) {
        c->state = LDG_STORAGE_IDLE;
        retry_later(c);
    }
}

static void ack(struct ldg__storage_consumer *c)
{
    if (ldg__storage.debug && cfg()->debug_pause_before_ack_ms > 0) {
        ldg_log_info(c->ctx, "debug pause stage=ack entries=%zu logs=%zu", c->batch.entries, c->batch.n);
        c->state = LDG_STORAGE_REDIS;
        uv_timer_start(&c->timer, on_ack_pause, (uint64_t)cfg()->debug_pause_before_ack_ms, 0);
        return;
    }
    if (send_ack(c, false) < 0)
        retry_later(c);
}

/* ---- the loop ---------------------------------------------------------------------------------------- */

void ldg__storage_stored(struct ldg__storage_consumer *c, bool ok)
{
    uv_timer_stop(&c->deadline);
    c->state = LDG_STORAGE_IDLE;
    if (ok) {
        c->stored = true;
        ldg_backoff_reset(&c->backoff);
        step(c);
        return;
    }
    /* Outcome unknown for what was in flight: check every entry for its row next time. */
    for (size_t i = 0; i < c->batch.n; i++)
        c->batch.e[i].maybe_stored = true;
    if (c->stopping) {
        close_all(c);
        return;
    }
    retry_later(c);
}

static void step(struct ldg__storage_consumer *c)
{
    if (c->state != LDG_STORAGE_IDLE)
        return;
    if (c->stopping && (c->batch.n == 0 || !ldg_redis_connected(c->redis))) {
        close_all(c); /* a held batch stays pending: this consumer's restart or a claim takes it */
        return;
    }
    if (!c->group_ready) {
        create_group(c);
        return;
    }
    if (c->stored) {
        ack(c);
        return;
    }
    if (c->batch.n > 0 && (batch_full(c) || c->stopping || c->source != LDG_STORAGE_NEW ||
                           ldg_batch_count(&c->batch, 0, c->batch.n, LDG_BATCH_PENDING) == 0)) {
        start_write(c);
        return;
    }
    if (c->batch.n == 0 && c->reread_own) {
        /* only with an empty batch: the pending list also holds the batch's own entries */
        c->reread_own = false;
        c->source = LDG_STORAGE_OWN;
        snprintf(c->own_cursor, sizeof c->own_cursor, "0");
    }
    if (c->source == LDG_STORAGE_OWN) {
        read_own(c);
        return;
    }
    if (c->batch.n == 0 && now_ms(c) >= c->next_claim_ms) {
        claim(c);
        return;
    }
    c->source = LDG_STORAGE_NEW;
    read_new(c);
}

/* ---- lifecycle ------------------------------------------------------------------------------------------
 */

static void on_handle_closed(uv_handle_t *h)
{
    struct ldg__storage_consumer *c = h->data;
    if (--c->open_handles == 0)
        c->state = LDG_STORAGE_CLOSED;
}

static void on_redis_closed(void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (--c->open_handles == 0)
        c->state = LDG_STORAGE_CLOSED;
}

static void close_all(struct ldg__storage_consumer *c)
{
    if (c->state == LDG_STORAGE_CLOSING || c->state == LDG_STORAGE_CLOSED)
        return;
    if (c->conn)
        ldg__storage_write_abandon(c);
    c->state = LDG_STORAGE_CLOSING;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
    uv_close((uv_handle_t *)&c->stop_timer, on_handle_closed);
    struct ldg_redis *r = c->redis;
    c->redis = NULL;
    ldg_redis_close(r, on_redis_closed, c);
}

struct ldg__storage_consumer *ldg__storage_consumer_new(struct ldg_worker *w, unsigned index, unsigned shard)
{
    struct ldg__storage_consumer *c = ldg_calloc(1, sizeof *c);
    const struct ldg_config *conf = w->cfg;
    c->w = w;
    if (index == 0)
        snprintf(c->name, sizeof c->name, "%s:%ld:%u", ldg__storage.host, (long)getpid(), w->id);
    else
        snprintf(c->name, sizeof c->name, "%s:%ld:%u.%u", ldg__storage.host, (long)getpid(), w->id, index);
    char q[160];
    ldg_log_quote(q, sizeof q, c->name, strlen(c->name));
    c->redis_shard = shard;
    snprintf(c->ctx, sizeof c->ctx, "role=storage consumer=%s redis_shard=%u", q, shard);
    char rname[40];
    snprintf(rname, sizeof rname, "storage-%u.%u.s%u", w->id, index, shard);
    c->redis = ldg_redis_new(&w->loop, ldg_settings_redis_cfg(conf, shard),
                             ldg_settings_redis_password(conf, shard), rname);
    ldg_batch_init(&c->batch);
    c->rows_per_entry = ROWS_PER_ENTRY_START;
    c->bytes_per_entry = BYTES_PER_ENTRY_START;
    ldg_buf_init(&c->copy);
    ldg_buf_init(&c->groups);
    ldg_buf_init(&c->p_pids);
    ldg_buf_init(&c->p_ts);
    ldg_buf_init(&c->p_ids);
    c->tail = ldg__storage_tail_new();
    ldg_backoff_init(&c->backoff, cfg()->retry_min_ms, cfg()->retry_max_ms,
                     (uint64_t)getpid() * 7919u + w->id * 104729u + uv_hrtime());
    snprintf(c->own_cursor, sizeof c->own_cursor, "0");
    snprintf(c->claim_cursor, sizeof c->claim_cursor, "0-0");
    c->source = LDG_STORAGE_OWN;
    uv_timer_init(&w->loop, &c->timer);
    uv_timer_init(&w->loop, &c->deadline);
    uv_timer_init(&w->loop, &c->stop_timer);
    c->timer.data = c->deadline.data = c->stop_timer.data = c;
    c->open_handles = 4; /* timer, deadline, stop_timer, redis */
    c->next_claim_ms = now_ms(c) + (uint64_t)cfg()->claim_interval_ms / 2;
    c->state = LDG_STORAGE_IDLE;
    later(c, 0);
    return c;
}

static void on_stop_deadline(uv_timer_t *t)
{
    struct ldg__storage_consumer *c = t->data;
    ldg_log_warn(c->ctx, "stopping with a batch of %zu entries not acknowledged; it stays pending",
                 c->batch.n);
    close_all(c);
}

void ldg__storage_consumer_stop(struct ldg__storage_consumer *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    if (c->state == LDG_STORAGE_IDLE) {
        uv_timer_stop(&c->timer);
        step(c);
    } else if (c->state == LDG_STORAGE_REDIS && c->batch.n == 0) {
        close_all(c); /* a blocking read: its reply callback gets NULL and returns */
        return;
    }
    if (c->state == LDG_STORAGE_CLOSING || c->state == LDG_STORAGE_CLOSED)
        return;
    int64_t drain = c->w->cfg->server.drain_timeout_ms;
    uint64_t budget = drain > 1500 ? (uint64_t)drain - 1000 : (uint64_t)drain / 2;
    uv_timer_start(&c->stop_timer, on_stop_deadline, budget, 0);
}

bool ldg__storage_consumer_closed(const struct ldg__storage_consumer *c)
{
    return c->state == LDG_STORAGE_CLOSED;
}

void ldg__storage_consumer_free(struct ldg__storage_consumer *c)
{
    LDG_ASSERT(c->state == LDG_STORAGE_CLOSED);
    ldg_batch_free(&c->batch);
    ldg_buf_free(&c->copy);
    ldg_buf_free(&c->groups);
    ldg__storage_regressed_clear(c);
    ldg_buf_free(&c->p_pids);
    ldg_buf_free(&c->p_ts);
    ldg_buf_free(&c->p_ids);
    ldg__storage_tail_release(c->tail);
    ldg_buf_free(&c->args);
    free(c);
}

void ldg__storage_consumer_health(const struct ldg__storage_consumer *const *cs, size_t n,
                                  struct ldg_buf *out)
{
    static const char *const states[] = {"idle", "redis", "storing", "closing", "closed"};
    uint64_t batches = 0, stored = 0, dup = 0, dead = 0, lost = 0, failures = 0, held = 0, conflicts = 0;
    bool retrying = false;
    const char *last_error = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct ldg__storage_consumer *c = cs[i];
        batches += c->stats.batches;
        stored += c->stats.stored;
        dup += c->stats.duplicates;
        dead += c->stats.dead;
        lost += c->stats.lost;
        failures += c->stats.failures;
        conflicts += c->stats.conflicts;
        held += c->batch.n;
        retrying |= c->backoff.failures > 0;
        if (c->last_error[0])
            last_error = c->last_error;
    }
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, out);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "status");
    ldg_json_str(&jw, retrying ? "retrying" : "running");
    ldg_json_key(&jw, "consumers");
    ldg_json_arr_begin(&jw);
    for (size_t i = 0; i < n; i++) {
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "name");
        ldg_json_str(&jw, cs[i]->name);
        ldg_json_key(&jw, "redis_shard");
        ldg_json_int(&jw, cs[i]->redis_shard);
        ldg_json_key(&jw, "state");
        ldg_json_str(&jw, states[cs[i]->state]);
        ldg_json_obj_end(&jw);
    }
    ldg_json_arr_end(&jw);
#define NUM(k, v)                                                                                            \
    do {                                                                                                     \
        ldg_json_key(&jw, k);                                                                                \
        ldg_json_int(&jw, (int64_t)(v));                                                                     \
    } while (0)
    NUM("batch", held);
    NUM("batches", batches);
    NUM("stored", stored);
    NUM("duplicates", dup);
    NUM("dead_lettered", dead);
    NUM("lost", lost);
    NUM("failures", failures);
    NUM("conflicts", conflicts);
#undef NUM
    ldg_json_key(&jw, "last_error");
    if (last_error)
        ldg_json_str(&jw, last_error);
    else
        ldg_json_null(&jw);
    ldg_json_obj_end(&jw);
}
