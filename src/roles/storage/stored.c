/*
 * stored.c: the stored_entries rows of a storage transaction (see stored.h).
 */
#include "roles/storage/stored.h"

#include <inttypes.h>
#include <string.h>

uint32_t ldg_stored_index(const struct ldg_batch_entry *e)
{
    const char *p = e->id + e->sid_len;
    if (*p != '/')
        return 0;
    uint32_t v = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint32_t)(*p - '0');
    return v;
}

static void put_run(struct ldg_buf *pids, struct ldg_buf *sids, struct ldg_buf *ranges, size_t k,
                    const struct ldg_batch_entry *first, uint32_t from, uint32_t to)
{
    const char *sep = k ? "," : "";
    ldg_buf_printf(pids, "%s%" PRId64, sep, first->project_id);
    ldg_buf_printf(sids, "%s%.*s", sep, (int)first->sid_len, first->id); /* digits and '-': no quoting */
    ldg_buf_printf(ranges, "%s\"[%" PRIu32 ",%" PRIu32 ")\"", sep, from, to);
}

size_t ldg_stored_params(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *pids,
                         struct ldg_buf *sids, struct ldg_buf *ranges)
{
    size_t k = 0;
    const struct ldg_batch_entry *first = NULL; /* the current run's first row */
    uint32_t from = 0, to = 0;
    ldg_buf_put(pids, "{", 1);
    ldg_buf_put(sids, "{", 1);
    ldg_buf_put(ranges, "{", 1);
    for (size_t i = lo; i < hi && i < b->n; i++) {
        const struct ldg_batch_entry *e = &b->e[i];
        if (e->state != LDG_BATCH_PENDING)
            continue;
        uint32_t idx = ldg_stored_index(e);
        if (first && idx == to && e->sid_len == first->sid_len && e->project_id == first->project_id &&
            memcmp(e->id, first->id, e->sid_len) == 0) {
            to++;
            continue;
        }
        if (first)
            put_run(pids, sids, ranges, k++, first, from, to);
        first = e;
        from = idx;
        to = idx + 1;
    }
    if (first)
        put_run(pids, sids, ranges, k++, first, from, to);
    ldg_buf_put(pids, "}", 2);
    ldg_buf_put(sids, "}", 2);
    ldg_buf_put(ranges, "}", 2);
    return k;
}
