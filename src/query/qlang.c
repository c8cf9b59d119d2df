/*
 * qlang.c: tokenizer, recursive-descent parser and SQL compiler of the search language (qlang.h).
 *
 * Grammar (AND binds tighter than OR, NOT tighter than AND; a term after a term is an implicit AND):
 *
 *   query   := or EOF
 *   or      := and ("OR" and)*
 *   and     := unary (["AND"] unary)*
 *   unary   := "NOT" unary | "(" or ")" | term
 *   term    := word | "phrase" | name ":" value
 *   value   := word | "quoted" | /regex/flags
 *
 * The tokenizer reads one token ahead; every token keeps its byte offset so errors can point at
 * it. Nesting is counted on "(" and "NOT" together, so neither can grow the C stack beyond
 * LDG_QLANG_MAX_DEPTH frames of each recursive function.
 *
 * Compilation keeps SQL NULLs from changing NOT: environment, release, attributes... may be NULL,
 * and `NOT env:prod` must keep the logs without an environment, so NOT x is `(x) IS NOT TRUE`.
 * Full-text terms carry a cheap prefilter when the term is plain ASCII letters and digits: the
 * word must then occur as a substring of one of the three columns (ILIKE), which is implied by
 * the full-text match, and lets a scan of a partition without a full-text index (the one being
 * written) skip to_tsvector for almost every row.
 */
#include "query/qlang.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"

enum tok_kind { T_EOF, T_LPAREN, T_RPAREN, T_AND, T_OR, T_NOT, T_TERM };

struct parser {
    const char *q;
    size_t n, i; /* input and read offset */
    struct ldg_arena *a;
    struct ldg_qerror *err;
    /* the current token */
    enum tok_kind kind;
    size_t pos;             /* byte offset */
    struct ldg_qnode *term; /* T_TERM: the parsed leaf */
    size_t terms, depth;
    bool failed;
};

/* Known fields: query name -> column. */
static const struct {
    const char *name, *column;
    bool lower; /* enum column: compared in lower case, value checked against choices */
    const char *const *choices;
} fields[] = {
    {"level", "level", true, (const char *const[]){"debug", "info", "warning", "error", "critical", NULL}},
    {"log_type", "log_type", true,
     (const char *const[]){"console", "logger", "exception", "network", "database", "endpoint", "custom",
                           NULL}},
    {"importance", "importance", true, (const char *const[]){"critical", "high", "standard", "low", NULL}},
    {"environment", "environment", false, NULL},
    {"env", "environment", false, NULL},
    {"release", "release", false, NULL},
    {"error_type", "error_type", false, NULL},
    {"platform", "platform", false, NULL},
    {"error_fingerprint", "error_fingerprint", false, NULL},
    {"fingerprint", "error_fingerprint", false, NULL},
};

static size_t char_pos(const char *q, size_t off)
{
    size_t chars = 0;
    for (size_t i = 0; i < off; i++)
        chars += ((unsigned char)q[i] & 0xC0) != 0x80;
    return chars + 1;
}

static void fail_at(struct parser *p, size_t off, const char *fmt, ...) LDG_PRINTF(3, 4);

static void fail_at(struct parser *p, size_t off, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->err->pos = char_pos(p->q, off);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Ends a bare word. */
static bool is_stop(char c)
{
    return is_space(c) || c == '(' || c == ')' || c == '"';
}

static struct ldg_qnode *node(struct parser *p, enum ldg_qnode_kind kind, size_t pos)
{
    struct ldg_qnode *nd = ldg_arena_alloc(p->a, sizeof *nd);
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->pos = pos;
    return nd;
}

/* A quoted string starting at p->q[start] == '"'; returns the unescaped text (arena) and moves
 * p->i past the closing quote, or NULL after failing. */
static char *read_quoted(struct parser *p, size_t start)
{
    char *out = ldg_arena_alloc(p->a, p->n - start);
    size_t o = 0, i = start + 1;
    while (i < p->n && p->q[i] != '"') {
        if (p->q[i] == '\\' && i + 1 < p->n && (p->q[i + 1] == '"' || p->q[i + 1] == '\\'))
            i++;
        out[o++] = p->q[i++];
    }
    if (i >= p->n) {
        fail_at(p, start, "unterminated quote");
        return NULL;
    }
    out[o] = '\0';
    p->i = i + 1;
    return out;
}

static char *copy(struct parser *p, size_t from, size_t to)
{
    return ldg_arena_strndup(p->a, p->q + from, to - from);
}

/* A full-text term needs something the text-search parser keeps: a letter or digit. */
static bool searchable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
            return true;
    }
    return false;
}

static bool lower_choice(char *v, const char *const *choices)
{
    for (char *c = v; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0)
            return true;
    return false;
}

/* name:value with name = q[start..colon). Sets p->term or fails. */

/* Repetition that a backtracking-free matcher (glibc's regcomp builds an automaton) still pays
 * for in memory: a quantifier applied to a quantifier ("a++++", "a*{9}") nests automata, and
 * bounded repetitions are expanded copy by copy ("(a{100}){100}"), so a short expression can
 * take gigabytes to compile. Refused here, before anything compiles it: a quantifier directly
 * after another, a bound above 100, more than two bounded repetitions. Returns why, or NULL. */
static const char *regex_too_costly(const char *re)
{
    bool after_quant = false, lazy = false;
    unsigned braces = 0;
    for (size_t i = 0; re[i]; i++) {
        char c = re[i];
        if (c == '\\') {
            if (re[i + 1])
                i++;
            after_quant = lazy = false;
            continue;
        }
        if (c == '[') { /* a bracket expression: quantifier characters are literal inside */
            size_t j = i + 1;
            if (re[j] == '^')
                j++;
            if (re[j] == ']')
                j++;
            while (re[j] && re[j] != ']')
                j++;
            if (!re[j])
                break;
            i = j;
            after_quant = lazy = false;
            continue;
        }
        if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (after_quant && c == '?' && !lazy) {
                lazy = true; /* "a+?": a non-greedy marker where the pattern goes to PostgreSQL */
                continue;
            }
            if (after_quant)
                return "a quantifier may not follow another quantifier";
            lazy = false;
            if (c == '{') {
                if (++braces > 2)
                    return "at most two bounded repetitions ({m,n})";
                unsigned long v = 0;
                size_t j = i + 1;
                for (; re[j] && re[j] != '}'; j++) {
                    if (re[j] >= '0' && re[j] <= '9') {
                        v = v * 10 + (unsigned long)(re[j] - '0');
                        if (v > 100)
                            return "repetition bounds are at most 100";
                    } else {
                        v = 0;
                    }
                }
                if (!re[j])
                    break;
                i = j;
            }
            after_quant = true;
            continue;
        }
        after_quant = lazy = false;
    }
    return NULL;
}

static void lex_field(struct parser *p, size_t start, size_t colon)
{
    char *name = copy(p, start, colon);
    size_t vstart = colon + 1;
    p->i = vstart;
    char *value = NULL;
    bool quoted = false, regex = false, icase = false;
    if (vstart < p->n && p->q[vstart] == '"') {
        value = read_quoted(p, vstart);
        if (!value)
            return;
        quoted = true;
    } else if (vstart < p->n && p->q[vstart] == '/') {
        char *out = ldg_arena_alloc(p->a, p->n - vstart);
        size_t o = 0, i = vstart + 1;
        while (i < p->n && p->q[i] != '/') {
            if (p->q[i] == '\\' && i + 1 < p->n && p->q[i + 1] == '/')
                i++;
            out[o++] = p->q[i++];
        }
        if (i >= p->n) {
            fail_at(p, vstart, "unterminated regular expression (missing closing '/')");
            return;
        }
        out[o] = '\0';
        i++;
        while (i < p->n && !is_stop(p->q[i])) {
            if (p->q[i] != 'i') {
                fail_at(p, i, "unknown regular expression flag '%c' (only 'i' is supported)", p->q[i]);
                return;
            }
            icase = true;
            i++;
        }
        p->i = i;
        if (o == 0) {
            fail_at(p, vstart, "empty regular expression");
            return;
        }
        if (o > LDG_QLANG_MAX_REGEX) {
            fail_at(p, vstart, "regular expression longer than %d bytes", LDG_QLANG_MAX_REGEX);
            return;
        }
        const char *why = regex_too_costly(out);
        if (why) {
            fail_at(p, vstart, "regular expression too complex: %s", why);
            return;
        }
        value = out;
        regex = true;
    } else {
        size_t i = vstart;
        while (i < p->n && !is_stop(p->q[i]))
            i++;
        if (i == vstart) {
            fail_at(p, colon, "missing value after '%s:'", name);
            return;
        }
        value = copy(p, vstart, i);
        p->i = i;
    }

    if (strncmp(name, "attributes.", 11) == 0 || strcmp(name, "attributes") == 0) {
        const char *path = name[10] ? name + 11 : "";
        size_t segs = 1;
        bool empty = !*path || path[0] == '.' || path[strlen(path) - 1] == '.' || strstr(path, "..");
        for (const char *c = path; *c; c++)
            segs += *c == '.';
        if (empty) {
            fail_at(p, start, "attribute path must be attributes.<key>[.<key>...] without empty keys");
            return;
        }
        if (segs > LDG_QLANG_MAX_PATH) {
            fail_at(p, start, "attribute path deeper than %d keys", LDG_QLANG_MAX_PATH);
            return;
        }
        if (regex) {
            fail_at(p, vstart, "regular expressions are only supported on message");
            return;
        }
        struct ldg_qnode *nd = node(p, LDG_QNODE_ATTR, start);
        nd->field = path;
        nd->value = value;
        nd->quoted = quoted;
        p->term = nd;
        return;
    }
    if (strcmp(name, "message") == 0) {
        if (!regex) {
            fail_at(p, vstart, "message: takes a regular expression, e.g. message:/timed? ?out/i");
            return;
        }
        struct ldg_qnode *nd = node(p, LDG_QNODE_REGEX, start);
        nd->field = "message";
        nd->value = value;
        nd->icase = icase;
        p->term = nd;
        return;
    }
    for (size_t f = 0; f < LDG_ARRAY_SIZE(fields); f++) {
        if (strcmp(name, fields[f].name) != 0)
            continue;
        if (regex) {
            fail_at(p, vstart, "regular expressions are only supported on message");
            return;
        }
        if (fields[f].lower && !lower_choice(value, fields[f].choices)) {
            fail_at(p, vstart, "unknown %s '%s'", fields[f].name, value);
            return;
        }
        struct ldg_qnode *nd = node(p, LDG_QNODE_FIELD, start);
        nd->field = fields[f].column;
        nd->value = value;
        nd->quoted = quoted;
        p->term = nd;
        return;
    }
    fail_at(p, start,
            "unknown field '%s' (fields: level, log_type, importance, environment, release, error_type, "
            "platform, error_fingerprint, attributes.<path>, message)",
            name);
}

/* Read the next token into p (kind, pos, term). */
static void next(struct parser *p)
{
    p->term = NULL;
    while (p->i < p->n && is_space(p->q[p->i]))
        p->i++;
    p->pos = p->i;
    if (p->i >= p->n) {
        p->kind = T_EOF;
        return;
    }
    char c = p->q[p->i];
    if (c == '(' || c == ')') {
        p->kind = c == '(' ? T_LPAREN : T_RPAREN;
        p->i++;
        return;
    }
    p->kind = T_TERM;
    size_t start = p->i;
    if (c == '"') {
        char *text = read_quoted(p, start);
        if (!text)
            return;
        if (!searchable(text)) {
            fail_at(p, start, "phrase has no letters or digits to search for");
            return;
        }
        struct ldg_qnode *nd = node(p, LDG_QNODE_PHRASE, start);
        nd->value = text;
        nd->quoted = true;
        p->term = nd;
        return;
    }
    size_t i = start;
    while (i < p->n && !is_stop(p->q[i]) && p->q[i] != ':')
        i++;
    if (i < p->n && p->q[i] == ':') {
        if (i == start) {
            fail_at(p, start, "missing field name before ':'");
            return;
        }
        lex_field(p, start, i);
        return;
    }
    p->i = i;
    size_t len = i - start;
    if (len == 3 && memcmp(p->q + start, "AND", 3) == 0)
        p->kind = T_AND;
    else if (len == 2 && memcmp(p->q + start, "OR", 2) == 0)
        p->kind = T_OR;
    else if (len == 3 && memcmp(p->q + start, "NOT", 3) == 0)
        p->kind = T_NOT;
    if (p->kind != T_TERM)
        return;
    char *word = copy(p, start, i);
    if (!searchable(word)) {
        fail_at(p, start, "'%s' has no letters or digits to search for", word);
        return;
    }
    struct ldg_qnode *nd = node(p, LDG_QNODE_WORD, start);
    nd->value = word;
    p->term = nd;
}

static const char *tok_name(const struct parser *p)
{
    switch (p->kind) {
    case T_EOF:
        return "the end of the query";
    case T_LPAREN:
        return "'('";
    case T_RPAREN:
        return "')'";
    case T_AND:
        return "AND";
    case T_OR:
        return "OR";
    case T_NOT:
        return "NOT";
    case T_TERM:
        return "a term";
    }
    return "?";
}

static struct ldg_qnode *parse_or(struct parser *p);

static struct ldg_qnode *parse_unary(struct parser *p)
{
    if (p->failed)
        return NULL;
    if (p->kind == T_NOT || p->kind == T_LPAREN) {
        if (++p->depth > LDG_QLANG_MAX_DEPTH) {
            fail_at(p, p->pos, "nested deeper than %d levels", LDG_QLANG_MAX_DEPTH);
            return NULL;
        }
        size_t pos = p->pos;
        struct ldg_qnode *r;
        if (p->kind == T_NOT) {
            next(p);
            struct ldg_qnode *operand = parse_unary(p);
            if (!operand)
                return NULL;
            r = node(p, LDG_QNODE_NOT, pos);
            r->left = operand;
        } else {
            next(p);
            r = parse_or(p);
            if (!r)
                return NULL;
            if (p->kind != T_RPAREN) {
                fail_at(p, pos, "unclosed '('");
                return NULL;
            }
            next(p);
        }
        p->depth--;
        return r;
    }
    if (p->kind == T_TERM) {
        if (++p->terms > LDG_QLANG_MAX_TERMS) {
            fail_at(p, p->pos, "more than %d terms", LDG_QLANG_MAX_TERMS);
            return NULL;
        }
        struct ldg_qnode *t = p->term;
        next(p);
        return p->failed ? NULL : t;
    }
    fail_at(p, p->pos, "expected a term, found %s", tok_name(p));
    return NULL;
}

static struct ldg_qnode *parse_and(struct parser *p)
{
    struct ldg_qnode *left = parse_unary(p);
    while (left && !p->failed) {
        size_t pos = p->pos;
        if (p->kind == T_AND)
            next(p);
        else if (p->kind != T_TERM && p->kind != T_NOT && p->kind != T_LPAREN)
            break;
        struct ldg_qnode *right = parse_unary(p);
        if (!right)
            return NULL;
        struct ldg_qnode *nd = node(p, LDG_QNODE_AND, pos);
        nd->left = left;
        nd->right = right;
        left = nd;
    }
    return p->failed ? NULL : left;
}

static struct ldg_qnode *parse_or(struct parser *p)
{
    struct ldg_qnode *left = parse_and(p);
    while (left && !p->failed && p->kind == T_OR) {
        size_t pos = p->pos;
        next(p);
        struct ldg_qnode *right = parse_and(p);
        if (!right)
            return NULL;
        struct ldg_qnode *nd = node(p, LDG_QNODE_OR, pos);
        nd->left = left;
        nd->right = right;
        left = nd;
    }
    return p->failed ? NULL : left;
}

int ldg_qlang_parse(const char *q, size_t n, struct ldg_arena *a, struct ldg_qnode **out,
                    struct ldg_qerror *err)
{
    *out = NULL;
    err->pos = 1;
    err->msg[0] = '\0';
    size_t chars;
    if (n > LDG_QLANG_MAX_LEN) {
        snprintf(err->msg, sizeof err->msg, "query longer than %d bytes", LDG_QLANG_MAX_LEN);
        return -EINVAL;
    }
    if (ldg_utf8_count(q, n, &chars) < 0 || memchr(q, '\0', n)) {
        snprintf(err->msg, sizeof err->msg, "query is not valid UTF-8 text");
        return -EINVAL;
    }
    struct parser p = {.q = q, .n = n, .a = a, .err = err};
    next(&p);
    if (!p.failed && p.kind == T_EOF) {
        snprintf(err->msg, sizeof err->msg, "empty query");
        return -EINVAL;
    }
    struct ldg_qnode *root = p.failed ? NULL : parse_or(&p);
    if (root && !p.failed && p.kind != T_EOF)
        fail_at(&p, p.pos, p.kind == T_RPAREN ? "unexpected ')'" : "unexpected %s", tok_name(&p));
    if (p.failed)
        return -EINVAL;
    *out = root;
    return 0;
}

/* ---- compiler ------------------------------------------------------------------------------------ */

int ldg_qparams_add(struct ldg_qparams *p, struct ldg_arena *a, const char *value)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        const char **v = ldg_arena_alloc(a, cap * sizeof *v);
        if (p->n)
            memcpy(v, p->v, p->n * sizeof *v);
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = value;
    return (int)p->n;
}

/* Does s read as a JSON number (RFC 8259 grammar)? */
static bool json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* {"a":{"b":<leaf>}} for path a.b; leaf is raw JSON (already a valid value). */
static const char *containment_doc(const char *path, const char *leaf, size_t leaf_len, struct ldg_arena *a)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    int depth = 0;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        ldg_json_obj_begin(&jw);
        char *key = ldg_arena_strndup(a, seg, len);
        ldg_json_key(&jw, key);
        depth++;
        if (!dot)
            break;
        seg = dot + 1;
    }
    ldg_json_raw(&jw, leaf, leaf_len);
    while (depth--)
        ldg_json_obj_end(&jw);
    const char *out = ldg_arena_strndup(a, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
    return out;
}

int ldg_qlang_attr_sql(const char *path, const char *value, bool string_only, struct ldg_arena *a,
                       struct ldg_buf *sql, struct ldg_qparams *params, char *err, size_t errlen)
{
    size_t segs = 1;
    for (const char *c = path; *c; c++)
        segs += *c == '.';
    if (!*path || path[strlen(path) - 1] == '.' || path[0] == '.' || strstr(path, ".."))
        return ldg_json_fail(err, errlen, "attribute path must not have empty keys");
    if (segs > LDG_QLANG_MAX_PATH)
        return ldg_json_fail(err, errlen, "attribute path deeper than %d keys", LDG_QLANG_MAX_PATH);
    struct ldg_buf leaf;
    ldg_buf_init(&leaf);
    ldg_buf_puts(&leaf, "\"");
    ldg_json_escape(&leaf, value, strlen(value));
    ldg_buf_puts(&leaf, "\"");
    int k = ldg_qparams_add(params, a, containment_doc(path, ldg_buf_head(&leaf), ldg_buf_size(&leaf), a));
    ldg_buf_free(&leaf);
    bool typed = !string_only && (json_number(value) || strcmp(value, "true") == 0 ||
                                  strcmp(value, "false") == 0 || strcmp(value, "null") == 0);
    if (!typed) {
        ldg_buf_printf(sql, "(attributes @> $%d::jsonb)", k);
        return 0;
    }
    int k2 = ldg_qparams_add(params, a, containment_doc(path, value, strlen(value), a));
    ldg_buf_printf(sql, "(attributes @> $%d::jsonb OR attributes @> $%d::jsonb)", k, k2);
    return 0;
}

/* The longest ASCII letter/digit run of s when s holds nothing else but spaces; NULL otherwise. */
static const char *prefilter_word(const char *s, struct ldg_arena *a)
{
    const char *best = NULL;
    size_t best_n = 0;
    for (const char *c = s; *c;) {
        unsigned char ch = (unsigned char)*c;
        bool alnum = (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
        if (ch == ' ') {
            c++;
            continue;
        }
        if (!alnum)
            return NULL;
        const char *run = c;
        while ((*c >= '0' && *c <= '9') || ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z'))
            c++;
        if ((size_t)(c - run) > best_n) {
            best = run;
            best_n = (size_t)(c - run);
        }
    }
    if (!best)
        return NULL;
    char *pat = ldg_arena_alloc(a, best_n + 3);
    pat[0] = '%';
    memcpy(pat + 1, best, best_n);
    pat[best_n + 1] = '%';
    pat[best_n + 2] = '\0';
    return pat;
}

static unsigned compile(const struct ldg_qnode *nd, struct ldg_arena *a, struct ldg_buf *sql,
                        struct ldg_qparams *params)
{
    unsigned flags = 0;
    switch (nd->kind) {
    case LDG_QNODE_WORD:
    case LDG_QNODE_PHRASE: {
        const char *pat = prefilter_word(nd->value, a);
        int k = ldg_qparams_add(params, a, nd->value);
        ldg_buf_puts(sql, "(");
        if (pat) {
            int kp = ldg_qparams_add(params, a, pat);
            ldg_buf_printf(sql, "(message ILIKE $%d OR error_message ILIKE $%d OR error_type ILIKE $%d) AND ",
                           kp, kp, kp);
        }
        ldg_buf_printf(sql, LDG_QLANG_FTS_DOC " @@ %s('simple'::regconfig, ledger_search_words($%d::text)))",
                       nd->kind == LDG_QNODE_WORD ? "plainto_tsquery" : "phraseto_tsquery", k);
        return LDG_QLANG_USES_TEXT;
    }
    case LDG_QNODE_FIELD: {
        int k = ldg_qparams_add(params, a, nd->value);
        ldg_buf_printf(sql, "(%s = $%d::text)", nd->field, k);
        return 0;
    }
    case LDG_QNODE_ATTR: {
        int rc = ldg_qlang_attr_sql(nd->field, nd->value, nd->quoted, a, sql, params, NULL, 0);
        LDG_ASSERT(rc == 0); /* the parser checked the path */
        return 0;
    }
    case LDG_QNODE_REGEX: {
        int k = ldg_qparams_add(params, a, nd->value);
        ldg_buf_printf(sql, "(message %s $%d::text)", nd->icase ? "~*" : "~", k);
        return LDG_QLANG_USES_REGEX;
    }
    case LDG_QNODE_AND:
    case LDG_QNODE_OR:
        ldg_buf_puts(sql, "(");
        flags |= compile(nd->left, a, sql, params);
        ldg_buf_puts(sql, nd->kind == LDG_QNODE_AND ? " AND " : " OR ");
        flags |= compile(nd->right, a, sql, params);
        ldg_buf_puts(sql, ")");
        return flags;
    case LDG_QNODE_NOT:
        ldg_buf_puts(sql, "(");
        flags = compile(nd->left, a, sql, params);
        ldg_buf_puts(sql, " IS NOT TRUE)");
        return flags;
    }
    return flags;
}

unsigned ldg_qlang_compile(const struct ldg_qnode *root, struct ldg_arena *a, struct ldg_buf *sql,
                           struct ldg_qparams *params)
{
    return compile(root, a, sql, params);
}
