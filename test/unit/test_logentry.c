#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>

#include "core/json.h"
#include "ingest/logentry.h"

/* 2024-01-15T10:30:00Z: the server's "now" in every test. */
#define NOW_S INT64_C(1705314600)
#define NOW_US (NOW_S * 1000000)

/* The tree the last parsed log borrows from; freed by the next parse and at the end of a test. */
static cJSON *tree;
static struct ldg_arena arena;
static char arena_first[4096];
static char err[512];

static int setup(void **state)
{
    ldg_arena_init(&arena, arena_first, sizeof arena_first);
    return 0;
}

static int teardown(void **state)
{
    cJSON_Delete(tree);
    tree = NULL;
    ldg_arena_free(&arena);
    return 0;
}

static int parse(const char *json, struct ldg_log *out)
{
    cJSON_Delete(tree);
    tree = ldg_json_parse(json, strlen(json));
    assert_non_null(tree);
    err[0] = '\0';
    return ldg_logentry_parse(tree, 7, NOW_US, &arena, out, err, sizeof err);
}

/* Parse {"timestamp": ..., "level": "info", <extra>} and expect success. */
static void ok(const char *extra, struct ldg_log *out)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"timestamp\": \"2024-01-15T10:00:00Z\", \"level\": \"info\"%s%s}",
             *extra ? ", " : "", extra);
    int r = parse(buf, out);
    if (r != 0)
        fail_msg("%s: %s", buf, err);
}

/* Same, expecting exactly message msg. */
static void bad(const char *extra, const char *msg)
{
    char buf[1024];
    struct ldg_log log;
    snprintf(buf, sizeof buf, "{\"timestamp\": \"2024-01-15T10:00:00Z\", \"level\": \"info\"%s%s}",
             *extra ? ", " : "", extra);
    assert_int_equal(parse(buf, &log), -EINVAL);
    assert_string_equal(err, msg);
}

/* Build a JSON string value: n copies of unit (UTF-8). Caller frees. */
static char *repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

/* {"timestamp":…,"level":"info", "<field>": "<n units>"<extra>} through parse(). */
static int parse_long(const char *field, const char *unit, size_t n, const char *extra, struct ldg_log *out)
{
    char *v = repeat(unit, n);
    size_t cap = strlen(v) + strlen(extra) + 256;
    char *buf = malloc(cap);
    snprintf(buf, cap, "{\"timestamp\": \"2024-01-15T10:00:00Z\", \"level\": \"info\", \"%s\": \"%s\"%s}",
             field, v, extra);
    int r = parse(buf, out);
    free(buf);
    free(v);
    return r;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_fingerprint_vectors(void **state)
{
    char fp[65];
    const char *py = "Traceback (most recent call last):\n"
                     "  File \"/app/main.py\", line 10, in <module>\n    main()\n"
                     "  File \"/app/svc.py\", line 42, in main\n    pay()\n"
                     "  File \"/app/pay.py\", line 7, in pay\n    x()\n"
                     "  File \"/app/x.py\", line 99, in x\n    raise ValueError(\"bad\")\n"
                     "ValueError: bad\n";
    ldg_logentry_fingerprint("ValueError", py, strlen(py), "python", fp);
    assert_string_equal(fp, "8e9fcb6190cbde0d71f285c946789ff0f4d6c2cb10aaa9550671a871481fcf0c");

    const char *node =
        "TypeError: x is not a function\n    at foo (/app/a.js:10:5)\n    at bar (/app/b.js:20:7)\n";
    ldg_logentry_fingerprint("TypeError", node, strlen(node), NULL, fp);
    assert_string_equal(fp, "654690a9bfc8124a0562ad5460c653105351dc710561ad367c9b693d40558533");
    ldg_logentry_fingerprint("TypeError", node, strlen(node), "", fp); /* "" counts as absent */
    assert_string_equal(fp, "654690a9bfc8124a0562ad5460c653105351dc710561ad367c9b693d40558533");

    const char *java = "java.lang.NullPointerException\n\tat com.x.Y.m(Y.java:42)\n\tat com.x.Z.n(Z.java:7)";
    ldg_logentry_fingerprint("NullPointerException", java, strlen(java), "java", fp);
    assert_string_equal(fp, "71575efe8892d077da82daa198642d7c47b1284b5423de617eeaf63ad5961b9f");

    ldg_logentry_fingerprint("E", "no frames here", 14, "python", fp);
    assert_string_equal(fp, "ce256c474707803e13376c9ca629576d9f9321a770019c439187f1512f022139");
}

/* Two fingerprints must be equal, i.e. their signatures are (SHA-256 does not collide in tests). */
static void assert_same_fp(const char *et1, const char *st1, const char *pl1, const char *et2,
                           const char *st2, const char *pl2)
{
    char a[65], b[65];
    ldg_logentry_fingerprint(et1, st1, strlen(st1), pl1, a);
    ldg_logentry_fingerprint(et2, st2, strlen(st2), pl2, b);
    assert_string_equal(a, b);
}

static void test_fingerprint_frames(void **state)
{
    /* E::python is the "no frames" signature; the Python vector shows the full format. */
    assert_same_fp(NULL, "x", NULL, "UnknownError", "y", "unknown");
    /* Only the first three frames count; later lines, the message and other text do not. */
    assert_same_fp("E", "File \"a\", line 1\nFile \"b\", line 2\nFile \"c\", line 3\nFile \"d\", line 4", "p",
                   "E", "junk File \"a\", line 1 x\nFile \"b\", line 2File \"c\", line 3", "p");
    /* Several matches on one line; the path must be non-empty and the line number present. */
    assert_same_fp(
        "E", "File \"\", line 1 File \"a\", line 1File \"b\", line x File \"b\", line 2, File \"c\", line 3",
        "p", "E", "File \"a\", line 1\nFile \"b\", line 2\nFile \"c\", line 3", "p");
    /* A match does not cross a newline. */
    assert_same_fp("E", "File \"a\n\", line 1", "p", "E", "nothing", "p");
    /* Python frames win over Node frames in the same text. */
    assert_same_fp("E", "at f (/n.js:1:2)\nFile \"a\", line 1", "p", "E", "File \"a\", line 1", "p");
    /* Node: the greedy `.+` picks the last " (" that completes a frame; path has no ':'. */
    assert_same_fp("E", "    at Object.<anonymous> (x) (/app/a.js:10:5)", "p", "E", "at f (/app/a.js:10:5)",
                   "p");
    assert_same_fp("E", "at f (/app/a.js:10:5) at g (/app/b.js:20:7)", "p", "E", "at g (/app/b.js:20:7)",
                   "p");
    /* No "at " before the tail, nothing between "at " and " (", a missing column: no Node frame; the Java
     * pattern then finds the second line. */
    assert_same_fp("E", "foo (/a.js:1:2)\nat f (/a.js:1)\nat (/a.js:1:2)", "p", "E", "at x(/a.js:1)", "p");
    /* A ':' in the path (Windows drive) matches neither pattern. */
    assert_same_fp("E", "at f (C:/a.js:1:2)", "p", "E", "none", "p");
    /* Text after the closing ')' does not matter. */
    assert_same_fp("E", "at f (/a.js:2:3)x", "p", "E", "at g (/a.js:2:3)", "p");
    /* Java: no space needed before '('; Node text with a column is not a Java frame. */
    assert_same_fp("E", "\tat a.B.c(B.java:1)\n\tat a.B.d(Native Method)", "p", "E", "at x(B.java:1)", "p");
}

static void test_fingerprint_enrichment(void **state)
{
    struct ldg_log log;
    ok("\"log_type\": \"exception\", \"error_type\": \"E\", \"stack_trace\": \"no frames here\", "
       "\"platform\": \"python\"",
       &log);
    assert_string_equal(log.fingerprint, "ce256c474707803e13376c9ca629576d9f9321a770019c439187f1512f022139");
    ok("\"log_type\": \"exception\", \"error_type\": \"E\", \"stack_trace\": \"\", \"platform\": \"python\"",
       &log);
    assert_string_equal(log.fingerprint, "");
    ok("\"log_type\": \"exception\", \"error_type\": \"E\"", &log);
    assert_string_equal(log.fingerprint, "");
    ok("\"log_type\": \"console\", \"error_type\": \"E\", \"stack_trace\": \"no frames here\"", &log);
    assert_string_equal(log.fingerprint, "");
}

/* ---------------------------------------------------------------------------------------------- */

static int ts(const char *json_value, int64_t *us, int32_t *off)
{
    cJSON *v = ldg_json_parse(json_value, strlen(json_value));
    assert_non_null(v);
    err[0] = '\0';
    int r = ldg_logentry_parse_time(v, us, off, err, sizeof err);
    cJSON_Delete(v);
    return r;
}

static void ts_ok(const char *json_value, int64_t want_us, int32_t want_off)
{
    int64_t us = 0;
    int32_t off = -1;
    if (ts(json_value, &us, &off) != 0)
        fail_msg("%s: %s", json_value, err);
    if (us != want_us || off != want_off)
        fail_msg("%s: got %" PRId64 " %d, want %" PRId64 " %d", json_value, us, off, want_us, want_off);
}

static void ts_bad(const char *json_value, const char *msg)
{
    int64_t us;
    int32_t off;
    assert_int_equal(ts(json_value, &us, &off), -EINVAL);
    if (strcmp(err, msg) != 0)
        fail_msg("%s: got '%s', want '%s'", json_value, err, msg);
}

static void test_timestamp_forms(void **state)
{
    const char *invalid =
        "Field 'timestamp' must be an ISO 8601 date-time such as 2024-01-15T10:30:00Z or a Unix "
        "timestamp";
    const char *naive = "Timestamp must include a timezone offset or 'Z'";
    ts_ok("\"2024-01-15T10:30:00Z\"", NOW_US, 0);
    ts_ok("\"2024-01-15t10:30:00z\"", NOW_US, 0);
    ts_ok("\"2024-01-15 10:30:00Z\"", NOW_US, 0);
    ts_ok("\"2024-01-15T10:30Z\"", NOW_US, 0);
    ts_ok("\"2024-01-15T10:30:00+00:00\"", NOW_US, 0);
    ts_ok("\"2024-01-15T10:30:00-00:00\"", NOW_US, 0);
    ts_ok("\"2024-01-15T10:30:00+02:00\"", INT64_C(1705307400000000), 120);
    ts_ok("\"2024-01-15T10:30:00-0530\"", INT64_C(1705334400000000), -330);
    ts_ok("\"2024-01-15T10:30:00+0530\"", NOW_US - 330 * INT64_C(60000000), 330);
    /* fractions of 1..9 digits, '.' or ',', truncated (not rounded) to the µs */
    ts_ok("\"2024-01-15T10:30:00.5Z\"", NOW_US + 500000, 0);
    ts_ok("\"2024-01-15T10:30:00.12Z\"", NOW_US + 120000, 0);
    ts_ok("\"2024-01-15T10:30:00.123Z\"", NOW_US + 123000, 0);
    ts_ok("\"2024-01-15T10:30:00.1234Z\"", NOW_US + 123400, 0);
    ts_ok("\"2024-01-15T10:30:00.12345Z\"", NOW_US + 123450, 0);
    ts_ok("\"2024-01-15T10:30:00.123456Z\"", NOW_US + 123456, 0);
    ts_ok("\"2024-01-15T10:30:00.1234567Z\"", NOW_US + 123456, 0);
    ts_ok("\"2024-01-15T10:30:00.12345678Z\"", NOW_US + 123456, 0);
    ts_ok("\"2024-01-15T10:30:00.999999999Z\"", NOW_US + 999999, 0);
    ts_ok("\"2024-01-15T10:30:00,25+01:00\"", NOW_US + 250000 - 3600 * INT64_C(1000000), 60);
    ts_ok("\"2024-01-15 10:30:00.5Z\"", INT64_C(1705314600500000), 0);
    /* calendar edges */
    ts_ok("\"2024-02-29T00:00:00Z\"", INT64_C(1709164800000000), 0);
    ts_ok("\"1970-01-01T00:00:00Z\"", 0, 0);
    ts_ok("\"0001-01-01T00:00:00Z\"", INT64_C(-62135596800000000), 0);
    ts_ok("\"9999-12-31T23:59:59.999999Z\"", INT64_C(253402300799999999), 0);
    ts_ok("\"1969-12-31T23:59:59.5Z\"", -500000, 0);
    /* Unix numbers: seconds; milliseconds above 2e10; fractions; numeric strings (pydantic) */
    ts_ok("1705314600", NOW_US, 0);
    ts_ok("1705314600.25", NOW_US + 250000, 0);
    ts_ok("1705314600123", NOW_US + 123000, 0);
    ts_ok("1705314600123.5", NOW_US + 123500, 0);
    ts_ok("20000000000", INT64_C(20000000000000000), 0); /* exactly 2e10: still seconds */
    ts_ok("20000000001", INT64_C(20000000001000), 0);    /* above: milliseconds */
    ts_ok("0", 0, 0);
    ts_ok("-1.5", -1500000, 0);
    ts_ok("\"1705314600\"", NOW_US, 0);
    ts_ok("\"1705314600.5\"", NOW_US + 500000, 0);

    ts_bad("\"2024-01-15T10:30:00\"", naive);
    ts_bad("\"2024-01-15T10:30:00.123456\"", naive);
    ts_bad("\"2024-01-15 10:30\"", naive);
    ts_bad("\"2024-01-15\"", naive);
    ts_bad("\"\"", invalid);
    ts_bad("\"yesterday\"", invalid);
    ts_bad("\"2024-01-15T10:30:00.1234567890Z\"", invalid); /* 10 fraction digits */
    ts_bad("\"2024-01-15T10:30:00.Z\"", invalid);
    ts_bad("\"2024-02-30T10:30:00Z\"", invalid);
    ts_bad("\"2023-02-29T10:30:00Z\"", invalid);
    ts_bad("\"2024-13-01T10:30:00Z\"", invalid);
    ts_bad("\"2024-01-15T24:00:00Z\"", invalid);
    ts_bad("\"2024-01-15T10:60:00Z\"", invalid);
    ts_bad("\"2024-01-15T10:30:60Z\"", invalid);
    ts_bad("\"2024-01-15T10:30:00+24:00\"", invalid);
    ts_bad("\"2024-01-15T10:30:00+02\"", invalid);
    ts_bad("\"2024-01-15T10:30:00+2:00\"", invalid);
    ts_bad("\"2024-01-15T10:30:00Z \"", invalid);
    ts_bad("\"2024-01-15X10:30:00Z\"", invalid);
    ts_bad("\"24-01-15T10:30:00Z\"", invalid);
    ts_bad("\"0000-01-01T00:00:00Z\"", invalid);
    ts_bad("\"0001-01-01T00:00:00+00:01\"", "Field 'timestamp' is out of range (years 1 to 9999)");
    ts_bad("\"1e9\"", invalid);
    ts_bad("1e300", "Field 'timestamp' is out of range (years 1 to 9999)");
    ts_bad("true", "Field 'timestamp' must be an ISO 8601 date-time string or a Unix timestamp");
    ts_bad("null", "Field 'timestamp' must be an ISO 8601 date-time string or a Unix timestamp");
    ts_bad("{}", "Field 'timestamp' must be an ISO 8601 date-time string or a Unix timestamp");
    int64_t us;
    int32_t off;
    assert_int_equal(ldg_logentry_parse_time(NULL, &us, &off, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'timestamp' is required");
}

static void test_timestamp_in_log(void **state)
{
    struct ldg_log log;
    const char *future = "Timestamp cannot be more than 5 minutes in the future";
    /* 4:59 and exactly 5:00 ahead are accepted; 5:00.000001 is not. */
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T10:34:59Z\", \"level\": \"info\"}", &log), 0);
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T10:35:00Z\", \"level\": \"info\"}", &log), 0);
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T10:35:00.000001Z\", \"level\": \"info\"}", &log),
                     -EINVAL);
    assert_string_equal(err, future);
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T12:35:00+02:00\", \"level\": \"info\"}", &log), 0);
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T12:35:01+02:00\", \"level\": \"info\"}", &log),
                     -EINVAL);
    assert_string_equal(err, future);
    assert_int_equal(parse("{\"timestamp\": 1705314899, \"level\": \"info\"}", &log), 0);
    assert_int_equal(parse("{\"timestamp\": 1705315000000, \"level\": \"info\"}", &log), -EINVAL);
    assert_string_equal(err, future);
    /* no lower bound */
    assert_int_equal(parse("{\"timestamp\": \"1990-01-01T00:00:00Z\", \"level\": \"info\"}", &log), 0);
    assert_int_equal(log.ts_us, INT64_C(631152000000000));
    assert_int_equal(parse("{\"level\": \"info\"}", &log), -EINVAL);
    assert_string_equal(err, "Field 'timestamp' is required");
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T10:00:00\", \"level\": \"info\"}", &log), -EINVAL);
    assert_string_equal(err, "Timestamp must include a timezone offset or 'Z'");
    /* the offset is kept */
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T11:00:00+01:00\", \"level\": \"info\"}", &log), 0);
    assert_int_equal(log.ts_us, NOW_US - 30 * INT64_C(60000000));
    assert_int_equal(log.ts_offset_min, 60);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_defaults_and_enrichment(void **state)
{
    struct ldg_log log;
    assert_int_equal(
        parse("{\"timestamp\": \"2024-01-15T10:00:00Z\", \"level\": \"debug\", \"unknown\": [1, {}], "
              "\"network\": true}",
              &log),
        0);
    assert_int_equal(log.project_id, 7);
    assert_int_equal(log.ingested_us, NOW_US);
    assert_int_equal(log.ts_us, NOW_US - 30 * INT64_C(60000000));
    assert_int_equal(log.ts_offset_min, 0);
    assert_string_equal(log.level, "debug");
    assert_string_equal(log.log_type, "logger");
    assert_string_equal(log.importance, "standard");
    assert_null(log.message.p);
    assert_null(log.error_type.p);
    assert_null(log.error_message.p);
    assert_null(log.stack_trace.p);
    assert_null(log.environment.p);
    assert_null(log.release.p);
    assert_null(log.sdk_version.p);
    assert_null(log.platform.p);
    assert_null(log.platform_version.p);
    assert_null(log.attributes.p);
    assert_string_equal(log.fingerprint, "");

    /* every optional field null */
    ok("\"message\": null, \"error_type\": null, \"error_message\": null, \"stack_trace\": null, "
       "\"environment\": null, \"release\": null, \"attributes\": null, \"sdk_version\": null, \"platform\": "
       "null, "
       "\"platform_version\": null",
       &log);
    assert_null(log.message.p);
    assert_null(log.attributes.p);
    assert_null(log.attributes_tree);

    /* every field set */
    ok("\"log_type\": \"database\", \"importance\": \"critical\", \"message\": \"m\", \"error_type\": \"T\", "
       "\"error_message\": \"\", \"stack_trace\": \"s\", \"environment\": \"prod\", \"release\": \"v1\", "
       "\"attributes\": {\"a\": [1, 2.5, \"x\"], \"b\": {\"c\": null}}, \"sdk_version\": \"1.2.2\", "
       "\"platform\": \"python\", \"platform_version\": \"3.11.2\"",
       &log);
    assert_string_equal(log.log_type, "database");
    assert_string_equal(log.importance, "critical");
    assert_int_equal(log.message.n, 1);
    assert_memory_equal(log.message.p, "m", 1);
    assert_non_null(log.error_message.p);
    assert_int_equal(log.error_message.n, 0);
    assert_int_equal(log.platform_version.n, 6);
    /* the attributes stay a tree until their text is asked for */
    assert_null(log.attributes.p);
    assert_true(cJSON_IsObject(log.attributes_tree));
    ldg_logentry_attributes_text(&log, &arena);
    assert_int_equal(log.attributes.n, strlen("{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}}"));
    assert_memory_equal(log.attributes.p, "{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}}", log.attributes.n);
    assert_string_equal(log.fingerprint, ""); /* not an exception */

    /* empty attributes object is stored as {} */
    ok("\"attributes\": {}", &log);
    ldg_logentry_attributes_text(&log, &arena);
    assert_int_equal(log.attributes.n, 2);

    /* duplicate members: the last wins, as in Python */
    ok("\"level\": \"error\"", &log);
    assert_string_equal(log.level, "error");
}

static void test_enums(void **state)
{
    struct ldg_log log;
    const char *lv = "Field 'level' must be one of: debug, info, warning, error, critical";
    const char *lt =
        "Field 'log_type' must be one of: console, logger, exception, database, endpoint, custom";
    const char *im = "Field 'importance' must be one of: critical, high, standard, low";
    static const char *const levels[] = {"debug", "info", "warning", "error", "critical"};
    static const char *const types[] = {"console", "logger", "database", "custom"};
    static const char *const imps[] = {"critical", "high", "standard", "low"};
    char buf[128];
    for (size_t i = 0; i < LDG_ARRAY_SIZE(levels); i++) {
        snprintf(buf, sizeof buf, "\"level\": \"%s\"", levels[i]);
        ok(buf, &log);
        assert_string_equal(log.level, levels[i]);
    }
    for (size_t i = 0; i < LDG_ARRAY_SIZE(types); i++) {
        snprintf(buf, sizeof buf, "\"log_type\": \"%s\"", types[i]);
        ok(buf, &log);
        assert_string_equal(log.log_type, types[i]);
    }
    for (size_t i = 0; i < LDG_ARRAY_SIZE(imps); i++) {
        snprintf(buf, sizeof buf, "\"importance\": \"%s\"", imps[i]);
        ok(buf, &log);
        assert_string_equal(log.importance, imps[i]);
    }
    bad("\"level\": \"INFO\"", lv);
    bad("\"level\": \"warn\"", lv);
    bad("\"level\": null", lv);
    bad("\"level\": 3", lv);
    bad("\"log_type\": \"network\"", lt);
    bad("\"log_type\": \"\"", lt);
    bad("\"log_type\": null", lt);
    bad("\"log_type\": [\"console\"]", lt);
    bad("\"importance\": \"medium\"", im);
    bad("\"importance\": null", im);
    bad("\"importance\": true", im);
    assert_int_equal(parse("{\"timestamp\": \"2024-01-15T10:00:00Z\"}", &log), -EINVAL);
    assert_string_equal(err, "Field 'level' is required");
    assert_int_equal(parse("[1]", &log), -EINVAL);
    assert_string_equal(err, "Log entry must be a JSON object");
}

static void test_string_fields(void **state)
{
    static const struct {
        const char *name;
        size_t max;
    } fields[] = {
        {"message", 10000},     {"error_type", 255}, {"error_message", 5000},
        {"stack_trace", 50000}, {"environment", 20}, {"release", 100},
        {"sdk_version", 20},    {"platform", 50},    {"platform_version", 50},
    };
    /* Lengths in code points: 2-byte é, 3-byte €, 4-byte 😀 (written raw and as a \u surrogate pair). */
    static const char *const units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "\\ud83d\\ude00"};
    struct ldg_log log;
    char msg[128];
    for (size_t f = 0; f < LDG_ARRAY_SIZE(fields); f++) {
        for (size_t u = 0; u < LDG_ARRAY_SIZE(units); u++) {
            if (parse_long(fields[f].name, units[u], fields[f].max, "", &log) != 0)
                fail_msg("%s x%zu of %s: %s", fields[f].name, fields[f].max, units[u], err);
            assert_int_equal(parse_long(fields[f].name, units[u], fields[f].max + 1, "", &log), -EINVAL);
            snprintf(msg, sizeof msg, "Field '%s' must be at most %zu characters", fields[f].name,
                     fields[f].max);
            assert_string_equal(err, msg);
        }
        snprintf(msg, sizeof msg, "\"%s\": 5", fields[f].name);
        char want[128];
        snprintf(want, sizeof want, "Field '%s' must be a string", fields[f].name);
        bad(msg, want);
        snprintf(msg, sizeof msg, "\"%s\": {}", fields[f].name);
        bad(msg, want);
        snprintf(msg, sizeof msg, "\"%s\": \"\"", fields[f].name);
        ok(msg, &log);
    }
    /* the slice keeps the bytes */
    assert_int_equal(parse_long("message", "\xc3\xa9", 3, "", &log), 0);
    assert_int_equal(log.message.n, 6);
    assert_memory_equal(log.message.p, "\xc3\xa9\xc3\xa9\xc3\xa9", 6);
}

/* ---------------------------------------------------------------------------------------------- */

static size_t pylen(const char *json)
{
    cJSON *v = ldg_json_parse(json, strlen(json));
    assert_non_null(v);
    size_t n = ldg_logentry_pyjson_len(v, SIZE_MAX);
    cJSON_Delete(v);
    return n;
}

/* Attributes reach the queue codec, which carries LDG_JSON_MAX_DEPTH (31) levels of nesting. */
static void test_attributes_depth(void **state)
{
    struct ldg_log log;
    char extra[512];
    for (int depth = 30; depth <= 33; depth++) {
        /* attributes object = level 1, then depth-1 nested arrays */
        int n = snprintf(extra, sizeof extra, "\"attributes\": {\"a\": ");
        for (int i = 1; i < depth; i++)
            extra[n++] = '[';
        for (int i = 1; i < depth; i++)
            extra[n++] = ']';
        snprintf(extra + n, sizeof extra - (size_t)n, "}");
        if (depth <= 31)
            ok(extra, &log);
        else
            bad(extra, "Field 'attributes' must not nest deeper than 31 levels");
    }
}

/* Parse a log whose attributes are {"k": "<n copies of unit>"}. */
static int parse_attr_k(const char *unit, size_t n, struct ldg_log *log)
{
    char *v = repeat(unit, n);
    size_t cap = strlen(v) + 64;
    char *extra = malloc(cap);
    snprintf(extra, cap, ", \"attributes\": {\"k\": \"%s\"}", v);
    int rc = parse_long("x", "", 0, extra, log);
    free(v);
    free(extra);
    return rc;
}
static void test_attributes(void **state)
{
    struct ldg_log log;
    /* len(json.dumps(...)) as computed by CPython 3.11 */
    assert_int_equal(pylen("{}"), 2);
    assert_int_equal(pylen("[0,-1,9,10,99,100,-1000,9007199254740991,-123456789012345]"),
                     strlen("[0, -1, 9, 10, 99, 100, -1000, 9007199254740991, -123456789012345]"));
    assert_int_equal(pylen("{\"a\":1,\"b\":2}"), strlen("{\"a\": 1, \"b\": 2}"));
    assert_int_equal(
        pylen("{\"a\":1,\"b\":[true,false,null,\"x\"],\"c\":{\"d\":\"\xc3\xa9\xf0\x9f\x98\x80\\n\\u0001"
              "\x7f\\\"\\\\\"},\"e\":1.5,\"f\":1e-05,\"g\":-0.25,\"h\":12345678901234567890,\"i\":{},"
              "\"j\":[]}"),
        170);
    assert_int_equal(pylen("{\"k\":[0.1, 100, -7, 3.141592653589793, 1e-7, 0.0001, 123456.789]}"),
                     strlen("{\"k\": [0.1, 100, -7, 3.141592653589793, 1e-07, 0.0001, 123456.789]}"));
    /* the bound check: over only when the exact length is (numbers counted at their longest repr
     * first): 10,000 x 0.5 is 10,000 * 5 - 2 + 2 = 50,000 exactly, 260,000 at the bound */
    {
        size_t cap = 10000 * 5 + 16;
        char *big = malloc(cap);
        size_t n = (size_t)snprintf(big, cap, "[0.5");
        for (int i = 1; i < 10000; i++)
            n += (size_t)snprintf(big + n, cap - n, ",0.5");
        snprintf(big + n, cap - n, "]");
        cJSON *v = ldg_json_parse(big, strlen(big));
        assert_non_null(v);
        assert_int_equal(ldg_logentry_pyjson_len(v, SIZE_MAX), 10000 * 5);
        assert_false(ldg_logentry_pyjson_over(v, 50000));
        assert_true(ldg_logentry_pyjson_over(v, 49999));
        cJSON_Delete(v);
        free(big);
    }
    assert_int_equal(pylen("{\"\\b\\f\\t\\r\\u001f\":\"\\u00e9\"}"),
                     strlen("{\"\\b\\f\\t\\r\\u001f\": \"\\u00e9\"}"));

    /* boundary: {"k": "<n x a>"} is 9 + n characters */
    assert_int_equal(parse_long("x", "", 0, ", \"attributes\": {\"k\": \"\"}", &log), 0);
    assert_int_equal(parse_attr_k("a", 99991, &log), 0);
    ldg_logentry_attributes_text(&log, &arena);
    assert_int_equal(log.attributes.n, 99991 + 8); /* stored compactly: {"k":"…"} */
    assert_memory_equal(log.attributes.p, "{\"k\":\"aaa", 9);
    assert_int_equal(parse_attr_k("a", 99992, &log), -EINVAL);
    assert_string_equal(err, "Attributes JSONB cannot exceed 100000 bytes");
    /* non-ASCII counts as its \uXXXX escape: 9 + 6 * 16665 = 99999 ok, one more é = 100005 */
    assert_int_equal(parse_attr_k("\xc3\xa9", 16665, &log), 0);
    assert_int_equal(parse_attr_k("\xc3\xa9", 16666, &log), -EINVAL);
    assert_string_equal(err, "Attributes JSONB cannot exceed 100000 bytes");

    bad("\"attributes\": []", "Field 'attributes' must be an object");
    bad("\"attributes\": [1]", "Field 'attributes' must be an object");
    bad("\"attributes\": \"x\"", "Field 'attributes' must be an object");
    bad("\"attributes\": 1", "Field 'attributes' must be an object");
    bad("\"attributes\": true", "Field 'attributes' must be an object");
}

static void test_exception_rules(void **state)
{
    struct ldg_log log;
    const char *need = "error_type is required when log_type is 'exception'";
    bad("\"log_type\": \"exception\"", need);
    bad("\"log_type\": \"exception\", \"error_type\": null", need);
    bad("\"log_type\": \"exception\", \"error_type\": \"\", \"error_message\": \"m\"", need);
    /* D6: error_message may be missing, null or empty */
    ok("\"log_type\": \"exception\", \"error_type\": \"RuntimeError\"", &log);
    assert_null(log.error_message.p);
    ok("\"log_type\": \"exception\", \"error_type\": \"RuntimeError\", \"error_message\": \"\"", &log);
    ok("\"log_type\": \"exception\", \"error_type\": \"RuntimeError\", \"error_message\": null", &log);
    /* error_type is only required for exceptions */
    ok("\"log_type\": \"console\", \"error_type\": \"\"", &log);
    /* per-field errors come first */
    bad("\"log_type\": \"exception\", \"level\": \"nope\"",
        "Field 'level' must be one of: debug, info, warning, "
        "error, critical");
}

static void test_endpoint_rules(void **state)
{
    struct ldg_log log;
    const char *need_attrs = "attributes field is required when log_type is 'endpoint'";
    const char *need_ep =
        "attributes.endpoint is required when log_type is 'endpoint'. Must include: method, "
        "path, status_code, duration_ms";
    bad("\"log_type\": \"endpoint\"", need_attrs);
    bad("\"log_type\": \"endpoint\", \"attributes\": null", need_attrs);
    bad("\"log_type\": \"endpoint\", \"attributes\": {}", need_attrs);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"x\": 1}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": null}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": {}}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": \"\"}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": 0}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": false}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": []}", need_ep);
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": {\"method\": \"GET\"}}",
        "attributes.endpoint missing required fields: path, status_code, duration_ms");
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": {\"path\": 1, \"duration_ms\": 1}}",
        "attributes.endpoint missing required fields: method, status_code");
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": {\"method\": 1, \"path\": 1, "
        "\"status_code\": 1}}",
        "attributes.endpoint missing required fields: duration_ms");
    bad("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": true}",
        "attributes.endpoint missing required fields: method, path, status_code, duration_ms");
    /* presence only, not types; the SDK's shape with extras */
    ok("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": {\"method\": null, \"path\": null, "
       "\"status_code\": null, \"duration_ms\": null}}",
       &log);
    ok("\"log_type\": \"endpoint\", \"level\": \"info\", \"importance\": \"standard\", \"message\": \"GET "
       "/users/{id} "
       "- 200 (12.34ms)\", \"attributes\": {\"endpoint\": {\"method\": \"GET\", \"path\": \"/users/{id}\", "
       "\"status_code\": 200, \"duration_ms\": 12.34, \"query_params\": {\"q\": \"x\"}}, \"user_agent\": "
       "\"ua\", "
       "\"ip_address\": \"127.0.0.1\"}",
       &log);
    assert_string_equal(log.log_type, "endpoint");
    /* Python's `in` on a list / string */
    ok("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": [\"method\", \"path\", \"status_code\", "
       "\"duration_ms\"]}",
       &log);
    ok("\"log_type\": \"endpoint\", \"attributes\": {\"endpoint\": \"method path status_code duration_ms\"}",
       &log);
}

/* The v1 SDK's entries (clients.md §1.3). */
static void test_sdk_shapes(void **state)
{
    struct ldg_log log;
    /* log_exception(RuntimeError()): no message, no error_message */
    assert_int_equal(
        parse("{\"timestamp\": \"2024-01-15T10:29:59.123456Z\", \"level\": \"error\", \"log_type\": "
              "\"exception\", \"importance\": \"high\", \"error_type\": \"RuntimeError\", "
              "\"stack_trace\": \"Traceback (most recent call last):\\n  File \\\"/app/main.py\\\", "
              "line 10, in <module>\\n    raise RuntimeError()\\nRuntimeError\\n\", "
              "\"sdk_version\": \"1.2.2\", \"platform\": \"python\", \"platform_version\": \"3.11.2\"}",
              &log),
        0);
    assert_int_equal(log.ts_us, NOW_US - 1000000 + 123456);
    assert_null(log.message.p);
    assert_null(log.error_message.p);
    assert_int_equal(strlen(log.fingerprint), 64);
    char fp[65];
    const char *st = "  File \"/app/main.py\", line 10, in <module>";
    ldg_logentry_fingerprint("RuntimeError", st, strlen(st), "python", fp);
    assert_string_equal(log.fingerprint, fp);
    /* microsecond 0: no fraction; log_info with attributes */
    assert_int_equal(
        parse("{\"timestamp\": \"2024-01-15T10:29:59Z\", \"level\": \"info\", \"log_type\": \"console\", "
              "\"importance\": \"standard\", \"message\": \"hello\", \"attributes\": {\"user_id\": 1}, "
              "\"sdk_version\": \"1.2.2\", \"platform\": \"python\"}",
              &log),
        0);
    assert_int_equal(log.ts_us, NOW_US - 1000000);
    /* httpx < 0.28: spaced separators, \u escapes with surrogate pairs */
    assert_int_equal(
        parse("{\"timestamp\": \"2024-01-15T10:29:59.000001Z\", \"level\": \"info\", \"log_type\": "
              "\"console\", \"importance\": \"standard\", \"message\": \"caf\\u00e9 \\ud83d\\ude00\"}",
              &log),
        0);
    assert_int_equal(log.message.n, strlen("caf\xc3\xa9 \xf0\x9f\x98\x80"));
    assert_memory_equal(log.message.p, "caf\xc3\xa9 \xf0\x9f\x98\x80", log.message.n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fingerprint_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_enrichment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_and_enrichment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attributes_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exception_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoint_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_shapes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
