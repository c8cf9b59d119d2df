/*
 * test_qeval.c: the in-memory evaluator of the search language against a table of logs ×
 * queries. Every expected row was checked against PostgreSQL with the SQL of ldg_qlang_compile
 * (see docs/query.md for the documented differences, which have their own cases at the end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/json.h"
#include "query/qeval.h"
#include "query/qlang.h"
#include "unit.h"

/* Logs as LogEntryResponse objects (only the fields the language reads). */
static const char *const logs[] = {
    /* 0 */ "{\"level\":\"error\",\"log_type\":\"exception\",\"message\":\"Connection refused by db-1\","
            "\"error_type\":\"ConnectionError\",\"error_message\":\"connect() timed out\",\"environment\":\"prod\","
            "\"release\":\"1.4.2\",\"attributes\":{\"user\":{\"id\":42,\"name\":\"Ada\"},\"retry\":true}}",
    /* 1 */ "{\"level\":\"info\",\"log_type\":\"console\",\"message\":\"User ada signed in\",\"error_type\":null,"
            "\"error_message\":null,\"environment\":\"staging\",\"release\":null,"
            "\"attributes\":{\"user\":{\"id\":\"42\"},\"tags\":[\"a\",\"b\"]}}",
    /* 2 */ "{\"level\":\"warning\",\"log_type\":\"logger\",\"message\":\"refused connection: TIMEOUT after 30s\","
            "\"error_type\":null,\"error_message\":null,\"environment\":null,\"release\":null,\"attributes\":null}",
    /* 3 */ "{\"level\":\"critical\",\"log_type\":\"exception\",\"message\":null,\"error_type\":\"KeyError\","
            "\"error_message\":\"'user_id' missing\",\"environment\":\"prod\",\"release\":\"2.0\","
            "\"attributes\":{\"n\":1.5,\"ok\":false,\"none\":null}}",
};
#define NLOGS (sizeof logs / sizeof logs[0])

/* Each query and, per log, whether it matches ('1') or not ('0'). */
static const struct {
    const char *q, *want;
} cases[] = {
    {"refused", "1010"},
    {"REFUSED", "1010"},
    {"connection refused", "1010"},              /* both words, any order */
    {"\"connection refused\"", "1000"},          /* phrase: in this order */
    {"\"refused connection\"", "0010"},
    {"\"timed out connectionerror\"", "1000"}, /* a phrase runs from error_message into error_type */
    {"connectionerror", "1000"},                 /* error_type is in the document */
    {"user_id", "0001"},                         /* user and id */
    {"\"user id\"", "0001"},
    {"timeout", "0010"},                         /* "timed" is not "timeout" */
    {"30s", "0010"},
    {"level:error", "1000"},
    {"level:ERROR", "1000"},                     /* enum values are lowercased by the parser */
    {"env:PROD", "0000"},                        /* other field values are exact */
    {"env:prod", "1001"},
    {"environment:prod", "1001"},
    {"NOT env:prod", "0110"},                    /* a null field under NOT matches (IS NOT TRUE) */
    {"release:\"1.4.2\"", "1000"},
    {"NOT release:\"1.4.2\"", "0111"},
    {"error_type:KeyError OR level:info", "0101"},
    {"level:error OR level:warning AND refused", "1010"}, /* AND binds tighter */
    {"(level:error OR level:warning) AND timeout", "0010"},
    {"attributes.user.id:42", "1100"},           /* number 42 and string "42" */
    {"attributes.user.id:\"42\"", "0100"},       /* quoted: the string only */
    {"attributes.user.name:Ada", "1000"},
    {"attributes.user.name:ada", "0000"},
    {"attributes.retry:true", "1000"},
    {"attributes.retry:\"true\"", "0000"},
    {"attributes.ok:false", "0001"},
    {"attributes.n:1.5", "0001"},
    {"attributes.n:1.50", "0001"},               /* numeric equality */
    {"attributes.none:null", "0001"},
    {"attributes.tags:a", "0000"},               /* an array does not contain a scalar at a path */
    {"attributes.user:42", "0000"},
    {"NOT attributes.user.id:42", "0011"},
    {"message:/refused/", "1010"},
    {"message:/^refused/", "0010"},
    {"message:/REFUSED/", "0000"},
    {"message:/REFUSED/i", "1010"},
    {"message:/after \\d+s$/", "0010"},          /* \d */
    {"message:/db-[0-9]/", "1000"},
    {"NOT message:/x/", "1111"},
    {"NOT message:/refused/", "0101"},           /* a null message under NOT matches */
    {"ada", "0100"},                             /* attributes are not in the document */
    {"signed AND NOT level:error", "0100"},
};

static void test_table(void **state)
{
    (void)state;
    cJSON *parsed[NLOGS];
    for (size_t i = 0; i < NLOGS; i++) {
        parsed[i] = cJSON_Parse(logs[i]);
        assert_non_null(parsed[i]);
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char first[4096];
        struct ldg_arena a;
        ldg_arena_init(&a, first, sizeof first);
        struct ldg_qnode *root;
        struct ldg_qerror err;
        const char *q = cases[c].q;
        if (ldg_qlang_parse(q, strlen(q), &a, &root, &err) != 0)
            fail_msg("%s: parse error at %zu: %s", q, err.pos, err.msg);
        struct ldg_qeval *ev;
        if (ldg_qeval_new(root, q, strlen(q), &ev, &err) != 0)
            fail_msg("%s: evaluator error at %zu: %s", q, err.pos, err.msg);
        char got[NLOGS + 1];
        for (size_t i = 0; i < NLOGS; i++) {
            struct ldg_qdoc d;
            ldg_qdoc_init(&d, parsed[i]);
            got[i] = ldg_qeval_match(ev, &d) ? '1' : '0';
            /* a document is tokenized once and reused by the next evaluation */
            assert_int_equal(ldg_qeval_match(ev, &d), got[i] == '1');
            ldg_qdoc_free(&d);
        }
        got[NLOGS] = 0;
        if (strcmp(got, cases[c].want) != 0)
            fail_msg("%s: got %s, want %s", q, got, cases[c].want);
        ldg_qeval_free(ev);
        ldg_arena_free(&a);
    }
    for (size_t i = 0; i < NLOGS; i++)
        cJSON_Delete(parsed[i]);
}

/* Compounds match by parts: punctuation separates words, in the SQL too (ledger_search_words,
 * schema/logs/0008) - words inside URL paths, dotted names and snake_case are found. */
static void test_words_split_at_punctuation(void **state)
{
    (void)state;
    cJSON *log = cJSON_Parse("{\"message\":\"foo bar at example com by db-1: GET /api/orders slow in "
                             "app.billing.invoice, payment_failed\"}");
    const char *qs[] = {"foo-bar", "example.com", "\"db 1\"", "orders", "\"api orders\"", "/api/orders",
                        "billing", "app.billing", "payment", "failed", "payment_failed", "\"get api orders\""};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(qs); i++) {
        char first[2048];
        struct ldg_arena a;
        ldg_arena_init(&a, first, sizeof first);
        struct ldg_qnode *root;
        struct ldg_qerror err;
        assert_int_equal(ldg_qlang_parse(qs[i], strlen(qs[i]), &a, &root, &err), 0);
        struct ldg_qeval *ev;
        assert_int_equal(ldg_qeval_new(root, qs[i], strlen(qs[i]), &ev, &err), 0);
        struct ldg_qdoc d;
        ldg_qdoc_init(&d, log);
        if (!ldg_qeval_match(ev, &d))
            fail_msg("%s does not match", qs[i]);
        ldg_qdoc_free(&d);
        ldg_qeval_free(ev);
        ldg_arena_free(&a);
    }
    cJSON_Delete(log);
}

static void test_bad_regex_position(void **state)
{
    (void)state;
    const char *q = "é level:error AND message:/a(b/";
    char first[2048];
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    struct ldg_qnode *root;
    struct ldg_qerror err;
    assert_int_equal(ldg_qlang_parse(q, strlen(q), &a, &root, &err), 0);
    struct ldg_qeval *ev = (struct ldg_qeval *)1;
    assert_int_equal(ldg_qeval_new(root, q, strlen(q), &ev, &err), -EINVAL);
    assert_null(ev);
    assert_int_equal(err.pos, 19); /* characters, 1-based: where message:/ starts */
    assert_true(strncmp(err.msg, "invalid regular expression: ", 28) == 0);
    ldg_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_words_split_at_punctuation),
        cmocka_unit_test(test_bad_regex_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
