/*
 * batch.c: decoded queue entries, their COPY lines and per-batch aggregates (see batch.h).
 */
#include "roles/storage/batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/civil.h"
#include "core/json.h"
#include "ingest/logcodec.h"
#include "ingest/otelrow.h"
#include "ingest/qzip.h"

#define US_PER_S INT64_C(1000000)
/* Allocations kept across resets; a bigger batch's memory is given back. */
#define KEEP_ROWS_BYTES (8u << 20)
#define KEEP_ENTRIES 4096
/* The decode arena's own chunk: most entries decode without a malloc. */
#define SCRATCH_BYTES (64u << 10)

void ldg_batch_init(struct ldg_batch *b)
{
    memset(b, 0, sizeof *b);
    ldg_buf_init(&b->rows);
    ldg_buf_init(&b->raw);
    ldg_buf_init(&b->inflated);
    ldg_arena_init(&b->keep, NULL, 0);
    b->scratch_mem = ldg_malloc(SCRATCH_BYTES);
    ldg_arena_init(&b->scratch, b->scratch_mem, SCRATCH_BYTES);
}

void ldg_batch_reset(struct ldg_batch *b)
{
    b->n = 0;
    b->entries = 0;
    b->payload_bytes = 0;
    if (b->rows.cap > KEEP_ROWS_BYTES)
        ldg_buf_free(&b->rows);
    else
        ldg_buf_reset(&b->rows);
    if (b->raw.cap > KEEP_ROWS_BYTES)
        ldg_buf_free(&b->raw);
    else
        ldg_buf_reset(&b->raw);
    if (b->inflated.cap > KEEP_ROWS_BYTES)
        ldg_buf_free(&b->inflated);
    if (b->cap > KEEP_ENTRIES) {
        free(b->e);
        b->e = NULL;
        b->cap = 0;
    }
    ldg_arena_reset(&b->keep);
    ldg_arena_reset(&b->scratch);
}

void ldg_batch_free(struct ldg_batch *b)
{
    free(b->e);
    ldg_buf_free(&b->rows);
    ldg_buf_free(&b->raw);
    ldg_buf_free(&b->inflated);
    ldg_arena_free(&b->keep);
    ldg_arena_free(&b->scratch);
    free(b->scratch_mem);
    memset(b, 0, sizeof *b);
}

/* ---- adding ---------------------------------------------------------------------------------- */

static bool valid_id(const char *id, size_t n)
{
    if (n == 0 || n >= LDG_BATCH_SID_MAX)
        return false;
    size_t dash = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (id[i] == '-') {
            if (dash++ || digits == 0)
                return false;
            digits = 0;
        } else if (id[i] >= '0' && id[i] <= '9')
            digits++;
        else
            return false;
    }
    return dash == 1 && digits > 0;
}

static int64_t parse_pid(const char *s, size_t n)
{
    if (!s || n == 0 || n > 18)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* UTC year * 12 + month - 1 of Unix µs. */
static int32_t month_of(int64_t ts_us)
{
    struct ldg_civil c;
    ldg_civil_from_unix(ts_us / US_PER_S - (ts_us % US_PER_S < 0), &c);
    return (int32_t)(c.year * 12 + c.mon - 1);
}

static const char *keep_str(struct ldg_batch *b, struct ldg_str s)
{
    return s.p ? ldg_arena_strndup(&b->keep, s.p, s.n) : NULL;
}

/* Append a row for the stream entry (sid) to b; fills its id and raw bytes, state PENDING. */
static struct ldg_batch_entry *new_row(struct ldg_batch *b, const char *sid, size_t sidlen, bool suffixed,
                                       uint32_t index, int64_t depth_pid, bool maybe_stored, const char *raw,
                                       size_t rawlen)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->e = ldg_realloc(b->e, b->cap * sizeof *b->e);
    }
    struct ldg_batch_entry *e = &b->e[b->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->id, sid, sidlen);
    if (suffixed)
        snprintf(e->id + sidlen, sizeof e->id - sidlen, "/%" PRIu32, index);
    e->sid_len = (uint8_t)sidlen;
    e->depth_pid = depth_pid;
    e->maybe_stored = maybe_stored;
    e->state = LDG_BATCH_PENDING;
    e->raw_off = ldg_buf_size(&b->raw);
    e->raw_len = rawlen;
    if (rawlen)
        ldg_buf_put(&b->raw, raw, rawlen);
    return e;
}

/* Fill row e from a span or metric point row (or make it DEAD). */
static void fill_otel_row(struct ldg_batch *b, struct ldg_batch_entry *e, const struct ldg_otelrow *r)
{
    if (r->project_id <= 0 || r->project_id != e->depth_pid) {
        e->state = LDG_BATCH_DEAD;
        e->reason = "queue entry project does not match its p field";
        return;
    }
    e->table = (uint8_t)r->table;
    e->project_id = r->project_id;
    e->ts_us = r->ts_us;
    e->month = month_of(r->ts_us);
    e->row_off = ldg_buf_size(&b->rows);
    ldg_buf_put(&b->rows, r->line, r->len);
    ldg_buf_put(&b->rows, "\t", 1);
    ldg_buf_puts(&b->rows, e->id);
    ldg_buf_put(&b->rows, "\n", 1);
    e->row_len = ldg_buf_size(&b->rows) - e->row_off;
}

/* Fill row e from its decoded log l (or make it DEAD). */
static void fill_row(struct ldg_batch *b, struct ldg_batch_entry *e, const struct ldg_log *l)
{
    if (l->project_id <= 0 || l->project_id != e->depth_pid) {
        e->state = LDG_BATCH_DEAD;
        e->reason = "queue entry project does not match its p field";
        return;
    }
    e->project_id = l->project_id;
    e->ts_us = l->ts_us;
    e->month = month_of(l->ts_us);
    e->row_off = ldg_buf_size(&b->rows);
    ldg_logcodec_copy_row(l, &b->rows);
    b->rows.len--; /* the line's '\n': the queue id column follows */
    ldg_buf_put(&b->rows, "\t", 1);
    ldg_buf_puts(&b->rows, e->id);
    ldg_buf_put(&b->rows, "\n", 1);
    e->row_len = ldg_buf_size(&b->rows) - e->row_off;
    if (l->fingerprint[0]) {
        e->fingerprint = ldg_arena_strndup(&b->keep, l->fingerprint, strlen(l->fingerprint));
        e->error_type = keep_str(b, l->error_type);
        e->error_message = keep_str(b, l->error_message);
        e->stack_trace = keep_str(b, l->stack_trace);
    }
}

/* The logs of m[0..mlen) as rows k, k + 1, ...; with blocks, a compressed block (ingest/qzip.h)
 * is inflated and its logs read in turn. A structure that breaks makes the rest one dead row. */
static void add_logs(struct ldg_batch *b, const char *id, size_t idlen, int64_t depth_pid, bool maybe_stored,
                     const char *m, size_t mlen, bool blocks, uint32_t *k)
{
    struct ldg_log l;
    size_t off = 0;
    while (off < mlen) {
        size_t used;
        int rc = -EINVAL;
        bool otel = false;
        struct ldg_otelrow orow;
        if (blocks && (unsigned char)m[off] == LDG_QZIP_MARK) {
            ldg_buf_reset(&b->inflated);
            if (ldg_qzip_unpack(m + off, mlen - off, &b->inflated, &used) == 0) {
                add_logs(b, id, idlen, depth_pid, maybe_stored, ldg_buf_head(&b->inflated),
                         ldg_buf_size(&b->inflated), false, k);
                off += used;
                continue;
            }
            used = 0; /* a broken block: the rest as one dead row */
        } else {
            ldg_arena_reset(&b->scratch);
            otel = ldg_otelrow_is(m + off, mlen - off);
            rc = otel ? ldg_otelrow_decode(m + off, mlen - off, &orow, &used)
                      : ldg_logcodec_decode_next(m + off, mlen - off, &b->scratch, &l, &used);
        }
        size_t take = used ? used : mlen - off; /* a broken structure: the rest as one dead row */
        struct ldg_batch_entry *e = new_row(b, id, idlen, true, (*k)++, depth_pid, maybe_stored, m + off, take);
        if (rc < 0) {
            e->state = LDG_BATCH_DEAD;
            e->reason = "undecodable queue entry";
        } else if (otel) {
            fill_otel_row(b, e, &orow);
        } else {
            fill_row(b, e, &l);
        }
        off += take;
    }
}

int ldg_batch_add(struct ldg_batch *b, const char *id, size_t idlen, const char *pid, size_t pidlen,
                  const char *nfield, size_t nlen, const char *m, size_t mlen, bool maybe_stored)
{
    if (!valid_id(id, idlen))
        return -EINVAL;
    int64_t depth_pid = parse_pid(pid, pidlen);
    size_t first = b->n;
    b->payload_bytes += mlen;
    b->entries++;
    struct ldg_log l;
    if (!nfield) {
        /* One log per entry (the `n` field absent): the row's queue id is the entry id. */
        struct ldg_batch_entry *e = new_row(b, id, idlen, false, 0, depth_pid, maybe_stored, m, m ? mlen : 0);
        ldg_arena_reset(&b->scratch);
        if (!m || ldg_logcodec_decode(m, mlen, &b->scratch, &l) < 0) {
            e->state = LDG_BATCH_DEAD;
            e->reason = m ? "undecodable queue entry" : "queue entry without payload";
        } else {
            fill_row(b, e, &l);
        }
    } else if (!m || mlen == 0) {
        struct ldg_batch_entry *e = new_row(b, id, idlen, true, 0, depth_pid, maybe_stored, NULL, 0);
        e->state = LDG_BATCH_DEAD;
        e->reason = "queue entry without payload";
    } else {
        /* Logs back to back, row k's queue id "<entry id>/k". */
        uint32_t k = 0;
        add_logs(b, id, idlen, depth_pid, maybe_stored, m, mlen, true, &k);
    }
    b->e[first].first = true;
    int64_t n = nfield ? parse_pid(nfield, nlen) : 1;
    b->e[first].depth_n = n > 0 && n <= UINT32_MAX ? (uint32_t)n : (uint32_t)(b->n - first);
    b->e[first].depth_bytes = mlen <= UINT32_MAX ? (uint32_t)mlen : UINT32_MAX;
    return (int)(b->n - first);
}

/* ---- entries and states ------------------------------------------------------------------- */

size_t ldg_batch_entry_end(const struct ldg_batch *b, size_t i)
{
    size_t j = i + 1;
    while (j < b->n && !b->e[j].first)
        j++;
    return j;
}

size_t ldg_batch_lose(struct ldg_batch *b, const char *sid, size_t sidlen)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct ldg_batch_entry *e = &b->e[i];
        if (e->sid_len == sidlen && memcmp(e->id, sid, sidlen) == 0) {
            e->state = LDG_BATCH_LOST;
            k++;
        }
    }
    return k;
}

/* ---- counts ------------------------------------------------------------------------------- */

size_t ldg_batch_count(const struct ldg_batch *b, size_t lo, size_t hi, enum ldg_batch_state st)
{
    size_t k = 0;
    for (size_t i = lo; i < hi; i++)
        k += b->e[i].state == st;
    return k;
}

size_t ldg_batch_count_unchecked(const struct ldg_batch *b, size_t lo, size_t hi)
{
    size_t k = 0;
    for (size_t i = lo; i < hi; i++)
        k += b->e[i].state == LDG_BATCH_PENDING && b->e[i].maybe_stored;
    return k;
}

void ldg_batch_set(struct ldg_batch *b, size_t lo, size_t hi, enum ldg_batch_state st, const char *reason)
{
    const char *r = reason ? ldg_arena_strndup(&b->keep, reason, strlen(reason)) : NULL;
    for (size_t i = lo; i < hi; i++)
        if (b->e[i].state == LDG_BATCH_PENDING) {
            b->e[i].state = st;
            b->e[i].reason = r;
        }
}

size_t ldg_batch_months(const struct ldg_batch *b, size_t lo, size_t hi, int32_t *out, size_t max)
{
    size_t k = 0, total = 0;
    int32_t last = INT32_MIN;
    for (size_t i = lo; i < hi; i++) {
        const struct ldg_batch_entry *e = &b->e[i];
        if (e->state != LDG_BATCH_PENDING || e->month == last)
            continue;
        last = e->month;
        bool seen = false;
        for (size_t j = 0; j < LDG_MIN(k, max) && !seen; j++)
            seen = out[j] == e->month;
        if (seen)
            continue;
        if (k < max) {
            /* insertion keeps out[] ascending */
            size_t j = k;
            while (j > 0 && out[j - 1] > e->month) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = e->month;
            k++;
        }
        total++;
    }
    return total;
}

void ldg_batch_kill_month(struct ldg_batch *b, size_t lo, size_t hi, int32_t month, const char *reason)
{
    const char *r = ldg_arena_strndup(&b->keep, reason, strlen(reason));
    for (size_t i = lo; i < hi; i++)
        if (b->e[i].state == LDG_BATCH_PENDING && b->e[i].month == month) {
            b->e[i].state = LDG_BATCH_DEAD;
            b->e[i].reason = r;
        }
}

void ldg_batch_month_text(int32_t month, char *out, size_t cap)
{
    int32_t y = month / 12 - (month % 12 < 0), m = month - y * 12 + 1;
    snprintf(out, cap, "%04" PRId32 "-%02" PRId32 "-15 00:00:00+00", y, m);
}

/* ---- duplicate check ---------------------------------------------------------------------------- */

size_t ldg_batch_dup_params(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *pids,
                            struct ldg_buf *ts, struct ldg_buf *ids)
{
    size_t k = 0;
    ldg_buf_put(pids, "{", 1);
    ldg_buf_put(ts, "{", 1);
    ldg_buf_put(ids, "{", 1);
    for (size_t i = lo; i < hi; i++) {
        const struct ldg_batch_entry *e = &b->e[i];
        if (e->state != LDG_BATCH_PENDING || !e->maybe_stored)
            continue;
        const char *sep = k++ ? "," : "";
        ldg_buf_printf(pids, "%s%" PRId64, sep, e->project_id);
        ldg_buf_printf(ts, "%s%" PRId64, sep, e->ts_us);
        ldg_buf_printf(ids, "%s%s", sep, e->id); /* digits, '-' and '/': no quoting needed */
    }
    ldg_buf_put(pids, "}", 2);
    ldg_buf_put(ts, "}", 2);
    ldg_buf_put(ids, "}", 2);
    return k;
}

bool ldg_batch_mark_duplicate(struct ldg_batch *b, size_t lo, size_t hi, const char *id, size_t idlen)
{
    for (size_t i = lo; i < hi; i++) {
        struct ldg_batch_entry *e = &b->e[i];
        if (e->state == LDG_BATCH_PENDING && strlen(e->id) == idlen && memcmp(e->id, id, idlen) == 0) {
            e->state = LDG_BATCH_DUPLICATE;
            return true;
        }
    }
    return false;
}

/* ---- COPY and error groups ------------------------------------------------------------------------ */

size_t ldg_batch_copy(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out)
{
    return ldg_batch_copy_table(b, lo, hi, LDG_OTELROW_LOG, out);
}

size_t ldg_batch_copy_table(const struct ldg_batch *b, size_t lo, size_t hi, int table, struct ldg_buf *out)
{
    size_t k = 0;
    const char *rows = ldg_buf_head(&b->rows);
    for (size_t i = lo; i < hi; i++) {
        const struct ldg_batch_entry *e = &b->e[i];
        if (e->state != LDG_BATCH_PENDING || e->table != table)
            continue;
        ldg_buf_put(out, rows + e->row_off, e->row_len);
        k++;
    }
    return k;
}

static int cmp_group(const void *pa, const void *pb)
{
    const struct ldg_batch_entry *a = *(const struct ldg_batch_entry *const *)pa;
    const struct ldg_batch_entry *b = *(const struct ldg_batch_entry *const *)pb;
    if (a->project_id != b->project_id)
        return a->project_id < b->project_id ? -1 : 1;
    int c = strcmp(a->fingerprint, b->fingerprint);
    if (c)
        return c;
    return a->ts_us < b->ts_us ? -1 : a->ts_us > b->ts_us;
}

static void json_opt(struct ldg_json_writer *w, const char *key, const char *s)
{
    ldg_json_key(w, key);
    if (s)
        ldg_json_str(w, s);
    else
        ldg_json_null(w);
}

size_t ldg_batch_groups_json(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out)
{
    return ldg_batch_groups_json_keys(b, lo, hi, out, NULL);
}

size_t ldg_batch_groups_json_keys(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *out,
                                  struct ldg_buf *keys)
{
    size_t k = 0;
    for (size_t i = lo; i < hi; i++)
        k += b->e[i].state == LDG_BATCH_PENDING && b->e[i].fingerprint;
    struct ldg_json_writer w, kw;
    ldg_json_writer_init(&w, out);
    ldg_json_arr_begin(&w);
    if (keys) {
        ldg_json_writer_init(&kw, keys);
        ldg_json_arr_begin(&kw);
    }
    if (k == 0) {
        ldg_json_arr_end(&w);
        if (keys)
            ldg_json_arr_end(&kw);
        return 0;
    }
    const struct ldg_batch_entry **v = ldg_malloc(k * sizeof *v);
    size_t j = 0;
    for (size_t i = lo; i < hi; i++)
        if (b->e[i].state == LDG_BATCH_PENDING && b->e[i].fingerprint)
            v[j++] = &b->e[i];
    qsort(v, k, sizeof *v, cmp_group);
    size_t groups = 0;
    for (size_t s = 0; s < k;) {
        size_t t = s + 1;
        while (t < k && v[t]->project_id == v[s]->project_id &&
               strcmp(v[t]->fingerprint, v[s]->fingerprint) == 0)
            t++;
        /* sorted by time inside the group: v[s] is the earliest, v[t - 1] the latest */
        ldg_json_obj_begin(&w);
        ldg_json_key(&w, "p");
        ldg_json_int(&w, v[s]->project_id);
        json_opt(&w, "f", v[s]->fingerprint);
        json_opt(&w, "t", v[s]->error_type);
        json_opt(&w, "m", v[s]->error_message);
        json_opt(&w, "s", v[s]->stack_trace);
        ldg_json_key(&w, "first");
        ldg_json_int(&w, v[s]->ts_us);
        ldg_json_key(&w, "last");
        ldg_json_int(&w, v[t - 1]->ts_us);
        ldg_json_key(&w, "n");
        ldg_json_int(&w, (int64_t)(t - s));
        ldg_json_obj_end(&w);
        if (keys) {
            ldg_json_obj_begin(&kw);
            ldg_json_key(&kw, "p");
            ldg_json_int(&kw, v[s]->project_id);
            json_opt(&kw, "f", v[s]->fingerprint);
            ldg_json_key(&kw, "first");
            ldg_json_int(&kw, v[s]->ts_us);
            ldg_json_obj_end(&kw);
        }
        groups++;
        s = t;
    }
    ldg_json_arr_end(&w);
    if (keys)
        ldg_json_arr_end(&kw);
    free(v);
    return groups;
}

enum ldg_batch_failure ldg_batch_classify(const char *sqlstate, const char *constraint)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return LDG_BATCH_FAIL_TRANSIENT;
    if (!constraint)
        constraint = "";
    if ((strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "23P01") == 0) && strstr(constraint, "queue_id"))
        return LDG_BATCH_FAIL_DUPLICATE;
    if (strcmp(sqlstate, "23514") == 0 && !*constraint)
        return LDG_BATCH_FAIL_NO_PARTITION;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)
        return LDG_BATCH_FAIL_DATA;
    static const char *const transient[] = {"08", "40", "53", "55", "57", "58"};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        if (strncmp(sqlstate, transient[i], 2) == 0)
            return LDG_BATCH_FAIL_TRANSIENT;
    return LDG_BATCH_FAIL_PERSISTENT;
}

void ldg_batch_recheck(struct ldg_batch *b, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi && i < b->n; i++)
        if (b->e[i].state == LDG_BATCH_PENDING)
            b->e[i].maybe_stored = true;
}
