/*
 * shardmap.c: project -> shard (see shardmap.h).
 */
#include "db/shardmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

/* Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014). */
int32_t ldg_shardmap_jump(uint64_t key, int32_t buckets)
{
    int64_t b = -1, j = 0;
    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (int32_t)b;
}

static int by_project(const void *a, const void *b)
{
    const struct ldg_shardmap_override *x = a, *y = b;
    return (x->project_id > y->project_id) - (x->project_id < y->project_id);
}

int ldg_shardmap_init(struct ldg_shardmap *m, unsigned n, const char *spec, char *err, size_t cap)
{
    m->n = n;
    m->noverrides = 0;
    m->overrides = NULL;
    if (n < 1 || n > LDG_SHARDS_MAX) {
        snprintf(err, cap, "%u shards: between 1 and %d", n, LDG_SHARDS_MAX);
        return -EINVAL;
    }
    size_t items = 0;
    for (const char *s = spec; s && *s; s++)
        items += *s == ',';
    if (spec && *spec)
        m->overrides = ldg_calloc(items + 1, sizeof *m->overrides);
    const char *p = spec ? spec : "";
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        char *end;
        errno = 0;
        long long pid = strtoll(p, &end, 10);
        bool ok = !errno && end != p && pid > 0;
        unsigned long shard = 0;
        if (ok) {
            p = end;
            while (isspace((unsigned char)*p))
                p++;
            ok = *p == ':';
        }
        if (ok) {
            p++;
            while (isspace((unsigned char)*p))
                p++;
            ok = isdigit((unsigned char)*p);
            shard = strtoul(p, &end, 10);
            p = end;
        }
        while (ok && isspace((unsigned char)*p))
            p++;
        if (!ok || (*p != ',' && *p != '\0')) {
            snprintf(err, cap, "project_shards: expected project_id:shard pairs separated by commas");
            ldg_shardmap_free(m);
            return -EINVAL;
        }
        if (shard >= n) {
            snprintf(err, cap, "project_shards: project %lld on shard %lu, but there are %u shards", pid,
                     shard, n);
            ldg_shardmap_free(m);
            return -EINVAL;
        }
        m->overrides[m->noverrides++] = (struct ldg_shardmap_override){(int64_t)pid, (unsigned)shard};
        if (*p == ',')
            p++;
    }
    if (m->noverrides)
        qsort(m->overrides, m->noverrides, sizeof *m->overrides, by_project);
    for (size_t i = 1; i < m->noverrides; i++)
        if (m->overrides[i].project_id == m->overrides[i - 1].project_id) {
            snprintf(err, cap, "project_shards: project %lld listed twice",
                     (long long)m->overrides[i].project_id);
            ldg_shardmap_free(m);
            return -EINVAL;
        }
    return 0;
}

unsigned ldg_shardmap_of(const struct ldg_shardmap *m, int64_t project_id)
{
    if (m->n <= 1)
        return 0;
    if (m->noverrides) {
        struct ldg_shardmap_override key = {project_id, 0};
        const struct ldg_shardmap_override *o =
            bsearch(&key, m->overrides, m->noverrides, sizeof key, by_project);
        if (o)
            return o->shard;
    }
    return (unsigned)ldg_shardmap_jump((uint64_t)project_id, (int32_t)m->n);
}

void ldg_shardmap_free(struct ldg_shardmap *m)
{
    free(m->overrides);
    m->overrides = NULL;
    m->noverrides = 0;
}
