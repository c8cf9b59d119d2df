/*
 * logrow.c: see logrow.h.
 */
#include "db/logrow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/civil.h"

void ldg_logrow_write_ts(struct ldg_json_writer *jw, int64_t us)
{
    int64_t s = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - s * 1000000;
    struct ldg_civil c;
    ldg_civil_from_unix(s, &c);
    char out[48];
    if (frac)
        snprintf(out, sizeof out, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u.%06" PRId64 "Z", c.year, c.mon,
                 c.day, c.hour, c.min, c.sec, frac);
    else
        snprintf(out, sizeof out, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02uZ", c.year, c.mon, c.day, c.hour,
                 c.min, c.sec);
    ldg_json_str(jw, out);
}

static void write_text_col(struct ldg_json_writer *jw, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) == 0)
        ldg_json_null(jw); /* empty strings come back as null (reference Q1) */
    else
        ldg_json_strn(jw, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void ldg_logrow_write(struct ldg_json_writer *jw, const PGresult *res, int row, int first)
{
    static const char *const names[LDG_LOGROW_NCOLS] = {
        "id",         "project_id",       "timestamp",          "ingested_at",      "level",
        "log_type",   "importance",       "environment",        "release",          "message",
        "error_type", "error_message",    "stack_trace",        "attributes",       "sdk_version",
        "platform",   "platform_version", "processing_time_ms", "error_fingerprint"};
    ldg_json_obj_begin(jw);
    for (int k = 0; k < LDG_LOGROW_NCOLS; k++) {
        int c = first + k;
        ldg_json_key(jw, names[k]);
        if (k == 0 || k == 1) {
            ldg_json_int(jw, col_i64(res, row, c));
        } else if (k == 2 || k == 3) {
            if (PQgetisnull(res, row, c))
                ldg_json_null(jw);
            else
                ldg_logrow_write_ts(jw, col_i64(res, row, c));
        } else if (k == 13) {
            const char *v = PQgetvalue(res, row, c);
            if (PQgetisnull(res, row, c) || strcmp(v, "{}") == 0 || strcmp(v, "null") == 0)
                ldg_json_null(jw); /* {} comes back as null (reference Q1) */
            else
                ldg_json_raw(jw, v, (size_t)PQgetlength(res, row, c));
        } else if (k == 17) {
            if (PQgetisnull(res, row, c))
                ldg_json_null(jw);
            else
                ldg_json_int(jw, col_i64(res, row, c));
        } else {
            write_text_col(jw, res, row, c);
        }
    }
    ldg_json_obj_end(jw);
}
