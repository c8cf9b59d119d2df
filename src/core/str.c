#include "core/str.h"

bool ldg_str_has_token(struct ldg_str v, const char *token)
{
    size_t tn = strlen(token), i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e - s == tn && strncasecmp(v.p + s, token, tn) == 0)
            return true;
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ldg_url_decode(char *dst, const char *src, size_t n, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = -1, lo = -1;
        if (src[i] == '%' && i + 2 < n) {
            hi = hexval(src[i + 1]);
            lo = hexval(src[i + 2]);
        }
        if (hi >= 0 && lo >= 0) {
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = plus_space && src[i] == '+' ? ' ' : src[i];
        }
    }
    dst[o] = '\0';
    return o;
}
