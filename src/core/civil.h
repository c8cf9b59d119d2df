/*
 * civil.h: proleptic Gregorian calendar arithmetic in UTC, without libc (gmtime_r takes glibc's
 * time zone lock; timegm is not standard). Howard Hinnant's days_from_civil / civil_from_days.
 * Pure; any thread.
 */
#ifndef LDG_CORE_CIVIL_H
#define LDG_CORE_CIVIL_H

#include "core/common.h"

struct ldg_civil {
    int64_t year;
    uint32_t mon, day; /* 1..12, 1..31 */
    uint32_t hour, min, sec;
};

/* Days since 1970-01-01 of year-mon-day (mon 1..12, day 1..31; not checked). */
int64_t ldg_days_from_civil(int64_t year, uint32_t mon, uint32_t day);

/* The UTC calendar fields of Unix seconds s (negative: before 1970). */
void ldg_civil_from_unix(int64_t s, struct ldg_civil *out);

#endif
