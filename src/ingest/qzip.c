/*
 * qzip.c: compressed runs of queued logs (see qzip.h).
 */
#include "ingest/qzip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ingest/lz.h"

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Compress in[0..n) into dst (room for cap bytes); the compressed size, or 0 if it failed. */
static size_t deflate_into(const unsigned char *in, size_t n, unsigned char *dst, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* raw deflate (no zlib header or checksum), level 1, 32 KiB window, default memory */
    if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t zlen = cap - z.avail_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? zlen : 0;
}

static size_t bound(enum ldg_qzip_method m, size_t n)
{
    if (m == LDG_QZIP_LZ)
        return ldg_lz_bound(n);
    return compressBound((uLong)n) + 16; /* raw deflate needs no more than zlib's stream */
}

bool ldg_qzip_pack_with(struct ldg_buf *mp, struct ldg_buf *scratch, enum ldg_qzip_method method)
{
    size_t n = ldg_buf_size(mp);
    if (method == LDG_QZIP_OFF || n < LDG_QZIP_MIN || n > LDG_QZIP_MAX_RAW)
        return false;
    size_t cap = bound(method, n);
    ldg_buf_reset(scratch);
    unsigned char *out = (unsigned char *)ldg_buf_reserve(scratch, LDG_QZIP_HEAD + cap, 0);
    const unsigned char *in = (const unsigned char *)ldg_buf_head(mp);
    size_t zlen;
    if (method == LDG_QZIP_LZ) {
        uint32_t *table = malloc(LDG_LZ_TABLE * sizeof *table);
        if (!table)
            return false;
        zlen = ldg_lz_compress(in, n, out + LDG_QZIP_HEAD, table);
        free(table);
    } else {
        zlen = deflate_into(in, n, out + LDG_QZIP_HEAD, cap);
    }
    if (zlen == 0 || LDG_QZIP_HEAD + zlen >= n - n / 8) /* keep it only if it saves an eighth */
        return false;
    out[0] = LDG_QZIP_MARK;
    out[1] = (unsigned char)method;
    put_u32(out + 2, (uint32_t)n);
    put_u32(out + 6, (uint32_t)zlen);
    ldg_buf_commit(scratch, LDG_QZIP_HEAD + zlen);
    struct ldg_buf t = *mp;
    *mp = *scratch;
    *scratch = t;
    return true;
}

bool ldg_qzip_pack(struct ldg_buf *mp, struct ldg_buf *scratch)
{
    return ldg_qzip_pack_with(mp, scratch, LDG_QZIP_DEFAULT);
}

static int inflate_into(const unsigned char *in, size_t n, unsigned char *dst, size_t raw)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return -EINVAL;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)raw;
    int rc = inflate(&z, Z_FINISH);
    bool ok = rc == Z_STREAM_END && z.avail_out == 0 && z.avail_in == 0;
    inflateEnd(&z);
    return ok ? 0 : -EINVAL;
}

int ldg_qzip_unpack(const char *p, size_t n, struct ldg_buf *out, size_t *used)
{
    const unsigned char *u = (const unsigned char *)p;
    *used = 0;
    if (n < LDG_QZIP_HEAD || u[0] != LDG_QZIP_MARK)
        return -EINVAL;
    unsigned method = u[1];
    uint32_t raw = get_u32(u + 2), zlen = get_u32(u + 6);
    if ((method != LDG_QZIP_DEFLATE && method != LDG_QZIP_LZ) || raw == 0 || raw > LDG_QZIP_MAX_RAW ||
        zlen > n - LDG_QZIP_HEAD)
        return -EINVAL;
    unsigned char *dst = (unsigned char *)ldg_buf_reserve(out, raw, 0);
    const unsigned char *src = u + LDG_QZIP_HEAD;
    int rc =
        method == LDG_QZIP_LZ ? ldg_lz_decompress(src, zlen, dst, raw) : inflate_into(src, zlen, dst, raw);
    if (rc < 0)
        return rc;
    ldg_buf_commit(out, raw);
    *used = LDG_QZIP_HEAD + zlen;
    return 0;
}
