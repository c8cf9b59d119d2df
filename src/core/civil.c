#include "core/civil.h"

int64_t ldg_days_from_civil(int64_t year, uint32_t mon, uint32_t day)
{
    int64_t y = year - (mon <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * ((int64_t)mon + (mon > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void ldg_civil_from_unix(int64_t s, struct ldg_civil *c)
{
    int64_t days = s / 86400, rem = s % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    c->hour = (uint32_t)(rem / 3600);
    c->min = (uint32_t)(rem / 60 % 60);
    c->sec = (uint32_t)(rem % 60);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->day = (uint32_t)(doy - (153 * mp + 2) / 5 + 1);
    c->mon = (uint32_t)(mp < 10 ? mp + 3 : mp - 9);
    c->year = yoe + era * 400 + (c->mon <= 2);
}
