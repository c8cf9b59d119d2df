/*
 * qzip.c: compressed runs of queued logs (see qzip.h).
 */
#include "ingest/qzip.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

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

bool ldg_qzip_pack(struct ldg_buf *mp, struct ldg_buf *scratch)
{
    size_t n = ldg_buf_size(mp);
    if (n < LDG_QZIP_MIN || n > LDG_QZIP_MAX_RAW)
        return false;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* raw deflate (no zlib header or checksum), level 1, 32 KiB window, default memory */
    if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    size_t cap = deflateBound(&z, (uLong)n);
    ldg_buf_reset(scratch);
    unsigned char *out = (unsigned char *)ldg_buf_reserve(scratch, LDG_QZIP_HEAD + cap, SIZE_MAX);
    z.next_in = (Bytef *)(uintptr_t)ldg_buf_head(mp);
    z.avail_in = (uInt)n;
    z.next_out = out + LDG_QZIP_HEAD;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t zlen = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || LDG_QZIP_HEAD + zlen >= n - n / 8) /* keep it only if it saves 1/8 */
        return false;
    out[0] = LDG_QZIP_MARK;
    put_u32(out + 1, (uint32_t)n);
    put_u32(out + 5, (uint32_t)zlen);
    ldg_buf_commit(scratch, LDG_QZIP_HEAD + zlen);
    struct ldg_buf t = *mp;
    *mp = *scratch;
    *scratch = t;
    return true;
}

int ldg_qzip_unpack(const char *p, size_t n, struct ldg_buf *out, size_t *used)
{
    const unsigned char *u = (const unsigned char *)p;
    *used = 0;
    if (n < LDG_QZIP_HEAD || u[0] != LDG_QZIP_MARK)
        return -EINVAL;
    uint32_t raw = get_u32(u + 1), zlen = get_u32(u + 5);
    if (raw == 0 || raw > LDG_QZIP_MAX_RAW || zlen > n - LDG_QZIP_HEAD)
        return -EINVAL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return -EINVAL;
    unsigned char *dst = (unsigned char *)ldg_buf_reserve(out, raw, SIZE_MAX);
    z.next_in = (Bytef *)(uintptr_t)(u + LDG_QZIP_HEAD);
    z.avail_in = zlen;
    z.next_out = dst;
    z.avail_out = raw;
    int rc = inflate(&z, Z_FINISH);
    bool ok = rc == Z_STREAM_END && z.avail_out == 0 && z.avail_in == 0;
    inflateEnd(&z);
    if (!ok)
        return -EINVAL;
    ldg_buf_commit(out, raw);
    *used = LDG_QZIP_HEAD + zlen;
    return 0;
}
