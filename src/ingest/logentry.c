/*
 * logentry.c: validation and enrichment of one log object (reference §4.1–§4.3, D6, D10).
 *
 * The reference validates with pydantic and then Python code; this file reproduces the observable
 * results without either. Three places need care:
 *
 * - Timestamps. pydantic accepts more ISO 8601 shapes than clients send; we accept the RFC 3339 family
 *   (T or space, optional seconds and fraction, Z or a numeric offset) plus Unix numbers, and reject
 *   naive strings with a message instead of the reference's 500 (D6).
 *
 * - The attributes size. §4.2 limits len(json.dumps(attrs)), i.e. Python's default separators and
 *   ensure_ascii. We compute that length from the tree instead of producing the text: every string
 *   character costs what ensure_ascii makes of it, structure costs what ", " and ": " add. The one
 *   thing the tree cannot tell us is how a number was written: Python keeps `1` (int) and `1.0`
 *   (float) apart, cJSON stores both as the same double. We count integral values below 1e21 as ints
 *   (their decimal digits: right for every integer literal, including 64-bit ids that a double can
 *   only approximate) and everything else as Python's float repr (shortest round-trip). So `1.0` counts
 *   two characters short; a document would need thousands of such floats to move across the limit.
 *   Duplicate member names (Python keeps the last) are all counted, which can only over-count.
 *
 * - Frame extraction for the fingerprint. The reference uses three regexes; matching them by hand is
 *   simple once their backtracking is pinned down (see node_java_frame) and keeps the work linear in
 *   the stack trace, which may be 50,000 characters of attacker-chosen text.
 */
#include "ingest/logentry.h"

#include <math.h>

#include <openssl/evp.h>

#include "auth/apikey.h"
#include "core/civil.h"
#include "core/json.h"

#define US_PER_S INT64_C(1000000)
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the range of Python's datetime. */
#define MIN_US (INT64_C(-62135596800) * US_PER_S)
#define MAX_US (INT64_C(253402300800) * US_PER_S - 1)
/* pydantic (speedate): a Unix number larger than this in magnitude is in milliseconds. */
#define MS_THRESHOLD 2e10

static const char *const levels[] = {"debug", "info", "warning", "error", "critical"};
static const char *const log_types[] = {"console", "logger", "exception", "database", "endpoint", "custom"};
static const char *const importances[] = {"critical", "high", "standard", "low"};

/* ---------------------------------------------------------------------------------------------- */
/* Timestamps */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Exactly n digits at *p; advances *p. */
static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

enum ts_result { TS_OK, TS_BAD, TS_NAIVE };

/* `YYYY-MM-DD[(T|t| )HH:MM[:SS[(.|,)f{1,9}]](Z|z|±HH:MM|±HHMM)]`. A date alone, or a date-time without
 * the zone, is well-formed but naive. */
static enum ts_result parse_iso(const char *s, int64_t *us, int32_t *offset_min)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_us = 0;
    if (!take_digits(&p, 4, &y) || *p++ != '-' || !take_digits(&p, 2, &mo) || *p++ != '-' ||
        !take_digits(&p, 2, &d))
        return TS_BAD;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return TS_BAD;
    if (*p == '\0')
        return TS_NAIVE;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return TS_BAD;
    p++;
    if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi))
        return TS_BAD;
    if (*p == ':') {
        p++;
        if (!take_digits(&p, 2, &sec))
            return TS_BAD;
        if (*p == '.' || *p == ',') {
            p++;
            int nd = 0;
            for (; is_digit(*p); p++, nd++) {
                if (nd >= 9)
                    return TS_BAD;
                if (nd < 6)
                    frac_us = frac_us * 10 + (*p - '0');
            }
            if (nd == 0)
                return TS_BAD;
            for (; nd < 6; nd++)
                frac_us *= 10;
        }
    }
    if (h > 23 || mi > 59 || sec > 59)
        return TS_BAD;
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!take_digits(&p, 2, &oh))
            return TS_BAD;
        if (*p == ':')
            p++;
        if (!take_digits(&p, 2, &om) || oh > 23 || om > 59)
            return TS_BAD;
        off = sign * (oh * 60 + om);
    } else if (*p == '\0') {
        return TS_NAIVE;
    } else {
        return TS_BAD;
    }
    if (*p != '\0')
        return TS_BAD;
    int64_t secs = ldg_days_from_civil(y, (uint32_t)mo, (uint32_t)d) * 86400 + h * 3600 + mi * 60 + sec -
                   (int64_t)off * 60;
    *us = secs * US_PER_S + frac_us;
    *offset_min = off;
    return TS_OK;
}

/* A Unix time in seconds (milliseconds when |v| > 2e10) to µs; false when out of range. */
static bool unix_to_us(double v, int64_t *us)
{
    if (!isfinite(v))
        return false;
    double x = fabs(v) > MS_THRESHOLD ? v * 1e3 : v * 1e6;
    if (x < (double)MIN_US || x > (double)MAX_US)
        return false;
    *us = llround(x);
    return *us >= MIN_US && *us <= MAX_US;
}

/* `-?digits(.digits)?`: pydantic reads such a string as a Unix time. */
static bool is_plain_number(const char *s)
{
    const char *p = s + (*s == '-');
    if (!is_digit(*p))
        return false;
    while (is_digit(*p))
        p++;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    return *p == '\0';
}

int ldg_logentry_parse_time(const cJSON *v, int64_t *us, int32_t *offset_min, char *err, size_t errlen)
{
    static const char range_msg[] = "Field 'timestamp' is out of range (years 1 to 9999)";
    if (!v)
        return ldg_json_fail(err, errlen, "Field 'timestamp' is required");
    if (cJSON_IsNumber(v)) {
        if (!unix_to_us(v->valuedouble, us))
            return ldg_json_fail(err, errlen, "%s", range_msg);
        *offset_min = 0;
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return ldg_json_fail(err, errlen,
                             "Field 'timestamp' must be an ISO 8601 date-time string or a Unix timestamp");
    const char *s = v->valuestring;
    if (is_plain_number(s)) {
        if (!unix_to_us(strtod(s, NULL), us))
            return ldg_json_fail(err, errlen, "%s", range_msg);
        *offset_min = 0;
        return 0;
    }
    switch (parse_iso(s, us, offset_min)) {
    case TS_OK:
        if (*us < MIN_US || *us > MAX_US)
            return ldg_json_fail(err, errlen, "%s", range_msg);
        return 0;
    case TS_NAIVE:
        return ldg_json_fail(err, errlen, "Timestamp must include a timezone offset or 'Z'");
    case TS_BAD:
        break;
    }
    return ldg_json_fail(err, errlen,
                         "Field 'timestamp' must be an ISO 8601 date-time such as 2024-01-15T10:30:00Z "
                         "or a Unix timestamp");
}

/* ---------------------------------------------------------------------------------------------- */
/* Python json.dumps length */

static size_t add_cap(size_t a, size_t b)
{
    return a + b < a ? SIZE_MAX : a + b;
}

/* A string with its quotes, as ensure_ascii writes it. The input is valid UTF-8 (ldg_json_parse), so
 * the lead byte tells the sequence length: BMP characters become \uXXXX, others a surrogate pair. */
static size_t pystr_len(const char *s)
{
    size_t n = 2;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
                n += 2;
            else if (c < 0x20 || c == 0x7f)
                n += 6;
            else
                n += 1;
            p++;
        } else if (c >= 0xf0) {
            n += 12;
            p += 4;
        } else if (c >= 0xe0) {
            n += 6;
            p += 3;
        } else {
            n += 6;
            p += 2;
        }
    }
    return n;
}

static size_t pynum_len(double d)
{
    char buf[64];
    if (isnan(d))
        return 3; /* NaN */
    if (isinf(d))
        return d < 0 ? 9 : 8; /* -Infinity / Infinity */
    if (d == 0)
        return 1;
    if (d == trunc(d) && fabs(d) < 1e18) { /* exact in a uint64_t: count the digits */
        uint64_t u = (uint64_t)fabs(d);
        size_t n = d < 0;
        do {
            n++;
            u /= 10;
        } while (u);
        return n;
    }
    if (d == trunc(d) && fabs(d) < 1e21)
        return (size_t)snprintf(buf, sizeof buf, "%.0f", d);
    /* Python's float repr: the shortest %.<p>g that reads back (its exponent form matches C's).
     * A value that is not integral is below 2^53, so every p up to 15 prints the same digits as
     * the shortest form (%g drops trailing zeros): start there. */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

/* The longest repr of a double ("-2.2250738585072014e-308"): what pyjson_upper counts for a number
 * that is not an integer, without printing it. */
#define PYNUM_MAX 24

/* pyjson_len, exact when `exact`, else an upper bound that never prints a number (the common case,
 * attributes far below the limit, needs no more). */
static size_t pyjson_len(const cJSON *v, size_t cap, bool exact)
{
    if (cJSON_IsNull(v))
        return 4;
    if (cJSON_IsTrue(v))
        return 4;
    if (cJSON_IsFalse(v))
        return 5;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!exact && isfinite(d) && !(d == trunc(d) && fabs(d) < 1e21))
            return PYNUM_MAX;
        return pynum_len(d);
    }
    if (cJSON_IsString(v))
        return pystr_len(v->valuestring ? v->valuestring : "");
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        bool obj = cJSON_IsObject(v);
        size_t n = 2;
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child)
                n = add_cap(n, 2); /* ", " */
            if (obj)
                n = add_cap(n, pystr_len(c->string ? c->string : "") + 2); /* key + ": " */
            n = add_cap(n, pyjson_len(c, cap, exact));
            if (n > cap)
                return n;
        }
        return n;
    }
    return 4; /* raw/invalid items do not come out of ldg_json_parse */
}

size_t ldg_logentry_pyjson_len(const cJSON *v, size_t cap)
{
    return pyjson_len(v, cap, true);
}

bool ldg_logentry_pyjson_over(const cJSON *v, size_t cap)
{
    return pyjson_len(v, cap, false) > cap && pyjson_len(v, cap, true) > cap;
}

/* ---------------------------------------------------------------------------------------------- */
/* Fingerprint */

struct frames {
    struct ldg_str path[3], line[3];
    int n;
};

static void add_frame(struct frames *f, const char *path, size_t path_n, const char *line, size_t line_n)
{
    if (f->n < 3) {
        f->path[f->n] = ldg_str_make(path, path_n);
        f->line[f->n] = ldg_str_make(line, line_n);
        f->n++;
    }
}

static size_t skip_digits(const char *l, size_t i, size_t len)
{
    while (i < len && is_digit(l[i]))
        i++;
    return i;
}

/* Python: `File "([^"]+)", line (\d+)`, every match in the line. `[^"]+` cannot give anything back
 * (the character after it must be '"'), so each start position has at most one way to match. */
static void python_frames(const char *l, size_t len, struct frames *f)
{
    size_t i = 0;
    while (i + 6 <= len && f->n < 3) {
        const char *hit = memmem(l + i, len - i, "File \"", 6);
        if (!hit)
            return;
        i = (size_t)(hit - l);
        size_t p = i + 6, q = p;
        while (q < len && l[q] != '"')
            q++;
        if (q > p && len - q >= 8 && memcmp(l + q, "\", line ", 8) == 0) {
            size_t d = q + 8, de = skip_digits(l, d, len);
            if (de > d) {
                add_frame(f, l + p, q - p, l + d, de - d);
                i = de;
                continue;
            }
        }
        i++;
    }
}

/*
 * Node: `at .+ \(([^:]+):(\d+):\d+\)`; Java: `at .+\(([^:]+):(\d+)\)`.
 *
 * Call the part after `.+` the tail; it starts at some position k. Inside the tail nothing can
 * backtrack ([^:]+ must end at the first ':', each \d+ must be followed by a non-digit), so whether a
 * tail matches at k, and where, depends on k alone. The greedy `.+` makes a match starting at s use
 * the largest valid k with k >= s + 4 ("at " plus at least one character). Hence: find the largest
 * valid k in the line (kmax); the line has a match iff its first "at " starts at or before kmax - 4,
 * and then exactly one, since the next search starts past kmax. Scanning k downwards while tracking
 * the next ':' keeps this linear; the check after the colon depends only on the colon, so it is
 * cached.
 */
static void node_java_frame(const char *l, size_t len, bool node, struct frames *f)
{
    size_t open = node ? 2 : 1; /* tail prefix: " (" or "(" */
    size_t colon = SIZE_MAX, cached_colon = SIZE_MAX;
    size_t line_b = 0, line_e = 0;
    bool cached_ok = false;
    size_t kmax = SIZE_MAX, kpath = 0, kcolon = 0, kline_b = 0, kline_e = 0;
    for (size_t k = len; k-- > 0;) {
        if (k + open < len && l[k + open] == ':')
            colon = k + open;
        if (node ? !(l[k] == ' ' && k + 1 < len && l[k + 1] == '(') : l[k] != '(')
            continue;
        if (colon == SIZE_MAX || colon == k + open)
            continue;
        if (colon != cached_colon) {
            cached_colon = colon;
            line_b = colon + 1;
            line_e = skip_digits(l, line_b, len);
            cached_ok = line_e > line_b;
            if (cached_ok && node) {
                /* ":<col>)" after the line number */
                size_t col_e = line_e + 1 < len ? skip_digits(l, line_e + 1, len) : len;
                cached_ok =
                    line_e < len && l[line_e] == ':' && col_e > line_e + 1 && col_e < len && l[col_e] == ')';
            } else if (cached_ok) {
                cached_ok = line_e < len && l[line_e] == ')';
            }
        }
        if (cached_ok) {
            kmax = k;
            kpath = k + open;
            kcolon = colon;
            kline_b = line_b;
            kline_e = line_e;
            break;
        }
    }
    if (kmax == SIZE_MAX || kmax < 4)
        return;
    const char *at = memmem(l, kmax, "at ", 3);
    if (at && (size_t)(at - l) + 4 <= kmax)
        add_frame(f, l + kpath, kcolon - kpath, l + kline_b, kline_e - kline_b);
}

/* Try one pattern over every line; matches never span a newline (§4.3). */
static void extract(const char *st, size_t n, int pattern, struct frames *f)
{
    size_t b = 0;
    while (b <= n && f->n < 3) {
        const char *nl = memchr(st + b, '\n', n - b);
        size_t e = nl ? (size_t)(nl - st) : n;
        if (pattern == 0)
            python_frames(st + b, e - b, f);
        else
            node_java_frame(st + b, e - b, pattern == 1, f);
        if (!nl)
            break;
        b = e + 1;
    }
}

static void digest_update(EVP_MD_CTX *ctx, const void *p, size_t n)
{
    LDG_ASSERT(EVP_DigestUpdate(ctx, p, n) == 1);
}

void ldg_logentry_fingerprint(const char *error_type, const char *stack_trace, size_t st_len,
                              const char *platform, char out[LDG_LOG_FINGERPRINT_LEN + 1])
{
    struct frames f = {.n = 0};
    for (int pattern = 0; pattern < 3 && f.n == 0; pattern++)
        extract(stack_trace ? stack_trace : "", stack_trace ? st_len : 0, pattern, &f);

    const char *et = error_type && *error_type ? error_type : "UnknownError";
    const char *pl = platform && *platform ? platform : "unknown";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    LDG_ASSERT(ctx != NULL);
    LDG_ASSERT(EVP_DigestInit_ex(ctx, ldg_sha256_md(), NULL) == 1);
    digest_update(ctx, et, strlen(et));
    digest_update(ctx, ":", 1);
    for (int i = 0; i < f.n; i++) {
        if (i)
            digest_update(ctx, "|", 1);
        digest_update(ctx, f.path[i].p, f.path[i].n);
        digest_update(ctx, ":", 1);
        digest_update(ctx, f.line[i].p, f.line[i].n);
    }
    digest_update(ctx, ":", 1);
    digest_update(ctx, pl, strlen(pl));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    LDG_ASSERT(EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32);
    EVP_MD_CTX_free(ctx);
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[LDG_LOG_FINGERPRINT_LEN] = '\0';
}

/* ---------------------------------------------------------------------------------------------- */
/* The log object */

/* An enum member: absent → dflt (NULL: required); otherwise a string equal to one of vals. */
static int get_enum(const cJSON *obj, const char *name, const char *const *vals, size_t nvals,
                    const char *dflt, const char **out, char *err, size_t errlen)
{
    const cJSON *it = ldg_json_member(obj, name);
    if (!it) {
        if (!dflt)
            return ldg_json_fail(err, errlen, "Field '%s' is required", name);
        *out = dflt;
        return 0;
    }
    if (cJSON_IsString(it) && it->valuestring) {
        for (size_t i = 0; i < nvals; i++) {
            if (strcmp(it->valuestring, vals[i]) == 0) {
                *out = vals[i];
                return 0;
            }
        }
    }
    char list[128];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < nvals; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", vals[i]);
    return ldg_json_fail(err, errlen, "Field '%s' must be one of: %s", name, list);
}

static int get_str(const cJSON *obj, const char *name, size_t max_chars, struct ldg_str *out, char *err,
                   size_t errlen)
{
    const char *s = NULL;
    int r = ldg_json_get_string(obj, name, false, 0, max_chars, &s, err, errlen);
    if (r < 0)
        return r;
    *out = s ? ldg_str_make(s, strlen(s)) : ldg_str_make(NULL, 0);
    return 0;
}

/* Python truthiness of a JSON value (None, False, 0, "", [], {} are false). */
static bool truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return false;
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    if (cJSON_IsString(v))
        return v->valuestring && v->valuestring[0];
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return v->child != NULL;
    return true;
}

/* Python's `key in value` for the endpoint check: dict keys, list elements, substrings. Other types
 * raise TypeError in the reference (a 500); here they simply contain nothing. */
static bool py_contains(const cJSON *v, const char *key)
{
    if (cJSON_IsObject(v))
        return ldg_json_member(v, key) != NULL;
    if (cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c; c = c->next)
            if (cJSON_IsString(c) && c->valuestring && strcmp(c->valuestring, key) == 0)
                return true;
        return false;
    }
    if (cJSON_IsString(v))
        return v->valuestring && strstr(v->valuestring, key) != NULL;
    return false;
}

static int check_endpoint(const cJSON *attrs, char *err, size_t errlen)
{
    if (!truthy(attrs))
        return ldg_json_fail(err, errlen, "attributes field is required when log_type is 'endpoint'");
    const cJSON *ep = ldg_json_member(attrs, "endpoint");
    if (!truthy(ep))
        return ldg_json_fail(err, errlen,
                             "attributes.endpoint is required when log_type is 'endpoint'. "
                             "Must include: method, path, status_code, duration_ms");
    static const char *const required[] = {"method", "path", "status_code", "duration_ms"};
    char missing[64];
    size_t used = 0;
    missing[0] = '\0';
    for (size_t i = 0; i < LDG_ARRAY_SIZE(required); i++)
        if (!py_contains(ep, required[i]))
            used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "",
                                     required[i]);
    if (used)
        return ldg_json_fail(err, errlen, "attributes.endpoint missing required fields: %s", missing);
    return 0;
}

/* Nesting depth of v (a scalar is 0, {} or [] is 1), counting no further than `cap`: the queue
 * codec carries attributes up to LDG_JSON_MAX_DEPTH levels. */
static int json_depth(const cJSON *v, int cap)
{
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return 0;
    if (cap <= 1)
        return 1;
    int deepest = 0;
    for (const cJSON *c = v->child; c && deepest < cap - 1; c = c->next) {
        int d = json_depth(c, cap - 1);
        if (d > deepest)
            deepest = d;
    }
    return 1 + deepest;
}

int ldg_logentry_parse(const cJSON *obj, int64_t project_id, int64_t now_us, struct ldg_arena *arena,
                       struct ldg_log *out, char *err, size_t errlen)
{
    if (!cJSON_IsObject(obj))
        return ldg_json_fail(err, errlen, "Log entry must be a JSON object");
    memset(out, 0, sizeof *out);
    out->project_id = project_id;
    out->ingested_us = now_us;

    /* Layer 1: each field on its own, in the order of §4.1. */
    int r = ldg_logentry_parse_time(ldg_json_member(obj, "timestamp"), &out->ts_us, &out->ts_offset_min, err,
                                    errlen);
    if (r < 0)
        return r;
    if ((r = get_enum(obj, "level", levels, LDG_ARRAY_SIZE(levels), NULL, &out->level, err, errlen)) < 0 ||
        (r = get_enum(obj, "log_type", log_types, LDG_ARRAY_SIZE(log_types), "logger", &out->log_type, err,
                      errlen)) < 0 ||
        (r = get_enum(obj, "importance", importances, LDG_ARRAY_SIZE(importances), "standard",
                      &out->importance, err, errlen)) < 0)
        return r;
    if ((r = get_str(obj, "message", LDG_LOG_MAX_MESSAGE, &out->message, err, errlen)) < 0 ||
        (r = get_str(obj, "error_type", LDG_LOG_MAX_ERROR_TYPE, &out->error_type, err, errlen)) < 0 ||
        (r = get_str(obj, "error_message", LDG_LOG_MAX_ERROR_MESSAGE, &out->error_message, err, errlen)) <
            0 ||
        (r = get_str(obj, "stack_trace", LDG_LOG_MAX_STACK_TRACE, &out->stack_trace, err, errlen)) < 0 ||
        (r = get_str(obj, "environment", LDG_LOG_MAX_ENVIRONMENT, &out->environment, err, errlen)) < 0 ||
        (r = get_str(obj, "release", LDG_LOG_MAX_RELEASE, &out->release, err, errlen)) < 0)
        return r;
    const cJSON *attrs = ldg_json_member(obj, "attributes");
    if (cJSON_IsNull(attrs))
        attrs = NULL;
    if (attrs && !cJSON_IsObject(attrs))
        return ldg_json_fail(err, errlen, "Field 'attributes' must be an object");
    if (attrs && json_depth(attrs, LDG_JSON_MAX_DEPTH + 1) > LDG_JSON_MAX_DEPTH)
        return ldg_json_fail(err, errlen, "Field 'attributes' must not nest deeper than %d levels",
                             LDG_JSON_MAX_DEPTH);
    if ((r = get_str(obj, "sdk_version", LDG_LOG_MAX_SDK_VERSION, &out->sdk_version, err, errlen)) < 0 ||
        (r = get_str(obj, "platform", LDG_LOG_MAX_PLATFORM, &out->platform, err, errlen)) < 0 ||
        (r = get_str(obj, "platform_version", LDG_LOG_MAX_PLATFORM_VERSION, &out->platform_version, err,
                     errlen)) < 0)
        return r;

    /* Layer 2: the per-log rules of §4.2, in the reference's order. Equal to the limit is accepted. */
    if (out->ts_us > now_us + LDG_LOG_FUTURE_TOLERANCE_S * US_PER_S)
        return ldg_json_fail(err, errlen, "Timestamp cannot be more than 5 minutes in the future");
    if (attrs && ldg_logentry_pyjson_over(attrs, LDG_LOG_MAX_ATTRIBUTES_BYTES))
        return ldg_json_fail(err, errlen, "Attributes JSONB cannot exceed %d bytes",
                             LDG_LOG_MAX_ATTRIBUTES_BYTES);
    bool exception = strcmp(out->log_type, "exception") == 0;
    if (exception && out->error_type.n == 0)
        return ldg_json_fail(err, errlen, "error_type is required when log_type is 'exception'");
    /* D6: no error_message requirement; an exception with an empty str() is still recorded. */
    if (strcmp(out->log_type, "endpoint") == 0 && (r = check_endpoint(attrs, err, errlen)) < 0)
        return r;

    /* Enrichment. */
    out->attributes_tree = attrs;
    if (exception && out->stack_trace.n > 0)
        ldg_logentry_fingerprint(out->error_type.p, out->stack_trace.p, out->stack_trace.n, out->platform.p,
                                 out->fingerprint);
    return 0;
}

void ldg_logentry_attributes_text(struct ldg_log *l, struct ldg_arena *arena)
{
    if (l->attributes.p || !l->attributes_tree)
        return;
    char *text = cJSON_PrintUnformatted(l->attributes_tree);
    LDG_ASSERT(text != NULL); /* cJSON fails only on OOM */
    size_t n = strlen(text);
    l->attributes = ldg_str_make(ldg_arena_strndup(arena, text, n), n);
    cJSON_free(text);
}
