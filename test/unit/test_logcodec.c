#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "unit.h"

#include <inttypes.h>
#include <msgpack.h>

#include "ingest/logcodec.h"

#define TS_2025 INT64_C(1736937045123000) /* 2025-01-15T10:30:45.123Z */
#define FP "8e9fcb6190cbde0d71f285c946789ff0f4d6c2cb10aaa9550671a871481fcf0c"

static struct ldg_log minimal_log(void)
{
    struct ldg_log l;
    memset(&l, 0, sizeof l);
    l.project_id = 7;
    l.ts_us = TS_2025;
    l.ingested_us = TS_2025 + 1000000;
    l.level = "info";
    l.log_type = "logger";
    l.importance = "standard";
    return l;
}

static struct ldg_log full_log(void)
{
    struct ldg_log l = minimal_log();
    l.project_id = INT64_C(9007199254740993);
    l.ts_offset_min = 5 * 60 + 30;
    l.level = "error";
    l.log_type = "exception";
    l.importance = "high";
    l.message = S("boom \xc5\xbc\xc3\xb3\xc5\x82w \xf0\x9f\x90\xa2 \"q\" \\ tab\tnl\ncr\r");
    l.error_type = S("ValueError");
    l.error_message = S("");
    l.stack_trace = S("Traceback:\n  File \"/app/main.py\", line 10\n");
    l.environment = S("production");
    l.release = S("1.2.3");
    l.sdk_version = S("0.9");
    l.platform = S("python");
    l.platform_version = S("3.12");
    l.attributes = S("{\"a\":1,\"b\":[true,false,null,\"x\\u00e9\"],\"c\":{\"d\":{\"e\":-5}}}");
    memcpy(l.fingerprint, FP, sizeof FP);
    return l;
}

static void assert_str_eq(struct ldg_str a, struct ldg_str b)
{
    if (!a.p || !b.p) {
        assert_true(!a.p && !b.p);
        return;
    }
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.p, b.p, a.n);
    assert_int_equal(a.p[a.n], '\0'); /* decoded strings are NUL-terminated arena copies */
}

static void assert_logs_equal(const struct ldg_log *a, const struct ldg_log *b, bool same_attrs)
{
    assert_int_equal(a->project_id, b->project_id);
    assert_int_equal(a->ts_us, b->ts_us);
    assert_int_equal(a->ts_offset_min, b->ts_offset_min);
    assert_int_equal(a->ingested_us, b->ingested_us);
    assert_string_equal(a->level, b->level);
    assert_string_equal(a->log_type, b->log_type);
    assert_string_equal(a->importance, b->importance);
    assert_str_eq(a->message, b->message);
    assert_str_eq(a->error_type, b->error_type);
    assert_str_eq(a->error_message, b->error_message);
    assert_str_eq(a->stack_trace, b->stack_trace);
    assert_str_eq(a->environment, b->environment);
    assert_str_eq(a->release, b->release);
    assert_str_eq(a->sdk_version, b->sdk_version);
    assert_str_eq(a->platform, b->platform);
    assert_str_eq(a->platform_version, b->platform_version);
    if (same_attrs)
        assert_str_eq(a->attributes, b->attributes);
    assert_string_equal(a->fingerprint, b->fingerprint);
}

/* Encode l, decode it back into *back (strings in arena), return the decoded attributes text. */
/* Encode l in format 2, decode into *back; format 1 (written by earlier versions) must decode to
 * the same log. */
static void round_trip(const struct ldg_log *l, struct ldg_arena *arena, struct ldg_log *back)
{
    struct ldg_buf b, b1;
    ldg_buf_init(&b);
    ldg_buf_init(&b1);
    assert_int_equal(ldg_logcodec_encode(l, &b), 0);
    assert_int_equal(ldg_logcodec_encode_as(l, LDG_LOGCODEC_MAP, &b1), 0);
    assert_true(ldg_buf_size(&b) < ldg_buf_size(&b1));
    struct ldg_log old;
    assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b1), ldg_buf_size(&b1), arena, &old), 0);
    assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b), ldg_buf_size(&b), arena, back), 0);
    assert_logs_equal(&old, back, true);
    ldg_buf_free(&b);
    ldg_buf_free(&b1);
}

/* ---- isoformat ---- */

static void check_iso(int64_t ts, int32_t off, bool z, const char *want)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_logcodec_isoformat(ts, off, z, &b);
    assert_string_equal(text(&b), want);
    ldg_buf_free(&b);
}

static void test_isoformat(void **state)
{
    check_iso(TS_2025, 0, false, "2025-01-15T10:30:45.123000+00:00");
    check_iso(TS_2025, 0, true, "2025-01-15T10:30:45.123000Z");
    check_iso(TS_2025 - 123000, 0, false, "2025-01-15T10:30:45+00:00"); /* zero µs: no fraction */
    check_iso(TS_2025 - 123000, 0, true, "2025-01-15T10:30:45Z");
    check_iso(TS_2025 + 1, 0, false, "2025-01-15T10:30:45.123001+00:00");
    check_iso(TS_2025, 330, false, "2025-01-15T16:00:45.123000+05:30");
    check_iso(TS_2025, 330, true, "2025-01-15T16:00:45.123000+05:30");
    check_iso(TS_2025, -480, false, "2025-01-15T02:30:45.123000-08:00");
    check_iso(TS_2025, -480, true, "2025-01-15T02:30:45.123000-08:00");
    check_iso(TS_2025, -45, false, "2025-01-15T09:45:45.123000-00:45");
    check_iso(-500000, 0, false, "1969-12-31T23:59:59.500000+00:00");
    check_iso(0, 0, true, "1970-01-01T00:00:00Z");
    /* leap day, the last representable microsecond, a year before the epoch */
    check_iso(INT64_C(1709164800000000), 0, true, "2024-02-29T00:00:00Z");
    check_iso(INT64_C(253402300799999999), 0, false, "9999-12-31T23:59:59.999999+00:00");
    check_iso(INT64_C(-2208988800000000) + 59 * INT64_C(86400000000), 0, true, "1900-03-01T00:00:00Z");
    /* offset crossing a day boundary */
    check_iso(INT64_C(1735689600000000), -60, false, "2024-12-31T23:00:00-01:00");
}

/* ---- encode / decode ---- */

static void test_round_trip_minimal(void **state)
{
    struct ldg_log l = minimal_log(), back;
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    round_trip(&l, &a, &back);
    assert_logs_equal(&l, &back, true);
    assert_null(back.attributes.p);
    assert_null(back.message.p);
    ldg_arena_free(&a);
}

static void test_round_trip_full(void **state)
{
    struct ldg_log l = full_log(), back;
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    round_trip(&l, &a, &back);
    assert_logs_equal(&l, &back, false);
    /* the JSON writer re-escapes é as raw UTF-8 */
    assert_string_equal(back.attributes.p,
                        "{\"a\":1,\"b\":[true,false,null,\"x\xc3\xa9\"],\"c\":{\"d\":{\"e\":-5}}}");

    /* negative offset and every level/type/importance spelled the other way */
    l.ts_offset_min = -480;
    l.level = "critical";
    l.log_type = "endpoint";
    l.importance = "critical";
    l.ts_us = -1;
    round_trip(&l, &a, &back);
    assert_logs_equal(&l, &back, false);
    ldg_arena_free(&a);
}

static void test_round_trip_numbers(void **state)
{
    struct ldg_log l = minimal_log(), back;
    l.attributes = S("{\"big\":9007199254740992,\"min\":-9223372036854775808,\"f\":1.5,\"g\":-0.25,"
                     "\"e\":1e300,\"one\":1.0,\"huge\":1e19,\"tiny\":5e-324,\"z\":0}");
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    round_trip(&l, &a, &back);
    assert_string_equal(back.attributes.p, "{\"big\":9007199254740992,\"min\":-9223372036854775808,\"f\":1.5,"
                                           "\"g\":-0.25,\"e\":1e+300,\"one\":1,\"huge\":1e+19,"
                                           "\"tiny\":4.94065645841247e-324,\"z\":0}");

    /* msgpack types as another reader (libmsgpack) sees them: format 2 */
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, ldg_buf_head(&b), ldg_buf_size(&b), &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, ldg_buf_size(&b));
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, 19);
    const msgpack_object *el = u.data.via.array.ptr;
    assert_int_equal(el[0].via.u64, 2);                 /* format */
    assert_int_equal(el[1].via.u64, 7);                 /* project_id */
    assert_int_equal(el[2].via.i64, TS_2025);           /* ts_us */
    assert_int_equal(el[3].via.u64, 0);                 /* offset */
    assert_int_equal(el[4].via.i64, TS_2025 + 1000000); /* ingested_us */
    assert_memory_equal(el[5].via.str.ptr, "info", 4);  /* level */
    assert_int_equal(el[10].type, MSGPACK_OBJECT_NIL);  /* message */
    assert_int_equal(el[14].type, MSGPACK_OBJECT_MAP);  /* attributes */
    assert_int_equal(el[18].type, MSGPACK_OBJECT_NIL);  /* error_fingerprint "" */
    msgpack_unpacked_destroy(&u);

    /* format 1 */
    ldg_buf_reset(&b);
    assert_int_equal(ldg_logcodec_encode_as(&l, LDG_LOGCODEC_MAP, &b), 0);
    msgpack_unpacked_init(&u);
    off = 0;
    assert_int_equal(msgpack_unpack_next(&u, ldg_buf_head(&b), ldg_buf_size(&b), &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, ldg_buf_size(&b));
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    static const char *const keys[] = {
        "project_id",       "timestamp",         "ingested_at", "level",       "log_type",
        "importance",       "environment",       "release",     "message",     "error_type",
        "error_message",    "stack_trace",       "attributes",  "sdk_version", "platform",
        "platform_version", "error_fingerprint", "ts_us",       "ingested_us"};
    assert_int_equal(u.data.via.map.size, LDG_ARRAY_SIZE(keys));
    const msgpack_object_kv *kv = u.data.via.map.ptr;
    for (size_t i = 0; i < LDG_ARRAY_SIZE(keys); i++) {
        assert_int_equal(kv[i].key.type, MSGPACK_OBJECT_STR);
        assert_int_equal(kv[i].key.via.str.size, strlen(keys[i]));
        assert_memory_equal(kv[i].key.via.str.ptr, keys[i], strlen(keys[i]));
    }
    assert_int_equal(kv[0].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(kv[1].val.type, MSGPACK_OBJECT_STR);
    assert_memory_equal(kv[1].val.via.str.ptr, "2025-01-15T10:30:45.123000+00:00", 32);
    assert_memory_equal(kv[2].val.via.str.ptr, "2025-01-15T10:30:46.123000+00:00", 32);
    assert_int_equal(kv[8].val.type, MSGPACK_OBJECT_NIL);  /* message */
    assert_int_equal(kv[16].val.type, MSGPACK_OBJECT_NIL); /* error_fingerprint "" */
    const msgpack_object *attrs = &kv[12].val;
    assert_int_equal(attrs->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(attrs->via.map.ptr[0].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(attrs->via.map.ptr[1].val.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(attrs->via.map.ptr[1].val.via.i64, INT64_MIN);
    assert_int_equal(attrs->via.map.ptr[2].val.type, MSGPACK_OBJECT_FLOAT64);
    assert_int_equal(attrs->via.map.ptr[5].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER); /* 1.0 */
    assert_int_equal(attrs->via.map.ptr[6].val.type, MSGPACK_OBJECT_FLOAT64);          /* 1e19 */
    msgpack_unpacked_destroy(&u);
    ldg_buf_free(&b);
    ldg_arena_free(&a);
}

static void test_encode_rejects_bad_attributes(void **state)
{
    struct ldg_log l = minimal_log();
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_puts(&b, "keep");
    const char *bad[] = {"[1,2]", "\"s\"", "{", "", "{\"a\":1} x"};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(bad); i++) {
        l.attributes = S(bad[i]);
        assert_int_equal(ldg_logcodec_encode(&l, &b), -EINVAL);
        assert_int_equal(ldg_buf_size(&b), 4);
    }
    /* nesting: LDG_LOGCODEC_MAX_DEPTH containers pass, one more fails */
    char deep[2 * (LDG_LOGCODEC_MAX_DEPTH + 1) + 8];
    for (int extra = 0; extra <= 1; extra++) {
        int d = LDG_LOGCODEC_MAX_DEPTH + extra, n = 0;
        deep[n++] = '{';
        deep[n++] = '"';
        deep[n++] = 'k';
        deep[n++] = '"';
        deep[n++] = ':';
        for (int k = 1; k < d; k++)
            deep[n++] = '[';
        for (int k = 1; k < d; k++)
            deep[n++] = ']';
        deep[n++] = '}';
        l.attributes = ldg_str_make(deep, (size_t)n);
        b.len = b.off + 4;
        int rc = ldg_logcodec_encode(&l, &b);
        if (extra) {
            assert_int_equal(rc, -EINVAL);
            assert_int_equal(ldg_buf_size(&b), 4);
        } else {
            assert_int_equal(rc, 0);
            struct ldg_arena a;
            ldg_arena_init(&a, NULL, 0);
            struct ldg_log back;
            assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b) + 4, ldg_buf_size(&b) - 4, &a, &back), 0);
            assert_int_equal(back.attributes.n, (size_t)n);
            assert_memory_equal(back.attributes.p, deep, (size_t)n);
            ldg_arena_free(&a);
        }
    }
    ldg_buf_free(&b);
}

/* ---- malformed input ---- */

static int decode_buf(struct ldg_buf *b)
{
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    struct ldg_log out;
    int rc = ldg_logcodec_decode(ldg_buf_head(b), ldg_buf_size(b), &a, &out);
    ldg_arena_free(&a);
    return rc;
}

static int decode_bytes(const char *p, size_t n)
{
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    struct ldg_log out;
    int rc = ldg_logcodec_decode(p, n, &a, &out);
    ldg_arena_free(&a);
    return rc;
}

static int decode_next_bytes(const char *p, size_t n, size_t *used)
{
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    struct ldg_log out;
    int rc = ldg_logcodec_decode_next(p, n, &a, &out, used);
    ldg_arena_free(&a);
    return rc;
}

static int on_write(void *data, const char *buf, size_t len)
{
    ldg_buf_put(data, buf, len);
    return 0;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A valid map of the required keys plus `extra` more pairs, the caller packing those. */
static void pk_base(msgpack_packer *pk, size_t extra)
{
    msgpack_pack_map(pk, 6 + extra);
    pk_str(pk, "project_id");
    msgpack_pack_int64(pk, 1);
    pk_str(pk, "level");
    pk_str(pk, "info");
    pk_str(pk, "log_type");
    pk_str(pk, "logger");
    pk_str(pk, "importance");
    pk_str(pk, "low");
    pk_str(pk, "ts_us");
    msgpack_pack_int64(pk, 5);
    pk_str(pk, "ingested_us");
    msgpack_pack_int64(pk, 6);
}

static void test_decode_truncated_and_trailing(void **state)
{
    struct ldg_log l = full_log();
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    for (size_t n = 0; n < ldg_buf_size(&b); n++) {
        /* a heap copy of exactly n bytes, so ASan sees any read past the end */
        char *p = malloc(n ? n : 1);
        memcpy(p, ldg_buf_head(&b), n);
        assert_int_equal(decode_bytes(p, n), -EINVAL);
        size_t used = 99;
        assert_int_equal(decode_next_bytes(p, n, &used), -EINVAL);
        assert_int_equal(used, 0); /* a cut structure: nothing after it can be delimited */
        free(p);
    }
    ldg_buf_put(&b, "\xc0", 1);
    assert_int_equal(decode_buf(&b), -EINVAL);
    assert_int_equal(decode_bytes(NULL, 0), -EINVAL);
    ldg_buf_free(&b);
}

/* Logs back to back: each decoded in turn with its size (truncations: test_decode_truncated_and_trailing). */
static void test_decode_next(void **state)
{
    struct ldg_log l = full_log();
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    size_t one = ldg_buf_size(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    struct ldg_log back;
    size_t used = 99;
    assert_int_equal(ldg_logcodec_decode_next(ldg_buf_head(&b), ldg_buf_size(&b), &a, &back, &used), 0);
    assert_int_equal(used, one);
    assert_logs_equal(&l, &back, false);
    assert_int_equal(
        ldg_logcodec_decode_next(ldg_buf_head(&b) + one, ldg_buf_size(&b) - one, &a, &back, &used), 0);
    assert_int_equal(used, ldg_buf_size(&b) - one);
    assert_int_equal(ldg_logcodec_decode_next(NULL, 0, &a, &back, &used), -EINVAL);
    /* a sound map whose content is rejected ({"x": 1}: required keys missing) still has a size */
    struct ldg_buf two;
    ldg_buf_init(&two);
    ldg_buf_put(&two, "\x81\xa1x\x01", 4);
    ldg_buf_put(&two, ldg_buf_head(&b), one);
    assert_int_equal(ldg_logcodec_decode_next(ldg_buf_head(&two), ldg_buf_size(&two), &a, &back, &used),
                     -EINVAL);
    assert_int_equal(used, 4);
    assert_int_equal(ldg_logcodec_decode_next(ldg_buf_head(&two) + 4, one, &a, &back, &used), 0);
    assert_int_equal(used, one);
    ldg_buf_free(&two);
    ldg_arena_free(&a);
    ldg_buf_free(&b);
}

/* Format 2's shape: version, element count, offset range; a newer writer's extra elements. */
static void test_decode_array_shape(void **state)
{
    struct ldg_log l = minimal_log(), back;
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    char *p = b.data + b.off;
    size_t n = ldg_buf_size(&b);
    assert_memory_equal(p, "\xdc\x00\x13\x02", 4);   /* array16 of 19, version 2 */
    assert_int_equal((unsigned char)p[n - 1], 0xc0); /* the fingerprint: nil */

    p[3] = 0x03; /* another version */
    assert_int_equal(ldg_logcodec_decode(p, n, &a, &back), -EINVAL);
    p[3] = 0x02;
    p[2] = 0x12; /* 18 elements */
    assert_int_equal(ldg_logcodec_decode(p, n - 1, &a, &back), -EINVAL);
    p[2] = 0x14; /* 20: the extra element is skipped */
    ldg_buf_put(&b, "\xc0", 1);
    p = b.data + b.off;
    assert_int_equal(ldg_logcodec_decode(p, n + 1, &a, &back), 0);
    assert_logs_equal(&l, &back, true);

    int32_t offs[] = {24 * 60 + 1, -24 * 60 - 1};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(offs); i++) {
        ldg_buf_reset(&b);
        l.ts_offset_min = offs[i];
        assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
        assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b), ldg_buf_size(&b), &a, &back), -EINVAL);
        l.ts_offset_min = offs[i] < 0 ? offs[i] + 1 : offs[i] - 1;
        ldg_buf_reset(&b);
        assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
        assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b), ldg_buf_size(&b), &a, &back), 0);
        assert_int_equal(back.ts_offset_min, l.ts_offset_min);
    }
    l.ts_offset_min = 0;
    l.level = NULL; /* a required value missing */
    ldg_buf_reset(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b), ldg_buf_size(&b), &a, &back), -EINVAL);
    ldg_buf_free(&b);
    ldg_arena_free(&a);
}

static void test_decode_flipped_bytes(void **state)
{
    /* Every single-byte corruption either decodes or is rejected; nothing crashes. */
    struct ldg_log l = full_log();
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    size_t n = ldg_buf_size(&b);
    char *p = malloc(n);
    static const unsigned char vals[] = {0x00, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0,
                                         0xc1, 0xc4, 0xc7, 0xca, 0xcb, 0xcf, 0xd3, 0xd4,
                                         0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    for (size_t i = 0; i < n; i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(p, ldg_buf_head(&b), n);
            p[i] = (char)vals[v];
            int rc = decode_bytes(p, n);
            assert_true(rc == 0 || rc == -EINVAL);
        }
    }
    free(p);
    ldg_buf_free(&b);
}

static void test_decode_wrong_types(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, on_write);

    pk_base(&pk, 0);
    assert_int_equal(decode_buf(&b), 0);

    /* top level not a map */
    ldg_buf_reset(&b);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode_buf(&b), -EINVAL);

    /* each required key missing */
    for (int drop = 0; drop < 6; drop++) {
        ldg_buf_reset(&b);
        /* rebuild with one pair replaced by an unknown key */
        msgpack_pack_map(&pk, 6);
        const char *names[] = {"project_id", "level", "log_type", "importance", "ts_us", "ingested_us"};
        for (int k = 0; k < 6; k++) {
            pk_str(&pk, k == drop ? "unknown" : names[k]);
            if (k == 0 || k >= 4)
                msgpack_pack_int64(&pk, 1);
            else
                pk_str(&pk, k == 1 ? "info" : k == 2 ? "logger" : "low");
        }
        assert_int_equal(decode_buf(&b), -EINVAL);
    }

    struct {
        const char *key;
        int kind; /* value: 0 str "x", 1 int 1, 2 array [], 3 bin, 4 uint64 max, 5 bad utf-8, 6 str w/ NUL,
                     7 float, 8 63-char hex, 9 upper-case hex, 10 str "+5:30" */
    } cases[] = {
        {"project_id", 0},
        {"project_id", 4},
        {"project_id", 7},
        {"level", 1},
        {"level", 0},
        {"log_type", 0},
        {"importance", 0},
        {"message", 1},
        {"message", 2},
        {"message", 3},
        {"message", 5},
        {"message", 6},
        {"stack_trace", 1},
        {"attributes", 2},
        {"attributes", 0},
        {"attributes", 1},
        {"error_fingerprint", 0},
        {"error_fingerprint", 8},
        {"error_fingerprint", 9},
        {"ts_us", 0},
        {"timestamp", 0},
        {"timestamp", 1},
        {"timestamp", 10},
        {"ingested_at", 1},
        {"ts_us", 4},
    };
    for (size_t i = 0; i < LDG_ARRAY_SIZE(cases); i++) {
        ldg_buf_reset(&b);
        bool dup = strcmp(cases[i].key, "project_id") == 0 || strcmp(cases[i].key, "level") == 0 ||
                   strcmp(cases[i].key, "log_type") == 0 || strcmp(cases[i].key, "importance") == 0 ||
                   strcmp(cases[i].key, "ts_us") == 0;
        /* required keys: put the bad value in a map without the good one */
        if (dup) {
            msgpack_pack_map(&pk, 6);
            const char *names[] = {"project_id", "level", "log_type", "importance", "ts_us", "ingested_us"};
            for (int k = 0; k < 6; k++) {
                if (strcmp(names[k], cases[i].key) == 0)
                    continue;
                pk_str(&pk, names[k]);
                if (k == 0 || k >= 4)
                    msgpack_pack_int64(&pk, 1);
                else
                    pk_str(&pk, k == 1 ? "info" : k == 2 ? "logger" : "low");
            }
        } else {
            pk_base(&pk, 1);
        }
        pk_str(&pk, cases[i].key);
        switch (cases[i].kind) {
        case 0:
            pk_str(&pk, "x");
            break;
        case 1:
            msgpack_pack_int(&pk, 1);
            break;
        case 2:
            msgpack_pack_array(&pk, 0);
            break;
        case 3:
            msgpack_pack_bin(&pk, 1);
            msgpack_pack_bin_body(&pk, "x", 1);
            break;
        case 4:
            msgpack_pack_uint64(&pk, UINT64_MAX);
            break;
        case 5:
            pk_str(&pk, "a\xc3(");
            break;
        case 6:
            msgpack_pack_str(&pk, 3);
            msgpack_pack_str_body(&pk, "a\0b", 3);
            break;
        case 7:
            msgpack_pack_double(&pk, 1.0);
            break;
        case 8:
            msgpack_pack_str(&pk, 63);
            msgpack_pack_str_body(&pk, FP, 63);
            break;
        case 9:
            pk_str(&pk, "8E9FCB6190CBDE0D71F285C946789FF0F4D6C2CB10AAA9550671A871481FCF0C");
            break;
        case 10:
            pk_str(&pk, "2025-01-15T10:30:45+5:30");
            break;
        }
        if (decode_buf(&b) != -EINVAL)
            fail_msg("case %zu (%s, kind %d) accepted", i, cases[i].key, cases[i].kind);
    }

    /* duplicate key */
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    pk_str(&pk, "level");
    pk_str(&pk, "info");
    assert_int_equal(decode_buf(&b), -EINVAL);

    /* non-string key, at top level and inside attributes */
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 1);
    assert_int_equal(decode_buf(&b), -EINVAL);
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    pk_str(&pk, "attributes");
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 1);
    assert_int_equal(decode_buf(&b), -EINVAL);

    /* ext inside attributes; reserved 0xc1 */
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    pk_str(&pk, "attributes");
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "k");
    msgpack_pack_ext(&pk, 1, 1);
    msgpack_pack_ext_body(&pk, "x", 1);
    assert_int_equal(decode_buf(&b), -EINVAL);
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    pk_str(&pk, "message");
    ldg_buf_put(&b, "\xc1", 1);
    assert_int_equal(decode_buf(&b), -EINVAL);

    /* unknown keys are skipped, whatever they hold; valid offsets and fingerprints accepted */
    ldg_buf_reset(&b);
    pk_base(&pk, 4);
    pk_str(&pk, "future");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_double(&pk, 2.5);
    pk_str(&pk, "timestamp");
    pk_str(&pk, "2025-01-15T10:30:45-03:15");
    pk_str(&pk, "error_fingerprint");
    pk_str(&pk, FP);
    pk_str(&pk, "attributes");
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "u");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    pk_str(&pk, "f32");
    msgpack_pack_float(&pk, 0.5f);
    pk_str(&pk, "s");
    pk_str(&pk, "\t\"");
    struct ldg_arena a;
    ldg_arena_init(&a, NULL, 0);
    struct ldg_log out;
    assert_int_equal(ldg_logcodec_decode(ldg_buf_head(&b), ldg_buf_size(&b), &a, &out), 0);
    assert_int_equal(out.ts_offset_min, -195);
    assert_string_equal(out.fingerprint, FP);
    assert_string_equal(out.attributes.p, "{\"u\":18446744073709551615,\"f32\":0.5,\"s\":\"\\t\\\"\"}");
    assert_string_equal(out.importance, "low");
    ldg_arena_free(&a);
    ldg_buf_free(&b);
}

static void test_decode_deep_and_lying_counts(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, on_write);

    /* attributes: MAX_DEPTH containers accepted, one more rejected */
    for (int extra = 0; extra <= 1; extra++) {
        ldg_buf_reset(&b);
        pk_base(&pk, 1);
        pk_str(&pk, "attributes");
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "k");
        for (int k = 1; k < LDG_LOGCODEC_MAX_DEPTH + extra; k++)
            msgpack_pack_array(&pk, 1);
        msgpack_pack_nil(&pk);
        assert_int_equal(decode_buf(&b), extra ? -EINVAL : 0);
    }

    /* a very deep value under an unknown key, and a deep array as the whole input */
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    pk_str(&pk, "zz");
    for (int k = 0; k < 100000; k++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    assert_int_equal(decode_buf(&b), -EINVAL);

    /* counts the input cannot hold: map32 / array32 / str32 claiming 4 G */
    static const char lies[][7] = {
        "\xdf\xff\xff\xff\xff\xc0", /* map32 */
        "\xdd\xff\xff\xff\xff\xc0", /* array32 */
        "\xdb\xff\xff\xff\xff\xc0", /* str32 */
    };
    for (size_t i = 0; i < LDG_ARRAY_SIZE(lies); i++)
        assert_int_equal(decode_bytes(lies[i], 6), -EINVAL);
    ldg_buf_reset(&b);
    pk_base(&pk, 1);
    pk_str(&pk, "attributes");
    ldg_buf_put(&b, "\xdf\xff\xff\xff\xff", 5);
    assert_int_equal(decode_buf(&b), -EINVAL);
    ldg_buf_free(&b);
}

/* ---- COPY ---- */

static void test_copy_row(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_log l = minimal_log();
    ldg_logcodec_copy_row(&l, &b);
    assert_string_equal(text(&b),
                        "7\t2025-01-15 10:30:45.123000+00\t2025-01-15 10:30:46.123000+00\tinfo\tlogger\t"
                        "standard\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n");

    /* every special character, in text and in the attributes JSON; offset does not matter (UTC) */
    ldg_buf_reset(&b);
    l = full_log();
    l.ts_us = TS_2025 - 123000;
    l.ingested_us = -1;
    l.message = S("a\\b\tc\nd\re\\\\");
    l.error_message = S("\\N");
    l.stack_trace = S("\\.");
    l.attributes = S("{\"p\":\"C:\\\\x\",\"t\":\"\t\"}");
    ldg_logcodec_copy_row(&l, &b);
    assert_string_equal(text(&b),
                        "9007199254740993\t2025-01-15 10:30:45.000000+00\t1969-12-31 23:59:59.999999+00\t"
                        "error\texception\thigh\tproduction\t1.2.3\t"
                        "a\\\\b\\tc\\nd\\re\\\\\\\\\tValueError\t\\\\N\t\\\\.\t"
                        "{\"p\":\"C:\\\\\\\\x\",\"t\":\"\\t\"}\t0.9\tpython\t3.12\t" FP "\n");
    /* exactly 17 fields, one line */
    const char *t = text(&b);
    size_t tabs = 0, nls = 0;
    for (const char *p = t; *p; p++) {
        tabs += *p == '\t';
        nls += *p == '\n';
    }
    assert_int_equal(tabs, 16);
    assert_int_equal(nls, 1);
    /* empty strings are empty fields, not NULL */
    ldg_buf_reset(&b);
    l = minimal_log();
    l.message = S("");
    ldg_logcodec_copy_row(&l, &b);
    assert_non_null(strstr(text(&b), "standard\t\\N\t\\N\t\t\\N"));
    /* a character to escape at every position of messages up to 40 bytes (word-at-a-time scan) */
    static const char special[] = {'\\', '\t', '\n', '\r'};
    static const char *const esc[] = {"\\\\", "\\t", "\\n", "\\r"};
    for (size_t k = 0; k < sizeof special; k++) {
        for (size_t len = 1; len <= 40; len++) {
            for (size_t at = 0; at < len; at++) {
                char msg[48], want[128];
                memset(msg, 'm', len);
                msg[at] = special[k];
                l = minimal_log();
                l.message = ldg_str_make(msg, len);
                ldg_buf_reset(&b);
                ldg_logcodec_copy_row(&l, &b);
                snprintf(want, sizeof want, "standard\t\\N\t\\N\t%.*s%s%.*s\t\\N", (int)at, msg, esc[k],
                         (int)(len - at - 1), msg + at + 1);
                assert_non_null(strstr(text(&b), want));
            }
        }
    }
    assert_non_null(strstr(LDG_LOGCODEC_COPY_COLUMNS, "project_id, \"timestamp\", ingested_at, level,"));
    assert_non_null(strstr(LDG_LOGCODEC_COPY_COLUMNS, "platform_version, error_fingerprint"));
    ldg_buf_free(&b);
}

/* ---- notification ---- */

static void test_notifiable(void **state)
{
    struct ldg_log l = minimal_log();
    l.level = "error";
    assert_true(ldg_logcodec_notifiable(&l, true, false));
    assert_false(ldg_logcodec_notifiable(&l, false, true));
    l.level = "critical";
    assert_true(ldg_logcodec_notifiable(&l, false, true));
    assert_false(ldg_logcodec_notifiable(&l, true, false));
    l.level = "debug";
    assert_false(ldg_logcodec_notifiable(&l, true, true));
    l.log_type = "exception";
    assert_true(ldg_logcodec_notifiable(&l, false, false));
}

static void test_notification(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_log l = minimal_log();
    ldg_logcodec_notification(&l, &b);
    assert_string_equal(text(&b),
                        "{\"log_id\":null,\"project_id\":7,\"level\":\"info\",\"log_type\":\"logger\","
                        "\"message\":\"\",\"error_type\":null,\"timestamp\":\"2025-01-15T10:30:45.123000Z\","
                        "\"error_fingerprint\":null,\"attributes\":{},\"sdk_version\":null,"
                        "\"platform\":null}");
    cJSON *j = ldg_json_parse(ldg_buf_head(&b), ldg_buf_size(&b));
    assert_non_null(j);
    cJSON_Delete(j);

    ldg_buf_reset(&b);
    l = full_log();
    l.message = S("hi \"x\"\n");
    ldg_logcodec_notification(&l, &b);
    assert_string_equal(
        text(&b), "{\"log_id\":null,\"project_id\":9007199254740993,\"level\":\"error\","
                  "\"log_type\":\"exception\",\"message\":\"hi \\\"x\\\"\\n\",\"error_type\":\"ValueError\","
                  "\"timestamp\":\"2025-01-15T16:00:45.123000+05:30\",\"error_fingerprint\":\"" FP "\","
                  "\"attributes\":{\"a\":1,\"b\":[true,false,null,\"x\\u00e9\"],\"c\":{\"d\":{\"e\":-5}}},"
                  "\"sdk_version\":\"0.9\",\"platform\":\"python\"}");
    ldg_buf_free(&b);
}

static void check_cut(const char *unit, size_t unit_chars, size_t total_units, size_t want_units)
{
    size_t un = strlen(unit);
    char *msg = malloc(un * total_units);
    for (size_t i = 0; i < total_units; i++)
        memcpy(msg + i * un, unit, un);
    struct ldg_log l = minimal_log();
    l.message = ldg_str_make(msg, un * total_units);
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_logcodec_notification(&l, &b);
    cJSON *j = ldg_json_parse(ldg_buf_head(&b), ldg_buf_size(&b));
    assert_non_null(j);
    const char *m = cJSON_GetObjectItemCaseSensitive(j, "message")->valuestring;
    assert_int_equal(strlen(m), want_units * un);
    assert_memory_equal(m, msg, want_units * un);
    size_t chars;
    assert_int_equal(ldg_utf8_count(m, strlen(m), &chars), 0);
    assert_int_equal(chars, want_units * unit_chars);
    cJSON_Delete(j);
    ldg_buf_free(&b);
    free(msg);
}

static void test_notification_cut(void **state)
{
    check_cut("a", 1, 499, 499);
    check_cut("a", 1, 500, 500);
    check_cut("a", 1, 501, 500);
    check_cut("\xc3\xa9", 1, 600, 500);          /* é: 2 bytes */
    check_cut("\xe2\x82\xac", 1, 501, 500);      /* €: 3 bytes */
    check_cut("\xf0\x9f\x90\xa2", 1, 1000, 500); /* 🐢: 4 bytes */
    check_cut("a\xf0\x9f\x90\xa2", 2, 300, 250); /* mixed, cut at a boundary */
    /* cut landing inside a 2-code-point unit: 499 'a' then an emoji fits exactly 500 */
    struct ldg_log l = minimal_log();
    char msg[499 + 8];
    memset(msg, 'a', 499);
    memcpy(msg + 499, "\xf0\x9f\x90\xa2\xc3\xa9", 6);
    l.message = ldg_str_make(msg, 505);
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_logcodec_notification(&l, &b);
    assert_non_null(strstr(text(&b), "a\xf0\x9f\x90\xa2\",\"error_type\""));
    ldg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isoformat),
        cmocka_unit_test(test_decode_next),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_round_trip_full),
        cmocka_unit_test(test_round_trip_numbers),
        cmocka_unit_test(test_encode_rejects_bad_attributes),
        cmocka_unit_test(test_decode_truncated_and_trailing),
        cmocka_unit_test(test_decode_array_shape),
        cmocka_unit_test(test_decode_flipped_bytes),
        cmocka_unit_test(test_decode_wrong_types),
        cmocka_unit_test(test_decode_deep_and_lying_counts),
        cmocka_unit_test(test_copy_row),
        cmocka_unit_test(test_notifiable),
        cmocka_unit_test(test_notification),
        cmocka_unit_test(test_notification_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
