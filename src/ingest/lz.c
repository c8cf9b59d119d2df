/*
 * lz.c: the LZ77 codec of queued logs (see lz.h).
 *
 * A sequence is: token (high nibble: literal count, low nibble: match length - 4; 15 means "more
 * bytes follow": each 255 adds 255, the first byte below 255 ends it), the literals, the match
 * offset (2 bytes, little-endian, 1..65535 back), then the match length's extra bytes. The last
 * sequence has literals only. Matches end at least 5 bytes before the end of the input and start
 * at least 12 before it (LZ4's rules, which let the decoder copy in words).
 */
#include "ingest/lz.h"

#include <errno.h>
#include <string.h>

#define MIN_MATCH 4
#define LAST_LITERALS 5
#define MF_LIMIT 12
#define MAX_OFFSET 65535

static inline uint32_t read32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t hash4(uint32_t v)
{
    return (v * 2654435761u) >> (32 - LDG_LZ_HASH_LOG);
}

static unsigned char *put_len(unsigned char *op, size_t len)
{
    while (len >= 255) {
        *op++ = 255;
        len -= 255;
    }
    *op++ = (unsigned char)len;
    return op;
}

static unsigned char *put_seq(unsigned char *op, const unsigned char *lit, size_t nlit, size_t off,
                              size_t mlen)
{
    unsigned char *token = op++;
    size_t ml = mlen - MIN_MATCH;
    *token = (unsigned char)((nlit >= 15 ? 15 : nlit) << 4 | (ml >= 15 ? 15 : ml));
    if (nlit >= 15)
        op = put_len(op, nlit - 15);
    memcpy(op, lit, nlit);
    op += nlit;
    *op++ = (unsigned char)(off & 0xff);
    *op++ = (unsigned char)(off >> 8);
    if (ml >= 15)
        op = put_len(op, ml - 15);
    return op;
}

size_t ldg_lz_compress(const unsigned char *in, size_t n, unsigned char *out, uint32_t *table)
{
    unsigned char *op = out;
    size_t anchor = 0;
    if (n > MF_LIMIT) {
        memset(table, 0, LDG_LZ_TABLE * sizeof *table);
        size_t limit = n - MF_LIMIT, mlimit = n - LAST_LITERALS;
        size_t ip = 1, misses = 0;
        table[hash4(read32(in))] = 0;
        while (ip < limit) {
            uint32_t v = read32(in + ip);
            uint32_t h = hash4(v);
            size_t ref = table[h];
            table[h] = (uint32_t)ip;
            if (ref >= ip || ip - ref > MAX_OFFSET || read32(in + ref) != v) {
                ip += 1 + (misses++ >> 5); /* skip faster through data that does not match */
                continue;
            }
            misses = 0;
            /* extend backwards over literals, then forwards */
            while (ip > anchor && ref > 0 && in[ip - 1] == in[ref - 1]) {
                ip--;
                ref--;
            }
            size_t mlen = MIN_MATCH;
            while (ip + mlen < mlimit && in[ref + mlen] == in[ip + mlen])
                mlen++;
            op = put_seq(op, in + anchor, ip - anchor, ip - ref, mlen);
            ip += mlen;
            anchor = ip;
            if (ip < limit)
                table[hash4(read32(in + ip - 2))] = (uint32_t)(ip - 2);
        }
    }
    /* the last literals */
    size_t nlit = n - anchor;
    *op++ = (unsigned char)((nlit >= 15 ? 15 : nlit) << 4);
    if (nlit >= 15)
        op = put_len(op, nlit - 15);
    memcpy(op, in + anchor, nlit);
    op += nlit;
    return (size_t)(op - out);
}

/* An extended length: false if the input ends inside it or it overflows. */
static bool get_len(const unsigned char **ip, const unsigned char *iend, size_t *len)
{
    unsigned b;
    do {
        if (*ip >= iend)
            return false;
        b = *(*ip)++;
        if (*len > SIZE_MAX / 2)
            return false;
        *len += b;
    } while (b == 255);
    return true;
}

int ldg_lz_decompress(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    const unsigned char *ip = in, *iend = in + n;
    unsigned char *op = out, *oend = out + cap;
    while (ip < iend) {
        unsigned token = *ip++;
        size_t nlit = token >> 4;
        if (nlit == 15 && !get_len(&ip, iend, &nlit))
            return -EINVAL;
        if (nlit > (size_t)(iend - ip) || nlit > (size_t)(oend - op))
            return -EINVAL;
        memcpy(op, ip, nlit);
        ip += nlit;
        op += nlit;
        if (ip == iend)
            break; /* the last sequence: literals only */
        if (iend - ip < 2)
            return -EINVAL;
        size_t off = (size_t)ip[0] | (size_t)ip[1] << 8;
        ip += 2;
        size_t mlen = token & 15;
        if (mlen == 15 && !get_len(&ip, iend, &mlen))
            return -EINVAL;
        mlen += MIN_MATCH;
        if (off == 0 || off > (size_t)(op - out) || mlen > (size_t)(oend - op))
            return -EINVAL;
        const unsigned char *ref = op - off;
        if (off >= mlen) {
            memcpy(op, ref, mlen);
        } else {
            for (size_t i = 0; i < mlen; i++) /* overlapping: a run */
                op[i] = ref[i];
        }
        op += mlen;
    }
    return op == oend ? 0 : -EINVAL;
}
