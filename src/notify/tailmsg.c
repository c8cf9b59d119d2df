/*
 * tailmsg.c: see tailmsg.h. Names carry the project in a hash tag so that every key and channel
 * of one project lives on one shard.
 */
#include "notify/tailmsg.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void ldg_tailmsg_channel(char *out, size_t cap, int64_t project_id)
{
    snprintf(out, cap, "tail:{p%" PRId64 "}", project_id);
}

void ldg_tailmsg_viewers_key(char *out, size_t cap, int64_t project_id)
{
    snprintf(out, cap, "tail:viewers:{p%" PRId64 "}", project_id);
}

int64_t ldg_tailmsg_channel_project(const char *ch, size_t n)
{
    static const char pre[] = "tail:{p";
    size_t pl = sizeof pre - 1;
    if (n < pl + 2 || memcmp(ch, pre, pl) != 0 || ch[n - 1] != '}')
        return 0;
    int64_t v = 0;
    for (size_t i = pl; i < n - 1; i++) {
        if (ch[i] < '0' || ch[i] > '9' || v > INT64_MAX / 10 - 10)
            return 0;
        v = v * 10 + (ch[i] - '0');
    }
    return v;
}

void ldg_tailmsg_begin(struct ldg_buf *b, uint64_t dropped)
{
    ldg_buf_printf(b, "%" PRIu64 "\n", dropped);
}

void ldg_tailmsg_add(struct ldg_buf *b, const char *json, size_t n)
{
    if (ldg_buf_size(b) && ldg_buf_head(b)[ldg_buf_size(b) - 1] != '\n')
        ldg_buf_put(b, "\n", 1);
    ldg_buf_put(b, json, n);
}

bool ldg_tailmsg_open(const char *msg, size_t n, uint64_t *dropped, struct ldg_str *logs)
{
    const char *nl = memchr(msg, '\n', n);
    if (!nl || nl == msg || nl - msg > 20)
        return false;
    uint64_t v = 0;
    for (const char *p = msg; p < nl; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *dropped = v;
    *logs = ldg_str_make(nl + 1, n - (size_t)(nl + 1 - msg));
    return true;
}

bool ldg_tailmsg_next(struct ldg_str *logs, struct ldg_str *log)
{
    while (logs->n) {
        const char *nl = memchr(logs->p, '\n', logs->n);
        size_t len = nl ? (size_t)(nl - logs->p) : logs->n;
        *log = ldg_str_make(logs->p, len);
        logs->p += nl ? len + 1 : len;
        logs->n -= nl ? len + 1 : len;
        if (len)
            return true;
    }
    return false;
}
