/*
 * proxy.c: see proxy.h.
 */
#include "http/proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 16 bytes: IPv6, or IPv4 as ::ffff:a.b.c.d, so one comparison serves both. */
struct ip {
    unsigned char b[16];
};

static bool parse_ip(const char *s, size_t n, struct ip *out)
{
    char tmp[LDG_ADDR_MAX];
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    struct in_addr a4;
    if (inet_pton(AF_INET, tmp, &a4) == 1) {
        memset(out->b, 0, 10);
        out->b[10] = out->b[11] = 0xff;
        memcpy(out->b + 12, &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, tmp, out->b) == 1;
}

static bool is_v4(const struct ip *a)
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a->b, prefix, 12) == 0;
}

static void format_ip(const struct ip *a, char *out, size_t cap)
{
    if (!inet_ntop(is_v4(a) ? AF_INET : AF_INET6, is_v4(a) ? (const void *)(a->b + 12) : a->b, out,
                   (socklen_t)cap))
        snprintf(out, cap, "%s", "");
}

/* One entry "addr" or "addr/bits" into a 128-bit prefix. */
static bool parse_cidr(const char *s, size_t n, struct ip *net, unsigned *bits)
{
    const char *slash = memchr(s, '/', n);
    size_t an = slash ? (size_t)(slash - s) : n;
    if (!parse_ip(s, an, net))
        return false;
    unsigned max = is_v4(net) ? 32 : 128;
    unsigned b = max;
    if (slash) {
        size_t dn = n - an - 1;
        if (dn == 0 || dn > 3)
            return false;
        b = 0;
        for (size_t i = 0; i < dn; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9')
                return false;
            b = b * 10 + (unsigned)(c - '0');
        }
        if (b > max)
            return false;
    }
    *bits = is_v4(net) ? b + 96 : b;
    return true;
}

static bool in_prefix(const struct ip *a, const struct ip *net, unsigned bits)
{
    size_t full = bits / 8;
    if (memcmp(a->b, net->b, full) != 0)
        return false;
    unsigned rest = bits % 8;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a->b[full] & mask) == (net->b[full] & mask);
}

/* Calls fn for each trimmed entry of a comma-separated list; stops when fn returns true. */
static bool each_entry(const char *list, bool (*fn)(const char *s, size_t n, void *ud), void *ud)
{
    const char *p = list ? list : "";
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s && fn(s, (size_t)(e - s), ud))
            return true;
    }
    return false;
}

struct bad {
    char *out;
    size_t cap;
};

static bool entry_bad(const char *s, size_t n, void *ud)
{
    struct ip net;
    unsigned bits;
    if (parse_cidr(s, n, &net, &bits))
        return false;
    struct bad *b = ud;
    if (b->cap)
        snprintf(b->out, b->cap, "%.*s", (int)n, s);
    return true;
}

bool ldg_proxy_list_valid(const char *list, char *bad, size_t cap)
{
    struct bad b = {bad, cap};
    return !each_entry(list, entry_bad, &b);
}

static bool entry_matches(const char *s, size_t n, void *ud)
{
    struct ip net;
    unsigned bits;
    return parse_cidr(s, n, &net, &bits) && in_prefix(ud, &net, bits);
}

static bool trusted_ip(const char *list, const struct ip *a)
{
    return list && *list && each_entry(list, entry_matches, (void *)a);
}

bool ldg_proxy_trusted(const char *list, const char *addr, size_t n)
{
    struct ip a;
    return parse_ip(addr, n, &a) && trusted_ip(list, &a);
}

/* An address as a forwarding header writes it: optional quotes, [v6]:port, v4:port. */
static bool parse_hop(const char *s, size_t n, struct ip *out)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
        s++, n -= 2;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        return parse_ip(s + 1, (size_t)(close - s - 1), out);
    }
    const char *colon = memchr(s, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - s) - 1))
        n = (size_t)(colon - s); /* a.b.c.d:port */
    return parse_ip(s, n, out);
}

/* The `for=` value of one Forwarded element ("for=1.2.3.4;proto=https"), or false. */
static bool forwarded_for(const char *s, size_t n, const char **v, size_t *vn)
{
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        bool quoted = false;
        while (i < n && (quoted || s[i] != ';')) {
            if (s[i] == '"')
                quoted = !quoted;
            i++;
        }
        const char *p = s + st;
        size_t pn = i - st;
        while (pn && (*p == ' ' || *p == '\t'))
            p++, pn--;
        if (pn >= 4 && strncasecmp(p, "for=", 4) == 0) {
            *v = p + 4;
            *vn = pn - 4;
            return true;
        }
        i++;
    }
    return false;
}

void ldg_proxy_client(const char *list, const char *peer, struct ldg_str fwd, struct ldg_str xff, char *out,
                      size_t cap)
{
    struct ip client;
    if (!parse_ip(peer, strlen(peer), &client)) {
        snprintf(out, cap, "%s", peer);
        return;
    }
    if (trusted_ip(list, &client) && (fwd.n || xff.n)) {
        bool forwarded = fwd.n > 0;
        struct ldg_str h = forwarded ? fwd : xff;
        /* Right to left: each hop was appended by the proxy in front of the next one. */
        size_t end = h.n;
        for (;;) {
            size_t st = end;
            bool quoted = false;
            while (st > 0 && (quoted || h.p[st - 1] != ',')) {
                if (h.p[st - 1] == '"')
                    quoted = !quoted;
                st--;
            }
            const char *e = h.p + st;
            size_t en = end - st;
            const char *v = e;
            size_t vn = en;
            struct ip hop;
            if (forwarded && !forwarded_for(e, en, &v, &vn))
                break;
            if (!parse_hop(v, vn, &hop))
                break; /* unreadable ("unknown", garbage): the last good hop is the client */
            client = hop;
            if (!trusted_ip(list, &hop) || st == 0)
                break;
            end = st - 1;
        }
    }
    format_ip(&client, out, cap);
}
