#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>

#include "core/json.h"
#include "ingest/otlp.pb-c.h"
#include "ingest/otlplog.h"
#include "unit.h"

#define NOW_US INT64_C(1705314600000000) /* 2024-01-15T10:30:00Z */

static struct ldg_arena arena;
static char arena_first[4096];
static char err[512];

static int setup(void **state)
{
    (void)state;
    ldg_arena_init(&arena, arena_first, sizeof arena_first);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ldg_arena_free(&arena);
    return 0;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = ldg_json_member(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *path(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = ldg_json_member(ldg_json_member(o, "attributes"), a);
    return b ? ldg_json_member(x, b) : x;
}

static int decode_json(const char *json, struct ldg_otlp_logs *out)
{
    err[0] = '\0';
    return ldg_otlp_logs_decode(LDG_OTLP_JSON, json, strlen(json), NOW_US, 1000, &arena, out, err, sizeof err);
}

static void test_json_mapping(void **state)
{
    (void)state;
    struct ldg_otlp_logs l;
    assert_int_equal(decode_json("{\"resourceLogs\":[{\"resource\":{\"attributes\":["
                                 "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"shop\"}},"
                                 "{\"key\":\"service.version\",\"value\":{\"stringValue\":\"1.2\"}},"
                                 "{\"key\":\"deployment.environment\",\"value\":{\"stringValue\":\"prod\"}}]},"
                                 "\"scopeLogs\":[{\"logRecords\":["
                                 "{\"timeUnixNano\":\"1705314590123456789\",\"severityNumber\":17,"
                                 "\"body\":{\"stringValue\":\"boom\"},\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                                 "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"KeyError\"}},"
                                 "{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/x\"}},"
                                 "{\"key\":\"http\",\"value\":{\"stringValue\":\"flat\"}}]},"
                                 "{\"severityText\":\"warn\",\"unknown\":1,"
                                 "\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"POST\"}},"
                                 "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"201\"}}]}"
                                 "]}]}]}",
                                 &l),
                     0);
    assert_int_equal(l.n, 2);
    const cJSON *a = l.logs[0], *b = l.logs[1];
    assert_non_null(a);
    assert_string_equal(str(a, "timestamp"), "2024-01-15T10:29:50.123456Z");
    assert_string_equal(str(a, "level"), "error");
    assert_string_equal(str(a, "log_type"), "exception");
    assert_string_equal(str(a, "importance"), "high");
    assert_string_equal(str(a, "error_type"), "KeyError");
    assert_string_equal(str(a, "message"), "boom");
    assert_string_equal(str(a, "environment"), "prod");
    assert_string_equal(str(a, "release"), "1.2");
    assert_string_equal(path(a, "service", "name")->valuestring, "shop");
    assert_string_equal(path(a, "trace_id", NULL)->valuestring, "0102030405060708090a0b0c0d0e0f10");
    assert_string_equal(path(a, "http", "route")->valuestring, "/x");
    assert_null(path(a, "http.route", NULL));
    /* the scalar "http" comes after "http.route" made "http" an object: the first one wins */
    assert_true(cJSON_IsObject(path(a, "http", NULL)));

    assert_non_null(b);
    assert_string_equal(str(b, "level"), "warning");
    assert_string_equal(str(b, "log_type"), "endpoint");
    assert_string_equal(str(b, "timestamp"), "2024-01-15T10:30:00Z");
    const cJSON *ep = path(b, "endpoint", NULL);
    assert_string_equal(str(ep, "method"), "POST");
    assert_int_equal(ldg_json_member(ep, "status_code")->valueint, 201);
    assert_true(cJSON_IsNull(ldg_json_member(ep, "path")));
}

static void test_json_errors(void **state)
{
    (void)state;
    struct ldg_otlp_logs l;
    assert_int_equal(decode_json("[]", &l), -EINVAL);
    assert_int_equal(decode_json("{\"resourceLogs\":{}}", &l), -EINVAL);
    assert_int_equal(decode_json("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"spanId\":\"abc\"}]}]}]}", &l),
                     -EINVAL);
    assert_non_null(strstr(err, "spanId"));
    assert_int_equal(decode_json("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":\"NOPE\"}]}]}]}", &l),
                     -EINVAL);
    assert_int_equal(decode_json("{}", &l), 0);
    assert_int_equal(l.n, 0);
    /* an unknown name is quoted up to 40 bytes, never half a character: the 2-byte "é" at bytes
     * 39-40 is left out whole (a Status message must be valid UTF-8) */
    assert_int_equal(decode_json("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":"
                                 "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u00e9B\"}]}]}]}",
                                 &l),
                     -EINVAL);
    assert_string_equal(err, "Unknown severityNumber 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'");
    assert_int_equal(decode_json("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":"
                                 "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u00e9B\"}]}]}]}",
                                 &l),
                     -EINVAL);
    assert_string_equal(err, "Unknown severityNumber 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xc3\xa9'");
    /* the same for the enums of spans and metrics */
    static const char span[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":"
        "\"SPAN_KIND\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\\u4e2d\"}]}]}]}";
    struct ldg_buf copy;
    ldg_buf_init(&copy);
    struct ldg_otlp_rows rows;
    assert_int_equal(ldg_otlp_spans_decode(LDG_OTLP_JSON, span, strlen(span), NOW_US, 0, 7, 1000, &arena,
                                           &copy, &rows, err, sizeof err),
                     -EINVAL);
    /* "SPAN_KIND" (9 bytes) and ten of the eleven 3-byte characters: the eleventh spans bytes 39-41 */
    assert_string_equal(err, "Unknown kind 'SPAN_KIND"
                             "\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad"
                             "\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad'");
    ldg_buf_free(&rows.message);
    ldg_buf_free(&copy);
}

static size_t pack_request(const char *body_text, uint8_t *out, int nest)
{
    Ldg__Otlp__AnyValue leaf = LDG__OTLP__ANY_VALUE__INIT, arrv[64];
    Ldg__Otlp__ArrayValue arr[64];
    Ldg__Otlp__AnyValue *one[64];
    leaf.value_case = LDG__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    leaf.string_value = (char *)body_text;
    Ldg__Otlp__AnyValue *cur = &leaf;
    for (int i = 0; i < nest; i++) {
        ldg__otlp__array_value__init(&arr[i]);
        ldg__otlp__any_value__init(&arrv[i]);
        one[i] = cur;
        arr[i].n_values = 1;
        arr[i].values = &one[i];
        arrv[i].value_case = LDG__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
        arrv[i].array_value = &arr[i];
        cur = &arrv[i];
    }
    Ldg__Otlp__LogRecord rec = LDG__OTLP__LOG_RECORD__INIT;
    Ldg__Otlp__LogRecord *recs[1] = {&rec};
    rec.body = cur;
    rec.severity_number = 9;
    uint8_t span[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    rec.span_id.len = 8;
    rec.span_id.data = span;
    Ldg__Otlp__ScopeLogs sl = LDG__OTLP__SCOPE_LOGS__INIT;
    Ldg__Otlp__ScopeLogs *sls[1] = {&sl};
    sl.n_log_records = 1;
    sl.log_records = recs;
    Ldg__Otlp__ResourceLogs rl = LDG__OTLP__RESOURCE_LOGS__INIT;
    Ldg__Otlp__ResourceLogs *rls[1] = {&rl};
    rl.n_scope_logs = 1;
    rl.scope_logs = sls;
    Ldg__Otlp__ExportLogsServiceRequest req = LDG__OTLP__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.n_resource_logs = 1;
    req.resource_logs = rls;
    return ldg__otlp__export_logs_service_request__pack(&req, out);
}

static void test_protobuf(void **state)
{
    (void)state;
    uint8_t buf[4096];
    struct ldg_otlp_logs l;
    size_t n = pack_request("hello", buf, 0);
    assert_int_equal(ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, (char *)buf, n, NOW_US, 1000, &arena, &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(str(l.logs[0], "message"), "hello");
    assert_string_equal(str(l.logs[0], "level"), "info");
    assert_string_equal(path(l.logs[0], "span_id", NULL)->valuestring, "0102030405060708");
    /* nested values: within the limit kept as JSON text of the body, beyond it undecodable */
    n = pack_request("x", buf, 3);
    assert_int_equal(ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, (char *)buf, n, NOW_US, 1000, &arena, &l, err, sizeof err), 0);
    assert_string_equal(str(l.logs[0], "message"), "[[[\"x\"]]]");
    n = pack_request("x", buf, LDG_OTLP_MAX_DEPTH + 1);
    assert_int_equal(ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, (char *)buf, n, NOW_US, 1000, &arena, &l, err, sizeof err),
                     -EINVAL);
    /* truncated */
    n = pack_request("hello", buf, 0);
    assert_int_equal(ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, (char *)buf, n - 1, NOW_US, 1000, &arena, &l, err, sizeof err),
                     -EINVAL);
    /* invalid UTF-8 in the body: that record is not mapped */
    n = pack_request("bad \xff", buf, 0);
    assert_int_equal(ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, (char *)buf, n, NOW_US, 1000, &arena, &l, err, sizeof err), 0);
    assert_null(l.logs[0]);
    assert_non_null(strstr(l.errs[0], "UTF-8"));
    /* record cap */
    n = pack_request("hello", buf, 0);
    assert_int_equal(ldg_otlp_logs_decode(LDG_OTLP_PROTOBUF, (char *)buf, n, NOW_US, 0, &arena, &l, err, sizeof err), -EINVAL);
}

static void test_responses(void **state)
{
    (void)state;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_otlp_response(LDG_OTLP_JSON, LDG_OTLP_LOGS, 0, NULL, &b);
    assert_string_equal(text(&b), "{}");
    ldg_buf_reset(&b);
    ldg_otlp_response(LDG_OTLP_JSON, LDG_OTLP_LOGS, 2, "a \"b\"", &b);
    assert_string_equal(text(&b), "{\"partialSuccess\":{\"rejectedLogRecords\":\"2\",\"errorMessage\":\"a \\\"b\\\"\"}}");
    ldg_buf_reset(&b);
    ldg_otlp_response(LDG_OTLP_PROTOBUF, LDG_OTLP_LOGS, 0, "", &b);
    assert_int_equal(ldg_buf_size(&b), 0);
    ldg_otlp_response(LDG_OTLP_PROTOBUF, LDG_OTLP_LOGS, 3, "m", &b);
    assert_memory_equal(ldg_buf_head(&b), "\x0a\x05\x08\x03\x12\x01m", 7);
    ldg_buf_reset(&b);
    ldg_otlp_status(LDG_OTLP_PROTOBUF, 429, "slow", &b);
    assert_memory_equal(ldg_buf_head(&b), "\x08\x08\x12\x04slow", 8);
    ldg_buf_reset(&b);
    ldg_otlp_status(LDG_OTLP_JSON, 503, "x", &b);
    assert_string_equal(text(&b), "{\"code\":14,\"message\":\"x\"}");
    ldg_buf_free(&b);
    assert_int_equal(ldg_otlp_content_type("application/x-protobuf", 22), LDG_OTLP_PROTOBUF);
    assert_int_equal(ldg_otlp_content_type("Application/JSON; charset=utf-8", 31), LDG_OTLP_JSON);
    assert_int_equal(ldg_otlp_content_type("text/plain", 10), -1);
    assert_int_equal(ldg_otlp_content_type(NULL, 0), -1);
}

static void test_spans(void **state)
{
    (void)state;
    static const char body[] =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
        "\"api\"}}]},\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"1112131415161718\",\"name\":\"GET\\t/x\","
        "\"kind\":\"SPAN_KIND_SERVER\",\"startTimeUnixNano\":\"1705314590000000000\",\"endTimeUnixNano\":"
        "\"1705314590250000000\",\"status\":{\"code\":2,\"message\":\"bad\"},"
        "\"attributes\":[{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/x\"}}],"
        "\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"1705314590100000000\",\"attributes\":["
        "{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"E\"}}]}]},"
        "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"1112131415161718\",\"startTimeUnixNano\":1}"
        "]}]}]}";
    struct ldg_buf copy;
    ldg_buf_init(&copy);
    struct ldg_otlp_rows out;
    assert_int_equal(ldg_otlp_spans_decode(LDG_OTLP_JSON, body, strlen(body), NOW_US, 0, 7, 1000, &arena, &copy, &out, err,
                                           sizeof err),
                     0);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.rows, 1);
    assert_int_equal(out.rejected, 1);
    assert_non_null(strstr(text(&out.message), "Span 1: trace_id"));
    assert_string_equal(text(&copy),
                        "7\t0102030405060708090a0b0c0d0e0f10\t1112131415161718\t\\N\tGET\\t/x\t2\tapi\t"
                        "2024-01-15T10:29:50Z\t250000\t2\tbad\t{\"http\":{\"route\":\"/x\"}}\t"
                        "[{\"name\":\"exception\",\"time\":\"2024-01-15T10:29:50.100000Z\",\"attributes\":{\"exception.type\":"
                        "\"E\"}}]\n");
    assert_int_equal(out.nexc, 1);
    assert_string_equal(str(out.exc_logs[0], "log_type"), "exception");
    assert_string_equal(str(out.exc_logs[0], "error_type"), "E");
    assert_string_equal(str(out.exc_logs[0], "message"), "GET\t/x");
    assert_string_equal(path(out.exc_logs[0], "trace_id", NULL)->valuestring, "0102030405060708090a0b0c0d0e0f10");
    ldg_buf_free(&out.message);
    ldg_buf_free(&copy);
}

static void test_metrics(void **state)
{
    (void)state;
    static const char body[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"g\",\"unit\":\"1\",\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"1705314590000000000\","
        "\"asDouble\":\"NaN\",\"attributes\":[{\"key\":\"a.b\",\"value\":{\"intValue\":3}}]}]}},"
        "{\"name\":\"h\",\"histogram\":{\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_DELTA\",\"dataPoints\":["
        "{\"timeUnixNano\":\"1705314590000000000\",\"count\":\"3\",\"sum\":6,\"bucketCounts\":[\"1\",2],"
        "\"explicitBounds\":[2.5],\"min\":1,\"max\":3}]}},"
        "{\"name\":\"e\",\"exponentialHistogram\":{\"dataPoints\":[{},{}]}}"
        "]}]}]}";
    struct ldg_buf copy;
    ldg_buf_init(&copy);
    struct ldg_otlp_rows out;
    assert_int_equal(ldg_otlp_metrics_decode(LDG_OTLP_JSON, body, strlen(body), NOW_US, 0, 7, 1000, &arena, &copy, &out,
                                             err, sizeof err),
                     0);
    assert_int_equal(out.n, 4);
    assert_int_equal(out.rows, 2);
    assert_int_equal(out.rejected, 2);
    assert_non_null(strstr(text(&out.message), "Data point 2: exponential histograms are not stored"));
    assert_string_equal(text(&copy),
                        "7\tg\tgauge\t1\t0\tf\t\\N\t2024-01-15T10:29:50Z\t\\N\tNaN\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
                        "{\"a.b\":3}\n"
                        "7\th\thistogram\t\\N\t1\tf\t\\N\t2024-01-15T10:29:50Z\t\\N\t\\N\t3\t6\t1\t3\t{2.5}\t{1,2}\t\\N\n");
    ldg_buf_free(&out.message);
    ldg_buf_free(&copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protobuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
