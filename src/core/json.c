/*
 * json.c: JSON writer over struct ldg_buf, strict body parsing on top of cJSON, typed getters.
 *
 * cJSON is lenient in ways that matter for request bodies: it passes string bytes through without
 * checking UTF-8, and it decodes \u0000 into a NUL that silently truncates the C string (a
 * password "a\u0000b" would become "a"). ldg_json_parse therefore checks the raw text first, so
 * that every string in a tree it returns is valid, NUL-free UTF-8 and the getters can count code
 * points without surprises. cJSON does reject lone surrogates in \u escapes, so escapes cannot
 * smuggle invalid UTF-8 in either.
 */
#include "core/json.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/str.h"

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence starting at s (n > 0 bytes available), or 0 if invalid.
 * Follows the table of well-formed sequences in Unicode 15, section 3.9 (table 3-7). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* over U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

int ldg_utf8_count(const char *s, size_t n, size_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t count = 0, i = 0;
    while (i < n) {
        if (i + 8 <= n && !ldg_swar_high(ldg_swar_load(p + i))) { /* 8 ASCII bytes */
            i += 8;
            count += 8;
            continue;
        }
        if (p[i] < 0x80) {
            i++;
        } else {
            size_t l = utf8_seq(p + i, n - i);
            if (!l)
                return -EINVAL;
            i += l;
        }
        count++;
    }
    *out = count;
    return 0;
}

/* ---- writer ---- */

void ldg_json_escape(struct ldg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i;
        for (uint64_t v; run + 8 <= n; run += 8) {
            v = ldg_swar_load(p + run);
            if (ldg_swar_high(v) | ldg_swar_less(v, 0x20) | ldg_swar_has(v, '"') | ldg_swar_has(v, '\\'))
                break;
        }
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            ldg_buf_put(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_seq(p + i, n - i);
            if (l) {
                ldg_buf_put(b, p + i, l);
                i += l;
            } else {
                ldg_buf_put(b, "\\ufffd", 6);
                i++;
            }
            continue;
        }
        switch (c) {
        case '"':
            ldg_buf_put(b, "\\\"", 2);
            break;
        case '\\':
            ldg_buf_put(b, "\\\\", 2);
            break;
        case '\n':
            ldg_buf_put(b, "\\n", 2);
            break;
        case '\r':
            ldg_buf_put(b, "\\r", 2);
            break;
        case '\t':
            ldg_buf_put(b, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ldg_buf_put(b, u, sizeof u);
        }
        }
        i++;
    }
}

void ldg_json_writer_init(struct ldg_json_writer *w, struct ldg_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    w->first[0] = true;
}

static void comma(struct ldg_json_writer *w)
{
    if (!w->first[w->depth])
        ldg_buf_put(w->b, ",", 1);
    w->first[w->depth] = false;
}

static bool in_object(const struct ldg_json_writer *w)
{
    return w->depth > 0 && (w->obj_mask >> w->depth & 1u);
}

/* Comma bookkeeping before a value at the current depth. */
static void before_item(struct ldg_json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    LDG_ASSERT(!in_object(w)); /* a value inside an object needs its key first */
    comma(w);
}

static void open_container(struct ldg_json_writer *w, char c)
{
    before_item(w);
    LDG_ASSERT(w->depth < LDG_JSON_MAX_DEPTH);
    w->depth++;
    w->first[w->depth] = true;
    if (c == '{')
        w->obj_mask |= 1u << w->depth;
    else
        w->obj_mask &= ~(1u << w->depth);
    ldg_buf_put(w->b, &c, 1);
}

static void close_container(struct ldg_json_writer *w, char c)
{
    LDG_ASSERT(w->depth > 0 && !w->after_key);
    w->depth--;
    ldg_buf_put(w->b, &c, 1);
}

void ldg_json_obj_begin(struct ldg_json_writer *w)
{
    open_container(w, '{');
}

void ldg_json_obj_end(struct ldg_json_writer *w)
{
    close_container(w, '}');
}

void ldg_json_arr_begin(struct ldg_json_writer *w)
{
    open_container(w, '[');
}

void ldg_json_arr_end(struct ldg_json_writer *w)
{
    close_container(w, ']');
}

void ldg_json_key(struct ldg_json_writer *w, const char *name)
{
    LDG_ASSERT(in_object(w) && !w->after_key);
    comma(w);
    ldg_buf_put(w->b, "\"", 1);
    ldg_json_escape(w->b, name, strlen(name));
    ldg_buf_put(w->b, "\":", 2);
    w->after_key = true;
}

void ldg_json_strn(struct ldg_json_writer *w, const char *s, size_t n)
{
    before_item(w);
    ldg_buf_put(w->b, "\"", 1);
    ldg_json_escape(w->b, s, n);
    ldg_buf_put(w->b, "\"", 1);
}

void ldg_json_str(struct ldg_json_writer *w, const char *s)
{
    if (!s)
        ldg_json_null(w);
    else
        ldg_json_strn(w, s, strlen(s));
}

void ldg_json_int(struct ldg_json_writer *w, int64_t v)
{
    before_item(w);
    ldg_buf_printf(w->b, "%" PRId64, v);
}

void ldg_json_double(struct ldg_json_writer *w, double v)
{
    if (!isfinite(v)) {
        ldg_json_null(w);
        return;
    }
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    before_item(w);
    ldg_buf_puts(w->b, tmp);
}

void ldg_json_bool(struct ldg_json_writer *w, bool v)
{
    before_item(w);
    ldg_buf_puts(w->b, v ? "true" : "false");
}

void ldg_json_null(struct ldg_json_writer *w)
{
    before_item(w);
    ldg_buf_put(w->b, "null", 4);
}

void ldg_json_raw(struct ldg_json_writer *w, const char *json, size_t n)
{
    before_item(w);
    ldg_buf_put(w->b, json, n);
}

/* ---- parsing ---- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Reject NUL bytes, invalid UTF-8, and the escape \u0000. Backslashes only occur inside strings in
 * valid JSON, and each starts a two-character escape (or six for \u), so skipping escape pairs
 * from left to right finds every \u0000 without tracking string state: in "\\u0000" the first
 * pair is "\\" and the rest is plain text.
 */
static bool raw_text_ok(const char *data, size_t len, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        *bad = i;
        if (c == 0)
            return false;
        if (c >= 0x80) {
            size_t l = utf8_seq(p + i, len - i);
            if (!l)
                return false;
            i += l;
            continue;
        }
        if (c == '\\' && i + 1 < len && p[i + 1] < 0x80) {
            if (p[i + 1] == 'u' && i + 6 <= len && memcmp(p + i + 2, "0000", 4) == 0)
                return false;
            i += 2;
            continue;
        }
        i++;
    }
    return true;
}

/* The arena cJSON allocates from on this thread, during ldg_json_parse_in only. */
static __thread struct ldg_arena *parse_arena;

static void *on_cjson_malloc(size_t n)
{
    return parse_arena ? ldg_arena_alloc(parse_arena, n) : malloc(n);
}

static void on_cjson_free(void *p)
{
    if (!parse_arena) /* inside a parse, only its own (arena) nodes are freed, on failure */
        free(p);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void)
{
    cJSON_Hooks h = {.malloc_fn = on_cjson_malloc, .free_fn = on_cjson_free};
    cJSON_InitHooks(&h);
}

void ldg_json_init(void)
{
    pthread_once(&hooks_once, install_hooks);
}

cJSON *ldg_json_parse_in(const char *data, size_t len, struct ldg_arena *arena, size_t *err_pos)
{
    ldg_json_init();
    parse_arena = arena;
    size_t pos;
    cJSON *root = ldg_json_parse_at(data, len, err_pos ? err_pos : &pos);
    parse_arena = NULL;
    return root;
}

void ldg_json_build_begin(struct ldg_arena *arena)
{
    ldg_json_init();
    parse_arena = arena;
}

void ldg_json_build_end(void)
{
    parse_arena = NULL;
}

cJSON *ldg_json_parse(const char *data, size_t len)
{
    size_t pos;
    return ldg_json_parse_at(data, len, &pos);
}

cJSON *ldg_json_parse_at(const char *data, size_t len, size_t *err_pos)
{
    *err_pos = 0;
    if (!data || !len)
        return NULL;
    if (!raw_text_ok(data, len, err_pos))
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        /* cJSON points return_parse_end at the failing byte (the last one when the text ended early). */
        *err_pos = end && end >= data && end <= data + len ? (size_t)(end - data) : 0;
        return NULL;
    }
    for (const char *p = end; p < data + len; p++) {
        if (!is_ws(*p)) {
            cJSON_Delete(root);
            *err_pos = (size_t)(p - data);
            return NULL;
        }
    }
    return root;
}

const cJSON *ldg_json_member(const cJSON *obj, const char *name)
{
    if (!cJSON_IsObject(obj))
        return NULL;
    const cJSON *found = NULL;
    /* The first two bytes inline: most keys differ there (if name[0] is its end, so is theirs). */
    for (const cJSON *it = obj->child; it; it = it->next)
        if (it->string && it->string[0] == name[0] &&
            (!name[0] || (it->string[1] == name[1] && strcmp(it->string, name) == 0)))
            found = it;
    return found;
}

int ldg_json_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Shared head of every getter: object check, lookup, absent/null handling. Returns 1 with *it set
 * when there is a non-null value to check, else the getter's result. */
static int lookup(const cJSON *obj, const char *name, bool required, const char *type_msg, const cJSON **it,
                  char *err, size_t errlen)
{
    if (!cJSON_IsObject(obj))
        return ldg_json_fail(err, errlen, "Request body must be a JSON object");
    *it = ldg_json_member(obj, name);
    if (!*it) {
        if (required)
            return ldg_json_fail(err, errlen, "Field '%s' is required", name);
        return 0;
    }
    if (cJSON_IsNull(*it)) {
        if (required)
            return ldg_json_fail(err, errlen, "Field '%s' must be %s", name, type_msg);
        return 0;
    }
    return 1;
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

int ldg_json_get_string(const cJSON *obj, const char *name, bool required, size_t min_chars, size_t max_chars,
                        const char **out, char *err, size_t errlen)
{
    const cJSON *it = NULL;
    *out = NULL;
    int r = lookup(obj, name, required, "a string", &it, err, errlen);
    if (r <= 0)
        return r;
    if (!cJSON_IsString(it) || !it->valuestring)
        return ldg_json_fail(err, errlen, "Field '%s' must be a string", name);
    size_t n;
    if (ldg_utf8_count(it->valuestring, strlen(it->valuestring), &n) < 0)
        return ldg_json_fail(err, errlen, "Field '%s' must be valid UTF-8", name);
    if (n < min_chars)
        return ldg_json_fail(err, errlen, "Field '%s' must be at least %zu character%s", name, min_chars,
                             plural(min_chars));
    if (max_chars && n > max_chars)
        return ldg_json_fail(err, errlen, "Field '%s' must be at most %zu character%s", name, max_chars,
                             plural(max_chars));
    *out = it->valuestring;
    return 1;
}

int ldg_json_get_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen)
{
    const cJSON *it = NULL;
    int r = lookup(obj, name, required, "an integer", &it, err, errlen);
    if (r <= 0)
        return r;
    if (!cJSON_IsNumber(it))
        return ldg_json_fail(err, errlen, "Field '%s' must be an integer", name);
    double v = it->valuedouble;
    if (!isfinite(v))
        return ldg_json_fail(err, errlen, "Field '%s' must be an integer", name);
    /* [-2^63, 2^63) is exactly representable at its ends; outside it the cast would be undefined. */
    if (v < -9223372036854775808.0)
        return ldg_json_fail(err, errlen, "Field '%s' must be at least %" PRId64, name, min);
    if (v >= 9223372036854775808.0)
        return ldg_json_fail(err, errlen, "Field '%s' must be at most %" PRId64, name, max);
    int64_t x = (int64_t)v;
    if ((double)x != v)
        return ldg_json_fail(err, errlen, "Field '%s' must be an integer", name);
    if (x < min)
        return ldg_json_fail(err, errlen, "Field '%s' must be at least %" PRId64, name, min);
    if (x > max)
        return ldg_json_fail(err, errlen, "Field '%s' must be at most %" PRId64, name, max);
    *out = x;
    return 1;
}

int ldg_json_get_bool(const cJSON *obj, const char *name, bool required, bool *out, char *err, size_t errlen)
{
    const cJSON *it = NULL;
    int r = lookup(obj, name, required, "a boolean", &it, err, errlen);
    if (r <= 0)
        return r;
    if (!cJSON_IsBool(it))
        return ldg_json_fail(err, errlen, "Field '%s' must be a boolean", name);
    *out = cJSON_IsTrue(it);
    return 1;
}
