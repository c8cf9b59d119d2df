/*
 * pgshard.c: the project -> shard map, LSNs and replica lag (see pgshard.h).
 */
#include "db/pgshard.h"

#include <stdlib.h>

#include "core/alloc.h"
#include "db/shardmap.h"

static int cmp_pin(const void *a, const void *b)
{
    const struct ldg_pgshard_pin *x = a, *y = b;
    return x->project < y->project ? -1 : x->project > y->project;
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int parse_pin(const char *p, const char *end, struct ldg_pgshard_pin *out)
{
    char tmp[48];
    size_t len = (size_t)(end - p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *e;
    errno = 0;
    long long project = strtoll(tmp, &e, 10);
    if (errno || e == tmp || *e != ':' || project < 1)
        return -EINVAL;
    const char *s = skip_space(e + 1);
    long shard = strtol(s, &e, 10);
    if (errno || e == s || *skip_space(e) != '\0' || shard < 0)
        return -EINVAL;
    out->project = project;
    out->shard = (int)LDG_MIN(shard, (long)INT32_MAX);
    return 0;
}

int ldg_pgshard_map_parse(struct ldg_pgshard_map *m, const char *list, int nshards, char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    m->nshards = nshards;
    size_t cap = 0;
    const char *p = list ? list : "";
    while (*(p = skip_space(p))) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        struct ldg_pgshard_pin pin;
        if (parse_pin(p, end, &pin) < 0) {
            snprintf(why, whylen, "'%.*s' is not project:shard", (int)LDG_MIN((size_t)(end - p), (size_t)40),
                     p);
            goto fail;
        }
        if (pin.shard >= nshards) {
            snprintf(why, whylen, "project %lld: shard %d does not exist (%d shard%s configured)",
                     (long long)pin.project, pin.shard, nshards, nshards == 1 ? "" : "s");
            goto fail;
        }
        if (m->npins == LDG_PG_MAX_PINS) {
            snprintf(why, whylen, "more than %d pinned projects", LDG_PG_MAX_PINS);
            goto fail;
        }
        if (m->npins == cap) {
            cap = cap ? cap * 2 : 16;
            m->pins = ldg_realloc(m->pins, cap * sizeof *m->pins);
        }
        m->pins[m->npins++] = pin;
        p = *end ? end + 1 : end;
    }
    if (m->npins)
        qsort(m->pins, m->npins, sizeof *m->pins, cmp_pin);
    for (size_t i = 1; i < m->npins; i++)
        if (m->pins[i].project == m->pins[i - 1].project) {
            snprintf(why, whylen, "project %lld is pinned twice", (long long)m->pins[i].project);
            goto fail;
        }
    return 0;
fail:
    ldg_pgshard_map_free(m);
    return -EINVAL;
}

void ldg_pgshard_map_free(struct ldg_pgshard_map *m)
{
    free(m->pins);
    m->pins = NULL;
    m->npins = 0;
}

int ldg_pgshard_of(const struct ldg_pgshard_map *m, int64_t project)
{
    if (m->nshards <= 1)
        return 0;
    size_t lo = 0, hi = m->npins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->pins[mid].project == project)
            return m->pins[mid].shard;
        if (m->pins[mid].project < project)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)ldg_shardmap_jump((uint64_t)project, (int32_t)m->nshards);
}

static int hex32(const char *p, const char *end, uint64_t *out)
{
    if (p == end || end - p > 8)
        return -EINVAL;
    uint64_t v = 0;
    for (; p < end; p++) {
        int d = (*p >= '0' && *p <= '9')   ? *p - '0'
                : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                           : -1;
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int ldg_pgshard_lsn_parse(const char *s, uint64_t *out)
{
    if (!s)
        return -EINVAL;
    const char *slash = strchr(s, '/');
    uint64_t hi, lo;
    if (!slash || hex32(s, slash, &hi) < 0 || hex32(slash + 1, slash + 1 + strlen(slash + 1), &lo) < 0)
        return -EINVAL;
    *out = hi << 32 | lo;
    return 0;
}

void ldg_pglag_note_primary(struct ldg_pglag *l, uint64_t now_ms, uint64_t lsn)
{
    /* An unchanged LSN adds nothing: keeping the first time it was seen is what the estimate needs. */
    if (l->n) {
        size_t last = (l->head + LDG_PGLAG_SAMPLES - 1) % LDG_PGLAG_SAMPLES;
        if (l->lsn[last] == lsn)
            return;
    }
    l->at_ms[l->head] = now_ms;
    l->lsn[l->head] = lsn;
    l->head = (l->head + 1) % LDG_PGLAG_SAMPLES;
    if (l->n < LDG_PGLAG_SAMPLES)
        l->n++;
}

int64_t ldg_pglag_estimate(const struct ldg_pglag *l, uint64_t now_ms, uint64_t replayed)
{
    if (l->n == 0)
        return -1;
    /* Walk from the newest sample back: the replica is late by the age of the oldest sample
     * above what it replayed (WAL it has not applied existed since then). */
    uint64_t oldest_above = 0;
    bool above = false;
    for (size_t k = 0; k < l->n; k++) {
        size_t i = (l->head + LDG_PGLAG_SAMPLES - 1 - k) % LDG_PGLAG_SAMPLES;
        if (l->lsn[i] <= replayed)
            break;
        oldest_above = l->at_ms[i];
        above = true;
    }
    if (!above)
        return 0;
    return now_ms > oldest_above ? (int64_t)(now_ms - oldest_above) : 0;
}
