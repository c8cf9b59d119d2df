#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/json.h"
#include "query/qlang.h"
#include "unit.h"

/* The tree as a compact S-expression: (and a b), (or ..), (not x), w:word, p:"phrase",
 * f:col=value, a:path=value (a!: quoted), r:/re/ or r:/re/i. */
static void sexpr(const struct ldg_qnode *n, struct ldg_buf *b)
{
    switch (n->kind) {
    case LDG_QNODE_WORD:
        ldg_buf_printf(b, "w:%s", n->value);
        return;
    case LDG_QNODE_PHRASE:
        ldg_buf_printf(b, "p:\"%s\"", n->value);
        return;
    case LDG_QNODE_FIELD:
        ldg_buf_printf(b, "f:%s=%s", n->field, n->value);
        return;
    case LDG_QNODE_ATTR:
        ldg_buf_printf(b, "a%s:%s=%s", n->quoted ? "!" : "", n->field, n->value);
        return;
    case LDG_QNODE_REGEX:
        ldg_buf_printf(b, "r:/%s/%s", n->value, n->icase ? "i" : "");
        return;
    case LDG_QNODE_NOT:
        ldg_buf_puts(b, "(not ");
        sexpr(n->left, b);
        ldg_buf_puts(b, ")");
        return;
    case LDG_QNODE_AND:
    case LDG_QNODE_OR:
        ldg_buf_puts(b, n->kind == LDG_QNODE_AND ? "(and " : "(or ");
        sexpr(n->left, b);
        ldg_buf_puts(b, " ");
        sexpr(n->right, b);
        ldg_buf_puts(b, ")");
        return;
    }
}

static void parses_as(const char *q, const char *want)
{
    char first[4096];
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    struct ldg_qnode *root;
    struct ldg_qerror err;
    int rc = ldg_qlang_parse(q, strlen(q), &a, &root, &err);
    if (rc != 0)
        fail_msg("%s: unexpected error at %zu: %s", q, err.pos, err.msg);
    struct ldg_buf b;
    ldg_buf_init(&b);
    sexpr(root, &b);
    if (strcmp(text(&b), want) != 0)
        fail_msg("%s: got %s, want %s", q, text(&b), want);
    ldg_buf_free(&b);
    ldg_arena_free(&a);
}

static void fails_at(const char *q, size_t pos, const char *msg_part)
{
    char first[4096];
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    struct ldg_qnode *root = (void *)1;
    struct ldg_qerror err;
    int rc = ldg_qlang_parse(q, strlen(q), &a, &root, &err);
    if (rc != -EINVAL)
        fail_msg("%s: parsed, expected an error", q);
    assert_null(root);
    if (err.pos != pos || !strstr(err.msg, msg_part))
        fail_msg("%s: error at %zu \"%s\", want at %zu containing \"%s\"", q, err.pos, err.msg, pos,
                 msg_part);
    ldg_arena_free(&a);
}

static void test_terms(void **state)
{
    (void)state;
    parses_as("timeout", "w:timeout");
    parses_as("  timeout  ", "w:timeout");
    parses_as("\"connection refused\"", "p:\"connection refused\"");
    parses_as("\"say \\\"hi\\\" \\\\ now\"", "p:\"say \"hi\" \\ now\"");
    parses_as("level:error", "f:level=error");
    parses_as("level:ERROR", "f:level=error");
    parses_as("log_type:exception", "f:log_type=exception");
    parses_as("importance:high", "f:importance=high");
    parses_as("environment:prod", "f:environment=prod");
    parses_as("env:\"eu west\"", "f:environment=eu west");
    parses_as("release:1.2.3", "f:release=1.2.3");
    parses_as("release:v1:rc2", "f:release=v1:rc2");
    parses_as("error_type:ValueError", "f:error_type=ValueError");
    parses_as("platform:python", "f:platform=python");
    parses_as("fingerprint:abc", "f:error_fingerprint=abc");
    parses_as("attributes.user_id:42", "a:user_id=42");
    parses_as("attributes.user.id:\"42\"", "a!:user.id=42");
    parses_as("attributes.endpoint.path:\"/users/{id}\"", "a!:endpoint.path=/users/{id}");
    parses_as("message:/time(d)? ?out/i", "r:/time(d)? ?out/i");
    parses_as("message:/a\\/b\\d+/", "r:/a/b\\d+/");
    parses_as("user@example.com", "w:user@example.com");
    parses_as("héllo", "w:héllo");
    parses_as("and", "w:and");
    parses_as("Or", "w:Or");
}

static void test_operators(void **state)
{
    (void)state;
    parses_as("a b", "(and w:a w:b)");
    parses_as("a AND b", "(and w:a w:b)");
    parses_as("a b c", "(and (and w:a w:b) w:c)");
    parses_as("a OR b", "(or w:a w:b)");
    parses_as("a b OR c", "(or (and w:a w:b) w:c)");
    parses_as("a OR b c", "(or w:a (and w:b w:c))");
    parses_as("a OR b AND c", "(or w:a (and w:b w:c))");
    parses_as("(a OR b) c", "(and (or w:a w:b) w:c)");
    parses_as("NOT a", "(not w:a)");
    parses_as("NOT a b", "(and (not w:a) w:b)");
    parses_as("a NOT b", "(and w:a (not w:b))");
    parses_as("NOT NOT a", "(not (not w:a))");
    parses_as("NOT (a OR b)", "(not (or w:a w:b))");
    parses_as("((a))", "w:a");
    parses_as("a(b)", "(and w:a w:b)");
    parses_as("a\"b c\"", "(and w:a p:\"b c\")");
    parses_as("level:error AND (timeout OR \"connection reset\") NOT env:dev",
              "(and (and f:level=error (or w:timeout p:\"connection reset\")) (not f:environment=dev))");
    parses_as("level:error OR level:critical attributes.region:eu",
              "(or f:level=error (and f:level=critical a:region=eu))");
}

static void test_errors(void **state)
{
    (void)state;
    fails_at("", 1, "empty query");
    fails_at("   ", 1, "empty query");
    fails_at("()", 2, "expected a term, found ')'");
    fails_at("(a", 1, "unclosed '('");
    fails_at("a)", 2, "unexpected ')'");
    fails_at("a AND", 6, "expected a term, found the end of the query");
    fails_at("a OR OR b", 6, "expected a term, found OR");
    fails_at("OR a", 1, "expected a term, found OR");
    fails_at("NOT", 4, "expected a term");
    fails_at("a AND )", 7, "expected a term, found ')'");
    fails_at("\"abc", 1, "unterminated quote");
    fails_at("x \"abc\\\"", 3, "unterminated quote");
    fails_at("\"\"", 1, "no letters or digits");
    fails_at("!!!", 1, "no letters or digits");
    fails_at("foo:bar", 1, "unknown field 'foo'");
    fails_at("a :b", 3, "missing field name");
    fails_at("level:", 6, "missing value after 'level:'");
    fails_at("level:verbose", 7, "unknown level 'verbose'");
    fails_at("log_type:x", 10, "unknown log_type");
    fails_at("message:hello", 9, "takes a regular expression");
    fails_at("message:/abc", 9, "unterminated regular expression");
    fails_at("message://", 9, "empty regular expression");
    fails_at("message:/a/x", 12, "unknown regular expression flag 'x'");
    fails_at("message:/a++/", 9, "a quantifier may not follow another quantifier");
    fails_at("message:/a+?" "?/", 9, "a quantifier may not follow another quantifier");
    fails_at("message:/pen:+++++or/", 9, "a quantifier may not follow another quantifier");
    fails_at("message:/(a{101})/", 9, "repetition bounds are at most 100");
    fails_at("message:/a{2}b{2}c{2}/", 9, "at most two bounded repetitions");
    fails_at("level:/err/", 7, "only supported on message");
    fails_at("attributes.a:/x/", 14, "only supported on message");
    fails_at("attributes:x", 1, "attribute path");
    fails_at("attributes..a:x", 1, "attribute path");
    fails_at("attributes.a.:x", 1, "attribute path");
    fails_at("attributes.a.b.c.d.e.f.g.h.i:x", 1, "deeper than 8");
    /* positions count characters, not bytes */
    fails_at("héllo wörld )", 13, "unexpected ')'");
    fails_at("\xff", 1, "not valid UTF-8");
}

static void test_length(void **state)
{
    (void)state;
    static char q[LDG_QLANG_MAX_LEN + 2], want[LDG_QLANG_MAX_LEN + 3] = "w:";
    memset(q, 'a', sizeof q - 1);
    q[sizeof q - 1] = '\0';
    fails_at(q, 1, "longer than 2048 bytes");
    q[LDG_QLANG_MAX_LEN] = '\0';
    memcpy(want + 2, q, LDG_QLANG_MAX_LEN + 1);
    parses_as(q, want);
}

static void test_limits(void **state)
{
    (void)state;
    /* exactly the limits pass, one more fails */
    char q[1024] = "";
    for (int i = 0; i < LDG_QLANG_MAX_TERMS; i++)
        strcat(q, "w ");
    struct ldg_arena a;
    char first[8192];
    ldg_arena_init(&a, first, sizeof first);
    struct ldg_qnode *root;
    struct ldg_qerror err;
    assert_int_equal(ldg_qlang_parse(q, strlen(q), &a, &root, &err), 0);
    strcat(q, "x");
    fails_at(q, (size_t)LDG_QLANG_MAX_TERMS * 2 + 1, "more than 32 terms");

    char d[256] = "";
    for (int i = 0; i < LDG_QLANG_MAX_DEPTH; i++)
        strcat(d, "(");
    strcat(d, "a");
    for (int i = 0; i < LDG_QLANG_MAX_DEPTH; i++)
        strcat(d, ")");
    assert_int_equal(ldg_qlang_parse(d, strlen(d), &a, &root, &err), 0);
    char deep[256] = "(";
    strcat(deep, d);
    strcat(deep, ")");
    fails_at(deep, LDG_QLANG_MAX_DEPTH + 1, "nested deeper than 16");
    char nots[256] = "";
    for (int i = 0; i <= LDG_QLANG_MAX_DEPTH; i++)
        strcat(nots, "NOT ");
    strcat(nots, "a");
    fails_at(nots, LDG_QLANG_MAX_DEPTH * 4 + 1, "nested deeper than 16");

    char re[LDG_QLANG_MAX_REGEX + 32] = "message:/";
    size_t o = strlen(re);
    memset(re + o, 'x', LDG_QLANG_MAX_REGEX + 1);
    strcpy(re + o + LDG_QLANG_MAX_REGEX + 1, "/");
    fails_at(re, 9, "longer than 512 bytes");
    ldg_arena_free(&a);
}

/* Compiled SQL and parameters, rendered as "SQL | p1 | p2 ..." */
static void compiles_as(const char *q, int first_param, const char *want, unsigned want_flags)
{
    char first[8192];
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    struct ldg_qnode *root;
    struct ldg_qerror err;
    assert_int_equal(ldg_qlang_parse(q, strlen(q), &a, &root, &err), 0);
    struct ldg_qparams params = {0};
    for (int i = 1; i < first_param; i++)
        ldg_qparams_add(&params, &a, "caller");
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    unsigned flags = ldg_qlang_compile(root, &a, &sql, &params);
    for (size_t i = (size_t)first_param - 1; i < params.n; i++)
        ldg_buf_printf(&sql, " | %s", params.v[i]);
    if (strcmp(text(&sql), want) != 0)
        fail_msg("%s:\n got  %s\n want %s", q, text(&sql), want);
    assert_int_equal(flags, want_flags);
    ldg_buf_free(&sql);
    ldg_arena_free(&a);
}

#define FTS LDG_QLANG_FTS_DOC

static void test_compile(void **state)
{
    (void)state;
    compiles_as("level:error", 1, "(level = $1::text) | error", 0);
    compiles_as("level:error env:prod", 4, "((level = $4::text) AND (environment = $5::text)) | error | prod",
                0);
    compiles_as("NOT env:prod", 1, "((environment = $1::text) IS NOT TRUE) | prod", 0);
    compiles_as("a OR b", 1,
                "(((message ILIKE $2 OR error_message ILIKE $2 OR error_type ILIKE $2) AND " FTS
                " @@ plainto_tsquery('simple'::regconfig, ledger_search_words($1::text))) OR ((message ILIKE $4 OR error_message "
                "ILIKE $4 OR error_type ILIKE $4) AND " FTS
                " @@ plainto_tsquery('simple'::regconfig, ledger_search_words($3::text)))) | a | %a% | b | %b%",
                LDG_QLANG_USES_TEXT);
    /* no prefilter when the term is not plain ASCII letters and digits */
    compiles_as("user@example.com", 1,
                "(" FTS " @@ plainto_tsquery('simple'::regconfig, ledger_search_words($1::text))) | user@example.com",
                LDG_QLANG_USES_TEXT);
    compiles_as("\"connection refused\"", 1,
                "((message ILIKE $2 OR error_message ILIKE $2 OR error_type ILIKE $2) AND " FTS
                " @@ phraseto_tsquery('simple'::regconfig, ledger_search_words($1::text))) | connection refused | %connection%",
                LDG_QLANG_USES_TEXT);
    compiles_as("message:/x'; DROP TABLE logs; --/i", 1, "(message ~* $1::text) | x'; DROP TABLE logs; --",
                LDG_QLANG_USES_REGEX);
    compiles_as("message:/^GET /", 2, "(message ~ $2::text) | ^GET ", LDG_QLANG_USES_REGEX);
    compiles_as("attributes.user.id:\"42\"", 1, "(attributes @> $1::jsonb) | {\"user\":{\"id\":\"42\"}}", 0);
    compiles_as(
        "attributes.user_id:42", 1,
        "(attributes @> $1::jsonb OR attributes @> $2::jsonb) | {\"user_id\":\"42\"} | {\"user_id\":42}", 0);
    compiles_as("attributes.ok:true", 1,
                "(attributes @> $1::jsonb OR attributes @> $2::jsonb) | {\"ok\":\"true\"} | {\"ok\":true}",
                0);
    compiles_as("attributes.v:1.5e3", 1,
                "(attributes @> $1::jsonb OR attributes @> $2::jsonb) | {\"v\":\"1.5e3\"} | {\"v\":1.5e3}",
                0);
    compiles_as("attributes.v:01", 1, "(attributes @> $1::jsonb) | {\"v\":\"01\"}", 0);
    compiles_as("attributes.q:\"say \\\"hi\\\"\"", 1,
                "(attributes @> $1::jsonb) | {\"q\":\"say \\\"hi\\\"\"}", 0);
    compiles_as(
        "level:error message:/boom/ timeout", 1,
        "(((level = $1::text) AND (message ~ $2::text)) AND ((message ILIKE $4 OR error_message ILIKE $4 "
        "OR error_type ILIKE $4) AND " FTS
        " @@ plainto_tsquery('simple'::regconfig, ledger_search_words($3::text)))) | error | boom | timeout | %timeout%",
        LDG_QLANG_USES_TEXT | LDG_QLANG_USES_REGEX);
}

static void test_attr_sql(void **state)
{
    (void)state;
    char first[2048];
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    struct ldg_qparams params = {0};
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    char err[128];
    assert_int_equal(ldg_qlang_attr_sql("a..b", "x", false, &a, &sql, &params, err, sizeof err), -EINVAL);
    assert_int_equal(ldg_qlang_attr_sql("", "x", false, &a, &sql, &params, err, sizeof err), -EINVAL);
    assert_int_equal(ldg_qlang_attr_sql(".a", "x", false, &a, &sql, &params, err, sizeof err), -EINVAL);
    assert_int_equal(ldg_qlang_attr_sql("a.b.c.d.e.f.g.h.i", "x", false, &a, &sql, &params, err, sizeof err),
                     -EINVAL);
    assert_int_equal(ldg_buf_size(&sql), 0);
    assert_int_equal(ldg_qlang_attr_sql("k", "\x01\n", false, &a, &sql, &params, err, sizeof err), 0);
    assert_string_equal(text(&sql), "(attributes @> $1::jsonb)");
    assert_string_equal(params.v[0], "{\"k\":\"\\u0001\\n\"}");
    ldg_buf_free(&sql);
    ldg_arena_free(&a);
}

int main(void)
{
    ldg_json_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms),  cmocka_unit_test(test_operators), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits), cmocka_unit_test(test_compile),   cmocka_unit_test(test_attr_sql),
        cmocka_unit_test(test_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
