#include "core/log.h"

#include <stdarg.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum ldg_log_level ldg_log_min_level = LDG_LOG_INFO;
static enum ldg_log_format log_format = LDG_LOG_LOGFMT;
static _Thread_local int log_worker = -1;
static char log_node[96]; /* " node=<quoted name>" or "" */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ldg_log_configure(enum ldg_log_level level, enum ldg_log_format format)
{
    ldg_log_min_level = level;
    log_format = format;
}

void ldg_log_set_node(const char *name)
{
    char q[80];
    if (!name || !*name) {
        log_node[0] = '\0';
        return;
    }
    ldg_log_quote(q, sizeof q, name, strlen(name));
    /* a plain name needs no quotes (logfmt) */
    bool plain = true;
    for (const char *c = name; *c && plain; c++)
        plain = *c > ' ' && *c != '"' && *c != '=' && *c != '\\' && (unsigned char)*c < 0x7f;
    snprintf(log_node, sizeof log_node, " node=%.*s", plain ? (int)strlen(name) : (int)strlen(q),
             plain ? name : q);
}

void ldg_log_set_worker(int id)
{
    log_worker = id;
}

size_t ldg_log_quote(char *out, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap < 3)
        return 0;
    out[o++] = '"';
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

static size_t format_prefix(char *buf, size_t cap, enum ldg_log_level level)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char wid[16];
    if (log_worker < 0)
        snprintf(wid, sizeof wid, "main");
    else
        snprintf(wid, sizeof wid, "%d", log_worker);
    int n;
    if (log_format == LDG_LOG_LOGFMT)
        n = snprintf(buf, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s%s worker=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level], log_node, wid);
    else
        n = snprintf(buf, cap, "%02d:%02d:%02d.%03d %-5s [%s]", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level], wid);
    return n < 0 ? 0 : LDG_MIN((size_t)n, cap - 1);
}

static void emit(char *buf, size_t n, size_t cap)
{
    if (n >= cap - 1)
        n = cap - 2;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

void ldg_log_write(enum ldg_log_level level, const char *ctx, const char *fmt, ...)
{
    char buf[4096], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int mn = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (mn < 0)
        mn = 0;
    size_t mlen = LDG_MIN((size_t)mn, sizeof msg - 1);

    size_t n = format_prefix(buf, sizeof buf, level);
    if (ctx && *ctx)
        n += (size_t)snprintf(buf + n, sizeof buf - n, " %s", ctx);
    n = LDG_MIN(n, sizeof buf - 1);
    if (log_format == LDG_LOG_LOGFMT) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, " msg=");
        n = LDG_MIN(n, sizeof buf - 1);
        n += ldg_log_quote(buf + n, sizeof buf - n, msg, mlen);
    } else {
        n += (size_t)snprintf(buf + n, sizeof buf - n, " %.*s", (int)mlen, msg);
    }
    emit(buf, LDG_MIN(n, sizeof buf - 1), sizeof buf);
}

void ldg_log_raw(enum ldg_log_level level, const char *fields)
{
    char buf[4096];
    size_t n = format_prefix(buf, sizeof buf, level);
    n += (size_t)snprintf(buf + n, sizeof buf - n, " %s", fields);
    emit(buf, LDG_MIN(n, sizeof buf - 1), sizeof buf);
}

void ldg_panic_at(const char *file, int line, const char *fmt, ...)
{
    char msg[1024], ctx[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ctx, sizeof ctx, "src=%s:%d", file, line);
    ldg_log_write(LDG_LOG_ERROR, ctx, "panic: %s", msg);
    abort();
}
