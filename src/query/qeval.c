/*
 * qeval.c: see qeval.h. The tree is copied into one heap block per node; words of WORD and
 * PHRASE values are tokenized once, at build time, with the same tokenizer as documents.
 */
#include "query/qeval.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"

struct enode {
    enum ldg_qnode_kind kind;
    char *field; /* owned */
    char *value; /* owned */
    bool quoted;
    bool has_re;
    regex_t re;
    char *words;    /* owned: WORD/PHRASE: the value's words, lowercased, NUL-separated */
    size_t nwords;
    struct enode *left, *right;
};

struct ldg_qeval {
    struct enode *root;
};

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c >= 0x80;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

/* Words of s into out (lowercased, each followed by NUL); returns their number. */
static size_t split_words(const char *s, struct ldg_buf *out)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        if (!word_byte((unsigned char)*p)) {
            p++;
            continue;
        }
        while (*p && word_byte((unsigned char)*p)) {
            char c = lower(*p++);
            ldg_buf_put(out, &c, 1);
        }
        ldg_buf_put(out, "", 1);
        n++;
    }
    return n;
}

/* \d and \D outside brackets become [0-9] and [^0-9]; everything else is kept. */
static void translate_regex(const char *re, struct ldg_buf *out)
{
    bool in_bracket = false;
    for (const char *p = re; *p; p++) {
        if (in_bracket) {
            if (*p == ']')
                in_bracket = false;
            ldg_buf_put(out, p, 1);
            continue;
        }
        if (*p == '\\' && p[1]) {
            if (p[1] == 'd' || p[1] == 'D') {
                ldg_buf_puts(out, p[1] == 'd' ? "[0-9]" : "[^0-9]");
            } else {
                ldg_buf_put(out, p, 2);
            }
            p++;
            continue;
        }
        if (*p == '[') {
            in_bracket = true;
            ldg_buf_put(out, p, 1);
            /* a ']' right after '[' or '[^' is a member, not the end */
            if (p[1] == '^')
                ldg_buf_put(out, ++p, 1);
            if (p[1] == ']')
                ldg_buf_put(out, ++p, 1);
            continue;
        }
        ldg_buf_put(out, p, 1);
    }
    ldg_buf_put(out, "", 1);
}

static void enode_free(struct enode *e)
{
    if (!e)
        return;
    enode_free(e->left);
    enode_free(e->right);
    if (e->has_re)
        regfree(&e->re);
    free(e->field);
    free(e->value);
    free(e->words);
    free(e);
}

static char *dup_or_null(const char *s)
{
    return s ? ldg_strdup(s) : NULL;
}

static int build(const struct ldg_qnode *nd, const char *q, size_t qn, struct enode **out,
                 struct ldg_qerror *err)
{
    struct enode *e = ldg_calloc(1, sizeof *e);
    *out = e;
    e->kind = nd->kind;
    e->field = dup_or_null(nd->field);
    e->value = dup_or_null(nd->value);
    e->quoted = nd->quoted;
    switch (nd->kind) {
    case LDG_QNODE_WORD:
    case LDG_QNODE_PHRASE: {
        struct ldg_buf b;
        ldg_buf_init(&b);
        e->nwords = split_words(nd->value, &b);
        e->words = ldg_malloc(ldg_buf_size(&b) + 1);
        memcpy(e->words, ldg_buf_head(&b), ldg_buf_size(&b));
        e->words[ldg_buf_size(&b)] = 0;
        ldg_buf_free(&b);
        return 0;
    }
    case LDG_QNODE_REGEX: {
        struct ldg_buf b;
        ldg_buf_init(&b);
        translate_regex(nd->value, &b);
        int rc = regcomp(&e->re, ldg_buf_head(&b), REG_EXTENDED | REG_NOSUB | (nd->icase ? REG_ICASE : 0));
        ldg_buf_free(&b);
        if (rc != 0) {
            char why[100];
            regerror(rc, &e->re, why, sizeof why);
            size_t chars = 0;
            if (ldg_utf8_count(q, LDG_MIN(nd->pos, qn), &chars) < 0)
                chars = nd->pos;
            err->pos = chars + 1;
            snprintf(err->msg, sizeof err->msg, "invalid regular expression: %s", why);
            return -EINVAL;
        }
        e->has_re = true;
        return 0;
    }
    case LDG_QNODE_AND:
    case LDG_QNODE_OR:
    case LDG_QNODE_NOT: {
        int rc = build(nd->left, q, qn, &e->left, err);
        if (rc == 0 && nd->right)
            rc = build(nd->right, q, qn, &e->right, err);
        return rc;
    }
    case LDG_QNODE_FIELD:
    case LDG_QNODE_ATTR:
        return 0;
    }
    return 0;
}

int ldg_qeval_new(const struct ldg_qnode *root, const char *q, size_t n, struct ldg_qeval **out,
                  struct ldg_qerror *err)
{
    *out = NULL;
    struct ldg_qeval *ev = ldg_calloc(1, sizeof *ev);
    int rc = build(root, q, n, &ev->root, err);
    if (rc < 0) {
        ldg_qeval_free(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

void ldg_qeval_free(struct ldg_qeval *e)
{
    if (!e)
        return;
    enode_free(e->root);
    free(e);
}

/* ---- documents ------------------------------------------------------------------------------------ */

void ldg_qdoc_init(struct ldg_qdoc *d, const cJSON *log)
{
    memset(d, 0, sizeof *d);
    d->log = log;
}

void ldg_qdoc_free(struct ldg_qdoc *d)
{
    free(d->text);
    free(d->tok);
    memset(d, 0, sizeof *d);
}

static const char *str_member(const cJSON *log, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(log, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void tokenize(struct ldg_qdoc *d)
{
    static const char *const parts[] = {"message", "error_message", "error_type"};
    struct ldg_buf text;
    ldg_buf_init(&text);
    size_t cap = 0;
    for (size_t i = 0; i < LDG_ARRAY_SIZE(parts); i++) {
        const char *s = str_member(d->log, parts[i]);
        if (!s)
            continue;
        size_t from = ldg_buf_size(&text);
        size_t k = split_words(s, &text);
        (void)from;
        if (d->ntok + k > cap) {
            cap = (d->ntok + k) * 2 + 8;
            d->tok = ldg_realloc(d->tok, cap * 2 * sizeof *d->tok);
        }
        /* record the words just appended: NUL-separated from `from` */
        const char *h = ldg_buf_head(&text);
        size_t off = from;
        for (size_t w = 0; w < k; w++) {
            size_t len = strlen(h + off);
            d->tok[2 * d->ntok] = (uint32_t)off;
            d->tok[2 * d->ntok + 1] = (uint32_t)len;
            d->ntok++;
            off += len + 1;
        }
    }
    d->text = ldg_malloc(ldg_buf_size(&text) + 1);
    memcpy(d->text, ldg_buf_head(&text), ldg_buf_size(&text));
    d->text[ldg_buf_size(&text)] = 0;
    ldg_buf_free(&text);
    d->tokenized = true;
}

static bool tok_is(const struct ldg_qdoc *d, size_t i, const char *w, size_t wl)
{
    return d->tok[2 * i + 1] == wl && memcmp(d->text + d->tok[2 * i], w, wl) == 0;
}

static bool has_word(const struct ldg_qdoc *d, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i < d->ntok; i++)
        if (tok_is(d, i, w, wl))
            return true;
    return false;
}

static bool match_words(const struct enode *e, struct ldg_qdoc *d)
{
    if (e->nwords == 0)
        return false; /* a query without lexemes matches nothing in PostgreSQL either */
    if (!d->tokenized)
        tokenize(d);
    if (e->kind == LDG_QNODE_WORD) {
        const char *w = e->words;
        for (size_t i = 0; i < e->nwords; i++, w += strlen(w) + 1)
            if (!has_word(d, w))
                return false;
        return true;
    }
    for (size_t start = 0; start + e->nwords <= d->ntok; start++) {
        const char *w = e->words;
        size_t i = 0;
        for (; i < e->nwords; i++, w += strlen(w) + 1)
            if (!tok_is(d, start + i, w, strlen(w)))
                break;
        if (i == e->nwords)
            return true;
    }
    return false;
}

/* ---- attributes ---------------------------------------------------------------------------------- */

static bool json_number_text(const char *s, double *out)
{
    if (!*s)
        return false;
    const char *p = s;
    if (*p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9'))
        return false;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9')
        return false;
    char *end;
    *out = strtod(s, &end);
    return *end == '\0' && strchr("0123456789", end[-1]) != NULL;
}

static bool match_attr(const struct enode *e, const cJSON *log)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(log, "attributes");
    const char *seg = e->field;
    char key[256];
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!cJSON_IsObject(cur) || len >= sizeof key)
            return false;
        memcpy(key, seg, len);
        key[len] = 0;
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        if (!cur)
            return false;
        if (!dot)
            break;
        seg = dot + 1;
    }
    if (cJSON_IsString(cur))
        return strcmp(cur->valuestring, e->value) == 0;
    if (e->quoted)
        return false;
    double v;
    if (cJSON_IsNumber(cur))
        return json_number_text(e->value, &v) && v == cur->valuedouble;
    if (cJSON_IsTrue(cur))
        return strcmp(e->value, "true") == 0;
    if (cJSON_IsFalse(cur))
        return strcmp(e->value, "false") == 0;
    if (cJSON_IsNull(cur))
        return strcmp(e->value, "null") == 0;
    return false; /* arrays and objects contain no scalar at this path (jsonb @>) */
}

/* ---- evaluation ------------------------------------------------------------------------------------- */

static bool eval(const struct enode *e, struct ldg_qdoc *d)
{
    switch (e->kind) {
    case LDG_QNODE_WORD:
    case LDG_QNODE_PHRASE:
        return match_words(e, d);
    case LDG_QNODE_FIELD: {
        const char *v = str_member(d->log, e->field);
        return v && strcmp(v, e->value) == 0;
    }
    case LDG_QNODE_ATTR:
        return match_attr(e, d->log);
    case LDG_QNODE_REGEX: {
        const char *m = str_member(d->log, "message");
        return m && regexec(&e->re, m, 0, NULL, 0) == 0;
    }
    case LDG_QNODE_AND:
        return eval(e->left, d) && eval(e->right, d);
    case LDG_QNODE_OR:
        return eval(e->left, d) || eval(e->right, d);
    case LDG_QNODE_NOT:
        return !eval(e->left, d);
    }
    return false;
}

bool ldg_qeval_match(const struct ldg_qeval *e, struct ldg_qdoc *d)
{
    return eval(e->root, d);
}
