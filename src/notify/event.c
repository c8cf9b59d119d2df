/*
 * event.c: see event.h.
 */
#include "notify/event.h"

#include <inttypes.h>
#include <time.h>

void ldg_event_format(struct ldg_buf *out, const char *id, size_t idlen, const char *name, const char *data,
                      size_t n)
{
    if (id) {
        ldg_buf_put(out, "id: ", 4);
        ldg_buf_put(out, id, idlen);
        ldg_buf_put(out, "\r\n", 2);
    }
    ldg_buf_puts(out, "event: ");
    ldg_buf_puts(out, name);
    ldg_buf_put(out, "\r\n", 2);
    size_t i = 0;
    do {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - data) : n;
        size_t line_end = end > i && data[end - 1] == '\r' ? end - 1 : end;
        ldg_buf_put(out, "data: ", 6);
        ldg_buf_put(out, data + i, line_end - i);
        ldg_buf_put(out, "\r\n", 2);
        i = nl ? end + 1 : n;
    } while (i < n);
    ldg_buf_put(out, "\r\n", 2);
}

void ldg_event_comment(struct ldg_buf *out, const char *text)
{
    ldg_buf_put(out, ": ", 2);
    ldg_buf_puts(out, text);
    ldg_buf_put(out, "\r\n\r\n", 4);
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool ldg_event_id_parse(const char *s, size_t n, struct ldg_event_id *out)
{
    const char *dash = s ? memchr(s, '-', n) : NULL;
    struct ldg_event_id id = {0, 0};
    if (!s)
        return false;
    if (!dash) {
        if (!parse_u64(s, n, &id.ms))
            return false;
    } else if (!parse_u64(s, (size_t)(dash - s), &id.ms) ||
               !parse_u64(dash + 1, n - (size_t)(dash - s) - 1, &id.seq)) {
        return false;
    }
    *out = id;
    return true;
}

size_t ldg_event_id_format(const struct ldg_event_id *id, char *out)
{
    return (size_t)snprintf(out, LDG_EVENT_ID_MAX + 1, "%" PRIu64 "-%" PRIu64, id->ms, id->seq);
}

int ldg_event_id_cmp(const struct ldg_event_id *a, const struct ldg_event_id *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

bool ldg_event_split(const char *msg, size_t n, struct ldg_str *id, struct ldg_event_id *parsed,
                     struct ldg_str *json)
{
    const char *nl = memchr(msg, '\n', n);
    if (!nl)
        return false;
    size_t idlen = (size_t)(nl - msg);
    if (!ldg_event_id_parse(msg, idlen, parsed) || !memchr(msg, '-', idlen))
        return false;
    if (n - idlen - 1 == 0)
        return false;
    *id = ldg_str_make(msg, idlen);
    *json = ldg_str_make(nl + 1, n - idlen - 1);
    return true;
}

bool ldg_event_note(const char *note, size_t n, struct ldg_str *name, struct ldg_str *data)
{
    if (n > 0 && note[0] == '{') {
        *name = ldg_str_make(LDG_EVENT_DEFAULT_NAME, sizeof LDG_EVENT_DEFAULT_NAME - 1);
        *data = ldg_str_make(note, n);
        return true;
    }
    size_t k = 0;
    while (k < n && k <= 32 && ((note[k] >= 'a' && note[k] <= 'z') || note[k] == '_'))
        k++;
    if (k == 0 || k > 32 || k >= n || note[k] != '\n' || k + 1 == n)
        return false;
    *name = ldg_str_make(note, k);
    *data = ldg_str_make(note + k + 1, n - k - 1);
    return true;
}

void ldg_event_time(int64_t wall_us, bool iso, char *out)
{
    time_t t = (time_t)(wall_us / 1000000);
    int us = (int)(wall_us % 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 40, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
    if (us)
        n += (size_t)snprintf(out + n, 40 - n, ".%06d", us);
    if (iso)
        snprintf(out + n, 40 - n, "Z");
}
