/*
 * shardsplit.c: one logs shard at a time through the writer (see shardsplit.h).
 */
#include "roles/storage/shardsplit.h"

#include "core/worker.h"
#include "db/pgroute.h"
#include "roles/storage/consumer.h"

static int shard_of(struct ldg__storage_consumer *c, const struct ldg_batch_entry *e)
{
    return ldg_pgroute_shard_of(c->w, e->project_id);
}

/* Park every PENDING entry not of `shard`, unpark (PARKED -> PENDING) every one of it. */
static void focus(struct ldg__storage_consumer *c, int shard)
{
    c->shard = shard;
    for (size_t i = 0; i < c->batch.n; i++) {
        struct ldg_batch_entry *e = &c->batch.e[i];
        if (e->state == LDG_BATCH_PENDING && shard_of(c, e) != shard)
            e->state = LDG_BATCH_PARKED;
        else if (e->state == LDG_BATCH_PARKED && shard_of(c, e) == shard)
            e->state = LDG_BATCH_PENDING;
    }
    c->nmonths = 0; /* partitions known to exist were those of the former shard */
}

void ldg__storage_shard_begin(struct ldg__storage_consumer *c, bool keep)
{
    if (ldg_pgroute_nshards(c->w) <= 1) {
        c->shard = 0;
        return;
    }
    int first = keep ? c->shard : -1;
    for (size_t i = 0; i < c->batch.n && first < 0; i++)
        if (c->batch.e[i].state == LDG_BATCH_PENDING)
            first = shard_of(c, &c->batch.e[i]);
    if (first < 0)
        first = 0;
    focus(c, first);
}

bool ldg__storage_shard_parked(const struct ldg__storage_consumer *c)
{
    for (size_t i = 0; i < c->batch.n; i++)
        if (c->batch.e[i].state == LDG_BATCH_PARKED)
            return true;
    return false;
}

bool ldg__storage_shard_next(struct ldg__storage_consumer *c)
{
    int next = -1;
    for (size_t i = 0; i < c->batch.n && next < 0; i++)
        if (c->batch.e[i].state == LDG_BATCH_PARKED)
            next = shard_of(c, &c->batch.e[i]);
    if (next < 0)
        return false;
    focus(c, next);
    return true;
}

void ldg__storage_shard_end(struct ldg__storage_consumer *c)
{
    for (size_t i = 0; i < c->batch.n; i++)
        if (c->batch.e[i].state == LDG_BATCH_PARKED)
            c->batch.e[i].state = LDG_BATCH_PENDING;
}

struct ldg_pgpool *ldg__storage_shard_pool(struct ldg__storage_consumer *c)
{
    return ldg_pgroute_primary(c->w, c->shard);
}
