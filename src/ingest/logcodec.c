/*
 * logcodec.c: queue (MessagePack), COPY and notification forms of a log entry.
 *
 * Encoding uses libmsgpack's packer. Decoding does not use libmsgpack's unpacker: that unpacker
 * allocates arrays of the size a header *claims* before the bytes are there (a 5-byte map32 header
 * asks its zone for 2^32 pairs), which turns a corrupt queue entry into a huge allocation or, under
 * ASan, an abort. Queue entries are small and flat, so a cursor over the bytes is simpler and safe:
 * every count is checked against the bytes left (each element needs at least one byte), nesting is
 * bounded by LDG_LOGCODEC_MAX_DEPTH, and nothing is allocated except the copies in the arena.
 */
#include "ingest/logcodec.h"

#include <inttypes.h>
#include <math.h>
#include <msgpack.h>

#include "core/civil.h"
#include "core/str.h"

#define US_PER_S INT64_C(1000000)
#define NOTIFY_MESSAGE_CHARS 500

/* ---- time rendering ---- */

/* Split Unix µs into whole seconds (floored, so times before 1970 work) and µs in [0, 1e6). */
static void split_us(int64_t ts_us, int64_t *s, int32_t *us)
{
    int64_t q = ts_us / US_PER_S, r = ts_us % US_PER_S;
    if (r < 0) {
        r += US_PER_S;
        q--;
    }
    *s = q;
    *us = (int32_t)r;
}

/* Write v as exactly w decimal digits (zero-padded) at p; returns p + w. */
static char *put_digits(char *p, uint32_t v, int w)
{
    for (int i = w - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + w;
}

/* `YYYY-MM-DD<sep>HH:MM:SS` at p (years outside 0..9999 through printf); returns the end. */
static char *put_datetime(char *p, const struct ldg_civil *c, char sep)
{
    if (c->year >= 0 && c->year <= 9999)
        p = put_digits(p, (uint32_t)c->year, 4);
    else
        p += snprintf(p, 24, "%04" PRId64, c->year);
    *p++ = '-';
    p = put_digits(p, c->mon, 2);
    *p++ = '-';
    p = put_digits(p, c->day, 2);
    *p++ = sep;
    p = put_digits(p, c->hour, 2);
    *p++ = ':';
    p = put_digits(p, c->min, 2);
    *p++ = ':';
    return put_digits(p, c->sec, 2);
}

void ldg_logcodec_isoformat(int64_t ts_us, int32_t offset_min, bool utc_z, struct ldg_buf *out)
{
    int64_t s;
    int32_t us;
    split_us(ts_us, &s, &us);
    struct ldg_civil c;
    ldg_civil_from_unix(s + (int64_t)offset_min * 60, &c);
    char buf[64], *p = put_datetime(buf, &c, 'T');
    if (us) {
        *p++ = '.';
        p = put_digits(p, (uint32_t)us, 6);
    }
    if (offset_min == 0 && utc_z) {
        *p++ = 'Z';
    } else {
        uint32_t a = (uint32_t)(offset_min < 0 ? -offset_min : offset_min);
        *p++ = offset_min < 0 ? '-' : '+';
        p = put_digits(p, a / 60 % 100, 2);
        *p++ = ':';
        p = put_digits(p, a % 60, 2);
    }
    ldg_buf_put(out, buf, (size_t)(p - buf));
}

/* `YYYY-MM-DD HH:MM:SS.ffffff+00`: fixed width, what PostgreSQL's COPY input reads fastest. */
static void copy_time(int64_t ts_us, struct ldg_buf *out)
{
    int64_t s;
    int32_t us;
    split_us(ts_us, &s, &us);
    struct ldg_civil c;
    ldg_civil_from_unix(s, &c);
    char buf[64], *p = put_datetime(buf, &c, ' ');
    *p++ = '.';
    p = put_digits(p, (uint32_t)us, 6);
    memcpy(p, "+00", 3);
    ldg_buf_put(out, buf, (size_t)(p + 3 - buf));
}

/* ---- encode ---- */

static int on_pack_write(void *data, const char *buf, size_t len)
{
    ldg_buf_put(data, buf, len);
    return 0;
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    pack_cstr(pk, k, strlen(k));
}

static void pack_opt(msgpack_packer *pk, const char *key, const char *s, size_t n)
{
    pack_key(pk, key);
    if (s)
        pack_cstr(pk, s, n);
    else
        msgpack_pack_nil(pk);
}

static void pack_time(msgpack_packer *pk, struct ldg_buf *tmp, int64_t ts_us, int32_t offset_min)
{
    ldg_buf_reset(tmp);
    ldg_logcodec_isoformat(ts_us, offset_min, false, tmp);
    pack_cstr(pk, ldg_buf_head(tmp), ldg_buf_size(tmp));
}

/* An integral double in int64 range? (2^63 itself is not: it rounds up from INT64_MAX.) */
static bool double_is_int64(double v, int64_t *out)
{
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != trunc(v))
        return false;
    *out = (int64_t)v;
    return true;
}

static int pack_json(msgpack_packer *pk, const cJSON *j, int depth)
{
    int64_t iv;
    if (cJSON_IsNull(j)) {
        msgpack_pack_nil(pk);
    } else if (cJSON_IsTrue(j)) {
        msgpack_pack_true(pk);
    } else if (cJSON_IsFalse(j)) {
        msgpack_pack_false(pk);
    } else if (cJSON_IsNumber(j)) {
        if (double_is_int64(j->valuedouble, &iv))
            msgpack_pack_int64(pk, iv);
        else
            msgpack_pack_double(pk, j->valuedouble);
    } else if (cJSON_IsString(j)) {
        pack_cstr(pk, j->valuestring, strlen(j->valuestring));
    } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        if (depth + 1 > LDG_LOGCODEC_MAX_DEPTH)
            return -EINVAL;
        size_t n = 0;
        for (const cJSON *c = j->child; c; c = c->next)
            n++;
        if (cJSON_IsArray(j))
            msgpack_pack_array(pk, n);
        else
            msgpack_pack_map(pk, n);
        for (const cJSON *c = j->child; c; c = c->next) {
            if (cJSON_IsObject(j))
                pack_cstr(pk, c->string, strlen(c->string));
            int rc = pack_json(pk, c, depth + 1);
            if (rc)
                return rc;
        }
    } else {
        return -EINVAL; /* cJSON_Raw / invalid: never produced by the parser */
    }
    return 0;
}

static void pack_val(msgpack_packer *pk, const char *s, size_t n)
{
    if (s)
        pack_cstr(pk, s, n);
    else
        msgpack_pack_nil(pk);
}

/* Format 2: [2, project_id, ts_us, ts_offset_min, ingested_us, level, log_type, importance,
 * environment, release, message, error_type, error_message, stack_trace, attributes, sdk_version,
 * platform, platform_version, error_fingerprint]. */
#define ARRAY_FORMAT 2
#define ARRAY_LEN 19

static int pack_array(msgpack_packer *pk, const struct ldg_log *l, const cJSON *attrs)
{
    msgpack_pack_array(pk, ARRAY_LEN);
    msgpack_pack_int(pk, ARRAY_FORMAT);
    msgpack_pack_int64(pk, l->project_id);
    msgpack_pack_int64(pk, l->ts_us);
    msgpack_pack_int32(pk, l->ts_offset_min);
    msgpack_pack_int64(pk, l->ingested_us);
#define VAL(s, n) pack_val(pk, (s), (n))
    VAL(l->level, l->level ? strlen(l->level) : 0);
    VAL(l->log_type, l->log_type ? strlen(l->log_type) : 0);
    VAL(l->importance, l->importance ? strlen(l->importance) : 0);
    VAL(l->environment.p, l->environment.n);
    VAL(l->release.p, l->release.n);
    VAL(l->message.p, l->message.n);
    VAL(l->error_type.p, l->error_type.n);
    VAL(l->error_message.p, l->error_message.n);
    VAL(l->stack_trace.p, l->stack_trace.n);
    int rc = 0;
    if (attrs)
        rc = pack_json(pk, attrs, 0);
    else
        msgpack_pack_nil(pk);
    VAL(l->sdk_version.p, l->sdk_version.n);
    VAL(l->platform.p, l->platform.n);
    VAL(l->platform_version.p, l->platform_version.n);
    VAL(l->fingerprint[0] ? l->fingerprint : NULL, strlen(l->fingerprint));
#undef VAL
    return rc;
}

int ldg_logcodec_encode(const struct ldg_log *l, struct ldg_buf *out)
{
    return ldg_logcodec_encode_as(l, LDG_LOGCODEC_ARRAY, out);
}

int ldg_logcodec_encode_as(const struct ldg_log *l, enum ldg_logcodec_format format, struct ldg_buf *out)
{
    /* Parse attributes first so a bad text leaves out untouched without any rollback. */
    cJSON *parsed = NULL;
    const cJSON *attrs = l->attributes_tree;
    if (attrs && !cJSON_IsObject(attrs))
        return -EINVAL;
    if (!attrs && l->attributes.p) {
        attrs = parsed = ldg_json_parse(l->attributes.p, l->attributes.n);
        if (!cJSON_IsObject(attrs)) {
            cJSON_Delete(parsed);
            return -EINVAL;
        }
    }
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, on_pack_write);
    if (format == LDG_LOGCODEC_ARRAY) {
        int arc = pack_array(&pk, l, attrs);
        cJSON_Delete(parsed);
        if (arc)
            out->len = start;
        return arc;
    }
    struct ldg_buf tmp;
    ldg_buf_init(&tmp);

    msgpack_pack_map(&pk, 19);
    pack_key(&pk, "project_id");
    msgpack_pack_int64(&pk, l->project_id);
    pack_key(&pk, "timestamp");
    pack_time(&pk, &tmp, l->ts_us, l->ts_offset_min);
    pack_key(&pk, "ingested_at");
    pack_time(&pk, &tmp, l->ingested_us, 0);
    pack_opt(&pk, "level", l->level, l->level ? strlen(l->level) : 0);
    pack_opt(&pk, "log_type", l->log_type, l->log_type ? strlen(l->log_type) : 0);
    pack_opt(&pk, "importance", l->importance, l->importance ? strlen(l->importance) : 0);
    pack_opt(&pk, "environment", l->environment.p, l->environment.n);
    pack_opt(&pk, "release", l->release.p, l->release.n);
    pack_opt(&pk, "message", l->message.p, l->message.n);
    pack_opt(&pk, "error_type", l->error_type.p, l->error_type.n);
    pack_opt(&pk, "error_message", l->error_message.p, l->error_message.n);
    pack_opt(&pk, "stack_trace", l->stack_trace.p, l->stack_trace.n);
    pack_key(&pk, "attributes");
    int rc = 0;
    if (attrs)
        rc = pack_json(&pk, attrs, 0);
    else
        msgpack_pack_nil(&pk);
    pack_opt(&pk, "sdk_version", l->sdk_version.p, l->sdk_version.n);
    pack_opt(&pk, "platform", l->platform.p, l->platform.n);
    pack_opt(&pk, "platform_version", l->platform_version.p, l->platform_version.n);
    pack_opt(&pk, "error_fingerprint", l->fingerprint[0] ? l->fingerprint : NULL, strlen(l->fingerprint));
    pack_key(&pk, "ts_us");
    msgpack_pack_int64(&pk, l->ts_us);
    pack_key(&pk, "ingested_us");
    msgpack_pack_int64(&pk, l->ingested_us);

    ldg_buf_free(&tmp);
    cJSON_Delete(parsed);
    if (rc)
        out->len = start;
    return rc;
}

/* ---- decode ---- */

enum mp_type { MP_NIL, MP_BOOL, MP_UINT, MP_INT, MP_FLOAT, MP_STR, MP_ARRAY, MP_MAP };

struct mp_item {
    enum mp_type type;
    bool b;
    uint64_t u;    /* MP_UINT */
    int64_t i;     /* MP_INT (always negative) */
    double d;      /* MP_FLOAT */
    const char *s; /* MP_STR: borrowed from the input */
    uint32_t n;    /* MP_STR bytes; MP_ARRAY elements; MP_MAP pairs */
};

struct reader {
    const unsigned char *p, *end;
};

static bool take(struct reader *r, size_t n, const unsigned char **at)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    *at = r->p;
    r->p += n;
    return true;
}

static bool be(struct reader *r, size_t n, uint64_t *v)
{
    const unsigned char *a;
    if (!take(r, n, &a))
        return false;
    uint64_t x = 0;
    for (size_t k = 0; k < n; k++)
        x = x << 8 | a[k];
    *v = x;
    return true;
}

/* Read one item header; strings are read whole, containers only up to their count. bin, ext and
 * the reserved 0xc1 are rejected: nothing we write uses them. */
static int read_item(struct reader *r, struct mp_item *it)
{
    const unsigned char *a;
    uint64_t v;
    if (!take(r, 1, &a))
        return -EINVAL;
    unsigned c = a[0];
    size_t w;
    if (c <= 0x7f) {
        it->type = MP_UINT;
        it->u = c;
        return 0;
    }
    if (c >= 0xe0) {
        it->type = MP_INT;
        it->i = (int8_t)c;
        return 0;
    }
    if ((c & 0xf0) == 0x80 || (c & 0xf0) == 0x90) {
        it->type = (c & 0xf0) == 0x80 ? MP_MAP : MP_ARRAY;
        it->n = c & 0x0f;
        goto count;
    }
    if ((c & 0xe0) == 0xa0) {
        it->n = c & 0x1f;
        goto str;
    }
    switch (c) {
    case 0xc0:
        it->type = MP_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        it->type = MP_BOOL;
        it->b = c == 0xc3;
        return 0;
    case 0xca:
    case 0xcb:
        if (!be(r, c == 0xca ? 4 : 8, &v))
            return -EINVAL;
        it->type = MP_FLOAT;
        if (c == 0xca) {
            uint32_t bits = (uint32_t)v;
            float f;
            memcpy(&f, &bits, sizeof f);
            it->d = f;
        } else {
            memcpy(&it->d, &v, sizeof it->d);
        }
        return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (!be(r, (size_t)1 << (c - 0xcc), &v))
            return -EINVAL;
        it->type = MP_UINT;
        it->u = v;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        w = (size_t)1 << (c - 0xd0);
        if (!be(r, w, &v))
            return -EINVAL;
        /* sign-extend the w-byte two's complement value */
        if (w < 8 && (v >> (w * 8 - 1) & 1))
            v |= ~UINT64_C(0) << (w * 8);
        it->i = (int64_t)v;
        if (it->i >= 0) {
            it->type = MP_UINT;
            it->u = (uint64_t)it->i;
        } else {
            it->type = MP_INT;
        }
        return 0;
    case 0xd9:
    case 0xda:
    case 0xdb:
        if (!be(r, (size_t)1 << (c - 0xd9), &v))
            return -EINVAL;
        it->n = (uint32_t)v;
        goto str;
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf:
        if (!be(r, (c & 1) ? 4 : 2, &v))
            return -EINVAL;
        it->type = c <= 0xdd ? MP_ARRAY : MP_MAP;
        it->n = (uint32_t)v;
        goto count;
    default:
        return -EINVAL;
    }
str:
    it->type = MP_STR;
    if (!take(r, it->n, &a))
        return -EINVAL;
    it->s = (const char *)a;
    return 0;
count:
    /* Every element takes at least one byte: a count the rest cannot hold is a lie. */
    if ((uint64_t)it->n * (it->type == MP_MAP ? 2 : 1) > (uint64_t)(r->end - r->p))
        return -EINVAL;
    return 0;
}

/* Skip one value whose header is already in *it; depth = nesting of that value. */
static int skip_value(struct reader *r, const struct mp_item *it, int depth)
{
    if (it->type != MP_ARRAY && it->type != MP_MAP)
        return 0;
    if (depth > LDG_LOGCODEC_MAX_DEPTH)
        return -EINVAL;
    uint64_t n = (uint64_t)it->n * (it->type == MP_MAP ? 2 : 1);
    for (uint64_t k = 0; k < n; k++) {
        struct mp_item c;
        int rc = read_item(r, &c);
        if (!rc)
            rc = skip_value(r, &c, depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

static bool text_ok(const char *s, size_t n)
{
    size_t chars;
    return !memchr(s, 0, n) && ldg_utf8_count(s, n, &chars) == 0;
}

/* Write the value whose header is *it as JSON; depth = nesting of that value (attributes map = 1). */
static int json_value(struct reader *r, const struct mp_item *it, int depth, struct ldg_json_writer *w,
                      struct ldg_arena *arena)
{
    char num[24];
    switch (it->type) {
    case MP_NIL:
        ldg_json_null(w);
        return 0;
    case MP_BOOL:
        ldg_json_bool(w, it->b);
        return 0;
    case MP_UINT:
        if (it->u <= INT64_MAX) {
            ldg_json_int(w, (int64_t)it->u);
        } else {
            int n = snprintf(num, sizeof num, "%" PRIu64, it->u);
            ldg_json_raw(w, num, (size_t)n);
        }
        return 0;
    case MP_INT:
        ldg_json_int(w, it->i);
        return 0;
    case MP_FLOAT:
        ldg_json_double(w, it->d);
        return 0;
    case MP_STR:
        if (!text_ok(it->s, it->n))
            return -EINVAL;
        ldg_json_strn(w, it->s, it->n);
        return 0;
    case MP_ARRAY:
    case MP_MAP:
        break;
    }
    if (depth > LDG_LOGCODEC_MAX_DEPTH)
        return -EINVAL;
    bool map = it->type == MP_MAP;
    if (map)
        ldg_json_obj_begin(w);
    else
        ldg_json_arr_begin(w);
    for (uint32_t k = 0; k < it->n; k++) {
        struct mp_item c;
        if (map) {
            if (read_item(r, &c) || c.type != MP_STR || !text_ok(c.s, c.n))
                return -EINVAL;
            /* the writer takes NUL-terminated names */
            ldg_json_key(w, ldg_arena_strndup(arena, c.s, c.n));
        }
        int rc = read_item(r, &c);
        if (!rc)
            rc = json_value(r, &c, depth + 1, w, arena);
        if (rc)
            return rc;
    }
    if (map)
        ldg_json_obj_end(w);
    else
        ldg_json_arr_end(w);
    return 0;
}

static const char *const levels[] = {"debug", "info", "warning", "error", "critical"};
static const char *const log_types[] = {"console", "logger", "exception", "database", "endpoint", "custom"};
static const char *const importances[] = {"critical", "high", "standard", "low"};

static const char *pick(const char *const *tab, size_t n, const struct mp_item *it)
{
    if (it->type != MP_STR)
        return NULL;
    for (size_t k = 0; k < n; k++)
        if (strlen(tab[k]) == it->n && memcmp(tab[k], it->s, it->n) == 0)
            return tab[k];
    return NULL;
}

/* The client's offset from the tail of an isoformat string: `Z`, `±HH:MM` or `±HH:MM:SS` (seconds
 * must be 00; our struct keeps minutes). */
static int parse_offset(const char *s, size_t n, int32_t *off)
{
    if (n >= 1 && s[n - 1] == 'Z') {
        *off = 0;
        return 0;
    }
    if (n >= 9 && (s[n - 9] == '+' || s[n - 9] == '-') && s[n - 3] == ':') {
        if (s[n - 2] != '0' || s[n - 1] != '0')
            return -EINVAL;
        n -= 3;
    }
    if (n < 6 || (s[n - 6] != '+' && s[n - 6] != '-') || s[n - 3] != ':')
        return -EINVAL;
    const char *d = s + n - 5;
    for (int k = 0; k < 5; k++)
        if (k != 2 && (d[k] < '0' || d[k] > '9'))
            return -EINVAL;
    int hh = (d[0] - '0') * 10 + (d[1] - '0'), mm = (d[3] - '0') * 10 + (d[4] - '0');
    if (hh > 23 || mm > 59)
        return -EINVAL;
    *off = (s[n - 6] == '-' ? -1 : 1) * (hh * 60 + mm);
    return 0;
}

enum {
    K_PROJECT_ID,
    K_TIMESTAMP,
    K_INGESTED_AT,
    K_LEVEL,
    K_LOG_TYPE,
    K_IMPORTANCE,
    K_ENVIRONMENT,
    K_RELEASE,
    K_MESSAGE,
    K_ERROR_TYPE,
    K_ERROR_MESSAGE,
    K_STACK_TRACE,
    K_ATTRIBUTES,
    K_SDK_VERSION,
    K_PLATFORM,
    K_PLATFORM_VERSION,
    K_FINGERPRINT,
    K_TS_US,
    K_INGESTED_US,
    K_COUNT
};

#define KEY(s)                                                                                               \
    {                                                                                                        \
        s, sizeof(s) - 1                                                                                     \
    }
static const struct {
    const char *s;
    size_t n;
} keys[K_COUNT] = {
    KEY("project_id"),        KEY("timestamp"),   KEY("ingested_at"),   KEY("level"),
    KEY("log_type"),          KEY("importance"),  KEY("environment"),   KEY("release"),
    KEY("message"),           KEY("error_type"),  KEY("error_message"), KEY("stack_trace"),
    KEY("attributes"),        KEY("sdk_version"), KEY("platform"),      KEY("platform_version"),
    KEY("error_fingerprint"), KEY("ts_us"),       KEY("ingested_us"),
};
#undef KEY

static bool key_is(int k, const struct mp_item *it)
{
    return keys[k].n == it->n && memcmp(keys[k].s, it->s, it->n) == 0;
}

/* The key's index; `hint` is the one expected there (our encoder writes them in this order). */
static int key_index(const struct mp_item *it, uint32_t hint)
{
    if (hint < K_COUNT && key_is((int)hint, it))
        return (int)hint;
    for (int k = 0; k < K_COUNT; k++)
        if (key_is(k, it))
            return k;
    return -1;
}

static int get_int(const struct mp_item *it, int64_t *out)
{
    if (it->type == MP_INT)
        *out = it->i;
    else if (it->type == MP_UINT && it->u <= INT64_MAX)
        *out = (int64_t)it->u;
    else
        return -EINVAL;
    return 0;
}

static int get_text(const struct mp_item *it, struct ldg_arena *arena, struct ldg_str *out)
{
    if (it->type == MP_NIL) {
        *out = (struct ldg_str){NULL, 0};
        return 0;
    }
    if (it->type != MP_STR || !text_ok(it->s, it->n))
        return -EINVAL;
    *out = ldg_str_make(ldg_arena_strndup(arena, it->s, it->n), it->n);
    return 0;
}

static int get_fingerprint(const struct mp_item *it, char *fp)
{
    fp[0] = '\0';
    if (it->type == MP_NIL || (it->type == MP_STR && it->n == 0))
        return 0;
    if (it->type != MP_STR || it->n != LDG_LOG_FINGERPRINT_LEN)
        return -EINVAL;
    for (uint32_t k = 0; k < it->n; k++)
        if (!((it->s[k] >= '0' && it->s[k] <= '9') || (it->s[k] >= 'a' && it->s[k] <= 'f')))
            return -EINVAL;
    memcpy(fp, it->s, it->n);
    fp[it->n] = '\0';
    return 0;
}

static int get_attributes(struct reader *r, const struct mp_item *it, struct ldg_arena *arena,
                          struct ldg_str *out)
{
    *out = (struct ldg_str){NULL, 0};
    if (it->type == MP_NIL)
        return 0;
    if (it->type != MP_MAP)
        return -EINVAL;
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer w;
    ldg_json_writer_init(&w, &b);
    int rc = json_value(r, it, 1, &w, arena);
    if (!rc)
        *out = ldg_str_make(ldg_arena_strndup(arena, ldg_buf_head(&b), ldg_buf_size(&b)), ldg_buf_size(&b));
    ldg_buf_free(&b);
    return rc;
}

static int decode_field(int k, struct reader *r, const struct mp_item *v, struct ldg_arena *arena,
                        struct ldg_log *out)
{
    switch (k) {
    case K_PROJECT_ID:
        return get_int(v, &out->project_id);
    case K_TIMESTAMP:
        if (v->type == MP_NIL)
            return 0;
        if (v->type != MP_STR)
            return -EINVAL;
        return parse_offset(v->s, v->n, &out->ts_offset_min);
    case K_INGESTED_AT:
        return v->type == MP_STR || v->type == MP_NIL ? 0 : -EINVAL;
    case K_LEVEL:
        return (out->level = pick(levels, LDG_ARRAY_SIZE(levels), v)) ? 0 : -EINVAL;
    case K_LOG_TYPE:
        return (out->log_type = pick(log_types, LDG_ARRAY_SIZE(log_types), v)) ? 0 : -EINVAL;
    case K_IMPORTANCE:
        return (out->importance = pick(importances, LDG_ARRAY_SIZE(importances), v)) ? 0 : -EINVAL;
    case K_ENVIRONMENT:
        return get_text(v, arena, &out->environment);
    case K_RELEASE:
        return get_text(v, arena, &out->release);
    case K_MESSAGE:
        return get_text(v, arena, &out->message);
    case K_ERROR_TYPE:
        return get_text(v, arena, &out->error_type);
    case K_ERROR_MESSAGE:
        return get_text(v, arena, &out->error_message);
    case K_STACK_TRACE:
        return get_text(v, arena, &out->stack_trace);
    case K_ATTRIBUTES:
        return get_attributes(r, v, arena, &out->attributes);
    case K_SDK_VERSION:
        return get_text(v, arena, &out->sdk_version);
    case K_PLATFORM:
        return get_text(v, arena, &out->platform);
    case K_PLATFORM_VERSION:
        return get_text(v, arena, &out->platform_version);
    case K_FINGERPRINT:
        return get_fingerprint(v, out->fingerprint);
    case K_TS_US:
        return get_int(v, &out->ts_us);
    case K_INGESTED_US:
        return get_int(v, &out->ingested_us);
    default:
        return -EINVAL;
    }
}

/* The fields of format 2 after its version, in array order; K_COUNT marks the offset. */
static const int8_t array_keys[ARRAY_LEN - 1] = {
    K_PROJECT_ID,
    K_TS_US,
    K_COUNT,
    K_INGESTED_US,
    K_LEVEL,
    K_LOG_TYPE,
    K_IMPORTANCE,
    K_ENVIRONMENT,
    K_RELEASE,
    K_MESSAGE,
    K_ERROR_TYPE,
    K_ERROR_MESSAGE,
    K_STACK_TRACE,
    K_ATTRIBUTES,
    K_SDK_VERSION,
    K_PLATFORM,
    K_PLATFORM_VERSION,
    K_FINGERPRINT,
};

/* Format 2 (top = its array header): every field present, in order; longer arrays (a newer
 * writer) have their extra elements skipped. */
static int decode_array(struct reader *r, const struct mp_item *top, struct ldg_arena *arena,
                        struct ldg_log *out)
{
    struct mp_item v;
    int64_t version;
    if (top->n < ARRAY_LEN || read_item(r, &v) || get_int(&v, &version) || version != ARRAY_FORMAT)
        return -EINVAL;
    for (uint32_t i = 1; i < top->n; i++) {
        if (read_item(r, &v))
            return -EINVAL;
        int rc;
        if (i >= ARRAY_LEN) {
            rc = skip_value(r, &v, 2);
        } else if (array_keys[i - 1] == K_COUNT) {
            int64_t off;
            rc = get_int(&v, &off) || off < -24 * 60 || off > 24 * 60 ? -EINVAL : 0;
            out->ts_offset_min = (int32_t)off;
        } else {
            rc = decode_field(array_keys[i - 1], r, &v, arena, out);
        }
        if (rc)
            return rc;
    }
    return out->level && out->log_type && out->importance ? 0 : -EINVAL;
}

/* Decode the entry (format 2 array, or a format 1 map) at r->p into *out (zeroed first); on
 * success r->p is just past it. */
static int decode_map(struct reader *r, struct ldg_arena *arena, struct ldg_log *out)
{
    memset(out, 0, sizeof *out);
    struct mp_item top;
    if (read_item(r, &top))
        return -EINVAL;
    if (top.type == MP_ARRAY)
        return decode_array(r, &top, arena, out);
    if (top.type != MP_MAP)
        return -EINVAL;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < top.n; i++) {
        struct mp_item key, val;
        if (read_item(r, &key) || key.type != MP_STR || read_item(r, &val))
            return -EINVAL;
        int k = key_index(&key, i);
        int rc;
        if (k < 0) {
            rc = skip_value(r, &val, 2); /* unknown key from a newer writer */
        } else {
            if (seen & (1u << k))
                return -EINVAL;
            seen |= 1u << k;
            rc = decode_field(k, r, &val, arena, out);
        }
        if (rc)
            return rc;
    }
    const uint32_t required = 1u << K_PROJECT_ID | 1u << K_LEVEL | 1u << K_LOG_TYPE | 1u << K_IMPORTANCE |
                              1u << K_TS_US | 1u << K_INGESTED_US;
    return (seen & required) == required ? 0 : -EINVAL;
}

int ldg_logcodec_decode(const char *data, size_t len, struct ldg_arena *arena, struct ldg_log *out)
{
    memset(out, 0, sizeof *out);
    if (!data)
        return -EINVAL;
    struct reader r = {(const unsigned char *)data, (const unsigned char *)data + len};
    int rc = decode_map(&r, arena, out);
    return rc ? rc : r.p == r.end ? 0 : -EINVAL;
}

int ldg_logcodec_decode_next(const char *data, size_t len, struct ldg_arena *arena, struct ldg_log *out,
                             size_t *used)
{
    *used = 0;
    memset(out, 0, sizeof *out);
    if (!data)
        return -EINVAL;
    const unsigned char *p = (const unsigned char *)data;
    struct reader r = {p, p + len};
    int rc = decode_map(&r, arena, out);
    if (rc == 0) {
        *used = (size_t)(r.p - p);
        return 0;
    }
    /* Rejected: find where the map ends, if its structure allows, so the caller can go on. */
    struct mp_item top;
    r.p = p;
    if (read_item(&r, &top) == 0 && (top.type == MP_MAP || top.type == MP_ARRAY) &&
        skip_value(&r, &top, 0) == 0)
        *used = (size_t)(r.p - p);
    return rc;
}

/* ---- COPY ---- */

/* PostgreSQL COPY text format: backslash, and the characters that delimit fields and rows. */
static void copy_text(struct ldg_buf *out, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t k = 0; k < n; k++) {
        /* skip 8 bytes at a time while none of them needs escaping */
        for (uint64_t v; k + 8 <= n; k += 8) {
            v = ldg_swar_load(s + k);
            if (ldg_swar_has(v, '\\') | ldg_swar_has(v, '\t') | ldg_swar_has(v, '\n') | ldg_swar_has(v, '\r'))
                break;
        }
        if (k >= n)
            break;
        const char *esc;
        switch (s[k]) {
        case '\\':
            esc = "\\\\";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        default:
            continue;
        }
        ldg_buf_put(out, s + run, k - run);
        ldg_buf_put(out, esc, 2);
        run = k + 1;
    }
    ldg_buf_put(out, s + run, n - run);
}

static void copy_field(struct ldg_buf *out, const char *s, size_t n)
{
    ldg_buf_put(out, "\t", 1);
    if (s)
        copy_text(out, s, n);
    else
        ldg_buf_put(out, "\\N", 2);
}

static void copy_cstr(struct ldg_buf *out, const char *s)
{
    copy_field(out, s, s ? strlen(s) : 0);
}

void ldg_logcodec_copy_row(const struct ldg_log *l, struct ldg_buf *out)
{
    ldg_buf_put_i64(out, l->project_id);
    ldg_buf_put(out, "\t", 1);
    copy_time(l->ts_us, out);
    ldg_buf_put(out, "\t", 1);
    copy_time(l->ingested_us, out);
    copy_cstr(out, l->level);
    copy_cstr(out, l->log_type);
    copy_cstr(out, l->importance);
    copy_field(out, l->environment.p, l->environment.n);
    copy_field(out, l->release.p, l->release.n);
    copy_field(out, l->message.p, l->message.n);
    copy_field(out, l->error_type.p, l->error_type.n);
    copy_field(out, l->error_message.p, l->error_message.n);
    copy_field(out, l->stack_trace.p, l->stack_trace.n);
    copy_field(out, l->attributes.p, l->attributes.n);
    copy_field(out, l->sdk_version.p, l->sdk_version.n);
    copy_field(out, l->platform.p, l->platform.n);
    copy_field(out, l->platform_version.p, l->platform_version.n);
    copy_cstr(out, l->fingerprint[0] ? l->fingerprint : NULL);
    ldg_buf_put(out, "\n", 1);
}

/* ---- notification ---- */

static bool cstr_eq(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

bool ldg_logcodec_notifiable(const struct ldg_log *l, bool errors, bool critical)
{
    return (critical && cstr_eq(l->level, "critical")) || (errors && cstr_eq(l->level, "error")) ||
           cstr_eq(l->log_type, "exception");
}

/* Bytes of the first `chars` code points of valid UTF-8 s[0..n). */
static size_t utf8_prefix(const char *s, size_t n, size_t chars)
{
    size_t k = 0;
    for (; k < n; k++) {
        if (((unsigned char)s[k] & 0xc0) != 0x80) {
            if (chars == 0)
                break;
            chars--;
        }
    }
    return k;
}

static void json_opt(struct ldg_json_writer *w, const char *key, struct ldg_str s)
{
    ldg_json_key(w, key);
    if (s.p)
        ldg_json_strn(w, s.p, s.n);
    else
        ldg_json_null(w);
}

void ldg_logcodec_notification(const struct ldg_log *l, struct ldg_buf *out)
{
    struct ldg_json_writer w;
    ldg_json_writer_init(&w, out);
    ldg_json_obj_begin(&w);
    ldg_json_key(&w, "log_id");
    ldg_json_null(&w);
    ldg_json_key(&w, "project_id");
    ldg_json_int(&w, l->project_id);
    ldg_json_key(&w, "level");
    ldg_json_str(&w, l->level);
    ldg_json_key(&w, "log_type");
    ldg_json_str(&w, l->log_type);
    ldg_json_key(&w, "message");
    if (l->message.p)
        ldg_json_strn(&w, l->message.p, utf8_prefix(l->message.p, l->message.n, NOTIFY_MESSAGE_CHARS));
    else
        ldg_json_str(&w, "");
    json_opt(&w, "error_type", l->error_type);
    ldg_json_key(&w, "timestamp");
    struct ldg_buf ts;
    ldg_buf_init(&ts);
    ldg_logcodec_isoformat(l->ts_us, l->ts_offset_min, true, &ts);
    ldg_json_strn(&w, ldg_buf_head(&ts), ldg_buf_size(&ts));
    ldg_buf_free(&ts);
    ldg_json_key(&w, "error_fingerprint");
    ldg_json_str(&w, l->fingerprint[0] ? l->fingerprint : NULL);
    ldg_json_key(&w, "attributes");
    if (l->attributes.p)
        ldg_json_raw(&w, l->attributes.p, l->attributes.n);
    else
        ldg_json_raw(&w, "{}", 2);
    json_opt(&w, "sdk_version", l->sdk_version);
    json_opt(&w, "platform", l->platform);
    ldg_json_obj_end(&w);
}
