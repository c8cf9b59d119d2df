/*
 * otelrow.c: see otelrow.h.
 */
#include "ingest/otelrow.h"

#include <string.h>

static void put_be(struct ldg_buf *out, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
    ldg_buf_put(out, b, (size_t)bytes);
}

static uint64_t get_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

void ldg_otelrow_encode(enum ldg_otelrow_table t, int64_t project_id, int64_t ts_us, const char *line,
                        size_t len, struct ldg_buf *out)
{
    unsigned char head[2] = {0x94, (unsigned char)t};
    ldg_buf_put(out, head, 2);
    ldg_buf_put(out, "\xd3", 1);
    put_be(out, (uint64_t)project_id, 8);
    ldg_buf_put(out, "\xd3", 1);
    put_be(out, (uint64_t)ts_us, 8);
    ldg_buf_put(out, "\xdb", 1);
    put_be(out, (uint64_t)len, 4);
    ldg_buf_put(out, line, len);
}

int ldg_otelrow_decode(const char *p, size_t n, struct ldg_otelrow *out, size_t *used)
{
    const unsigned char *u = (const unsigned char *)p;
    *used = 0;
    if (!ldg_otelrow_is(p, n) || n < 2 + 9 + 9 + 5 || u[2] != 0xd3 || u[11] != 0xd3 || u[20] != 0xdb)
        return -1;
    uint64_t len = get_be(u + 21, 4);
    if (len > n - 25)
        return -1;
    out->table = (enum ldg_otelrow_table)u[1];
    out->project_id = (int64_t)get_be(u + 3, 8);
    out->ts_us = (int64_t)get_be(u + 12, 8);
    out->line = p + 25;
    out->len = (size_t)len;
    if (memchr(out->line, '\n', out->len)) /* one COPY line: a raw newline would start another row */
        return -1;
    *used = 25 + (size_t)len;
    return 0;
}
