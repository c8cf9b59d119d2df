#include "core/stats.h"

#include "core/alloc.h"

const uint64_t ldg_stats_lat_bounds_us[LDG_STATS_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

void ldg_stats_init(struct ldg_stats *s, size_t nroutes)
{
    memset(s, 0, sizeof *s);
    s->nroutes = nroutes;
    s->by_route = ldg_calloc((nroutes + 1) * 5, sizeof *s->by_route);
}

void ldg_stats_free(struct ldg_stats *s)
{
    free(s->by_route);
    s->by_route = NULL;
}

void ldg_stats_request(struct ldg_stats *s, size_t route, int status, uint64_t lat_us)
{
    int cls = status / 100 - 1;
    if (cls < 0 || cls > 4)
        cls = 4;
    if (route > s->nroutes)
        route = s->nroutes;
    ldg_stat_add(&s->by_route[route * 5 + (size_t)cls], 1);
    size_t b = 0;
    while (b < LDG_STATS_LAT_BUCKETS && lat_us > ldg_stats_lat_bounds_us[b])
        b++;
    ldg_stat_add(&s->lat[b], 1);
    ldg_stat_add(&s->lat_sum_us, lat_us);
    ldg_stat_add(&s->requests, 1);
}
