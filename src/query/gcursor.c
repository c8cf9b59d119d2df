/*
 * gcursor.c: see gcursor.h.
 */
#include "query/gcursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth/apikey.h"

static const char letters[] = {'l', 'f', 'c'};

bool ldg_gsort_parse(const char *name, enum ldg_gsort *out)
{
    static const char *const names[] = {"last_seen", "first_seen", "count"};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(names); i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (enum ldg_gsort)i;
            return true;
        }
    return false;
}

size_t ldg_gcursor_encode(const struct ldg_gcursor *c, char *out)
{
    char raw[64];
    int n = snprintf(raw, sizeof raw, "g1:%c:%" PRId64 ":%" PRId64, letters[c->sort], c->key, c->id);
    return ldg_base64url_encode(raw, (size_t)n, out);
}

/* A decimal int64 (optional '-') of exactly n bytes. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n || n - i > 18)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

bool ldg_gcursor_decode(const char *text, size_t n, struct ldg_gcursor *out)
{
    unsigned char raw[64];
    size_t len;
    if (n == 0 || n > LDG_GCURSOR_MAX || ldg_base64url_decode(text, n, raw, sizeof raw, &len) < 0)
        return false;
    const char *s = (const char *)raw;
    if (len < 8 || memcmp(s, "g1:", 3) != 0 || s[4] != ':')
        return false;
    const char *sort = memchr(letters, s[3], sizeof letters);
    if (!sort)
        return false;
    const char *key = s + 5, *end = s + len;
    const char *colon = memchr(key, ':', (size_t)(end - key));
    if (!colon)
        return false;
    struct ldg_gcursor c = {.sort = (enum ldg_gsort)(sort - letters)};
    if (!parse_i64(key, (size_t)(colon - key), &c.key) ||
        !parse_i64(colon + 1, (size_t)(end - colon - 1), &c.id) || c.id < 1)
        return false;
    *out = c;
    return true;
}
