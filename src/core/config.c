/*
 * config.c: the INI reader behind every section's key table.
 *
 * libinih r55 calls the handler once per key, again for duplicates and for indented
 * continuation lines, and cuts lines over 200 bytes (returning that line number). Debian builds
 * it without INI_HANDLER_LINENO, so the handler never sees line numbers: it records the message
 * and returns 0, and inih's return value (the first failing line) supplies the line. We track which
 * keys were seen so duplicates are rejected (except LDG_CFG_MULTI keys), and turn inih's error
 * line into a file:line message.
 */
#include "core/config.h"

#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/buf.h"

struct parse_ctx {
    const struct ldg_cfg_section *secs;
    size_t nsecs;
    const char *name;
    struct ldg_cfg_err *err;
    int failed;
    /* seen[i] is a bitmap per section over its keys (a table holds at most 64 keys). */
    uint64_t *seen;
};

static size_t nkeys(const struct ldg_cfg_key *keys)
{
    size_t n = 0;
    while (keys[n].name)
        n++;
    return n;
}

static void set_err(struct ldg_cfg_err *err, const char *fmt, ...) LDG_PRINTF(2, 3);
static void set_err(struct ldg_cfg_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static int parse_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    while (*v == ' ')
        v++;
    if (*v == '\0')
        return -EINVAL;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v)
        return -EINVAL;
    while (*end == ' ')
        end++;
    if (*end != '\0')
        return -EINVAL;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *type_name(enum ldg_cfg_type t)
{
    switch (t) {
    case LDG_CFG_BOOL:
        return "on|off";
    case LDG_CFG_INT:
        return "integer";
    case LDG_CFG_SIZE:
        return "size in bytes";
    case LDG_CFG_MS:
        return "duration in milliseconds";
    case LDG_CFG_ENUM:
        return "choice";
    case LDG_CFG_STR:
        return "string";
    case LDG_CFG_PATH:
        return "path";
    case LDG_CFG_LIST:
        return "comma-separated list";
    }
    return "?";
}

/* Apply one textual value to a key. `append` joins LIST values for MULTI keys. */
static int apply_value(const struct ldg_cfg_key *k, void *base, const char *value, bool append, char *why,
                       size_t whylen)
{
    void *field = (char *)base + k->offset;
    switch (k->type) {
    case LDG_CFG_BOOL:
        if (parse_bool(value, (bool *)field) < 0) {
            snprintf(why, whylen, "expected on|off, got \"%s\"", value);
            return -EINVAL;
        }
        return 0;
    case LDG_CFG_INT:
    case LDG_CFG_SIZE:
    case LDG_CFG_MS: {
        int64_t x;
        if (parse_int(value, &x) < 0) {
            snprintf(why, whylen, "expected %s, got \"%s\"", type_name(k->type), value);
            return -EINVAL;
        }
        if (x < k->min || x > k->max) {
            snprintf(why, whylen, "%lld is out of range [%lld, %lld]", (long long)x, (long long)k->min,
                     (long long)k->max);
            return -ERANGE;
        }
        *(int64_t *)field = x;
        return 0;
    }
    case LDG_CFG_ENUM:
        for (const struct ldg_cfg_enum *c = k->choices; c && c->name; c++) {
            if (strcasecmp(c->name, value) == 0) {
                *(int *)field = c->value;
                return 0;
            }
        }
        {
            size_t o = (size_t)snprintf(why, whylen, "\"%s\" is not one of", value);
            for (const struct ldg_cfg_enum *c = k->choices; c && c->name && o < whylen; c++)
                o += (size_t)snprintf(why + o, whylen - o, "%s%s", c == k->choices ? " " : "|", c->name);
        }
        return -EINVAL;
    case LDG_CFG_STR:
    case LDG_CFG_PATH:
    case LDG_CFG_LIST: {
        char **s = (char **)field;
        if (append && *s && **s) {
            char *joined = ldg_asprintf("%s,%s", *s, value);
            free(*s);
            *s = joined;
        } else {
            free(*s);
            *s = ldg_strdup(value);
        }
        return 0;
    }
    }
    return -EINVAL;
}

/* Special case: `workers = auto` is accepted for INT keys whose min is 0 (0 means auto). */
static const char *normalise(const struct ldg_cfg_key *k, const char *value)
{
    if (k->type == LDG_CFG_INT && k->min == 0 && strcasecmp(value, "auto") == 0)
        return "0";
    return value;
}

int ldg_cfg_defaults(const struct ldg_cfg_section *secs, size_t n, struct ldg_cfg_err *err)
{
    for (size_t i = 0; i < n; i++) {
        LDG_ASSERT(nkeys(secs[i].keys) <= 64);
        for (const struct ldg_cfg_key *k = secs[i].keys; k->name; k++) {
            char why[256];
            const char *def = k->def ? k->def : "";
            if (apply_value(k, secs[i].base, normalise(k, def), false, why, sizeof why) < 0) {
                set_err(err, "default of [%s] %s: %s", secs[i].name, k->name, why);
                return -EINVAL;
            }
        }
    }
    return 0;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *p = user;
    if (p->failed)
        return 0;
    for (size_t i = 0; i < p->nsecs; i++) {
        if (strcmp(p->secs[i].name, section) != 0)
            continue;
        if (name == NULL)
            return 1; /* section header alone */
        size_t idx = 0;
        for (const struct ldg_cfg_key *k = p->secs[i].keys; k->name; k++, idx++) {
            if (strcmp(k->name, name) != 0)
                continue;
            uint64_t bit = UINT64_C(1) << idx;
            bool dup = (p->seen[i] & bit) != 0;
            if (dup && !(k->flags & LDG_CFG_MULTI)) {
                set_err(p->err, "duplicate key \"%s\" in [%s]", name, section);
                p->failed = -EINVAL;
                return 0;
            }
            p->seen[i] |= bit;
            char why[256];
            if (strchr(value, ';')) {
                /* libinih starts a comment only at a ';' after whitespace: "on;" would keep it. */
                set_err(p->err, "[%s] %s: ';' in the value \"%s\" (a comment needs a space before ';')",
                        section, name, value);
                p->failed = -EINVAL;
                return 0;
            }
            int rc = apply_value(k, p->secs[i].base, normalise(k, value), dup, why, sizeof why);
            if (rc < 0) {
                set_err(p->err, "[%s] %s: %s", section, name, why);
                p->failed = rc;
                return 0;
            }
            return 1;
        }
        set_err(p->err, "unknown key \"%s\" in [%s]", name, section);
        p->failed = -EINVAL;
        return 0;
    }
    set_err(p->err, "unknown section [%s]", section);
    p->failed = -EINVAL;
    return 0;
}

static int finish(struct parse_ctx *p, int rc)
{
    free(p->seen);
    if (p->failed) {
        /* inih returns the line of the first line our handler rejected. */
        char msg[sizeof p->err->msg];
        memcpy(msg, p->err->msg, sizeof msg);
        set_err(p->err, "%s:%d: %s", p->name, rc, msg);
        return p->failed;
    }
    if (rc > 0) {
        set_err(p->err, "%s:%d: syntax error (or line longer than 200 bytes)", p->name, rc);
        return -EINVAL;
    }
    if (rc < 0) {
        set_err(p->err, "%s: cannot read file: %s", p->name, strerror(errno ? errno : EIO));
        return -EIO;
    }
    return 0;
}

/* Every section header must name a known section, even one without keys: libinih calls the
 * handler only for keys, so a misspelt empty section ("[storge]") would pass unnoticed. */
static int check_sections(const struct ldg_cfg_section *secs, size_t n, const char *name, const char *text,
                          struct ldg_cfg_err *err)
{
    int line = 1;
    for (const char *l = text; *l; line++) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        const char *q = l;
        while (q < l + len && (*q == ' ' || *q == '\t'))
            q++;
        if (q < l + len && *q == '[') {
            const char *end = memchr(q, ']', (size_t)(l + len - q));
            if (end) {
                size_t nl = (size_t)(end - q - 1);
                bool known = false;
                for (size_t i = 0; i < n && !known; i++) {
                    known = strlen(secs[i].name) == nl && memcmp(secs[i].name, q + 1, nl) == 0;
                    if (known && secs[i].present)
                        *secs[i].present = true;
                }
                if (!known) {
                    set_err(err, "%s:%d: unknown section [%.*s]", name, line, (int)LDG_MIN(nl, (size_t)64),
                            q + 1);
                    return -EINVAL;
                }
            }
        }
        if (!eol)
            break;
        l = eol + 1;
    }
    return 0;
}

int ldg_cfg_load_string(const struct ldg_cfg_section *secs, size_t n, const char *name, const char *text,
                        struct ldg_cfg_err *err)
{
    int rc = check_sections(secs, n, name, text, err);
    if (rc < 0)
        return rc;
    struct parse_ctx p = {secs, n, name, err, 0, ldg_calloc(n ? n : 1, sizeof(uint64_t))};
    rc = ini_parse_string(text, on_ini, &p);
    return finish(&p, rc);
}

int ldg_cfg_load_file(const struct ldg_cfg_section *secs, size_t n, const char *path, struct ldg_cfg_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        set_err(err, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    /* Read it whole (config files are small; bounded at 4 MiB) so the sections can be checked first. */
    struct ldg_buf b;
    ldg_buf_init(&b);
    char chunk[4096];
    size_t got;
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ldg_buf_append(&b, chunk, got, 4u << 20) < 0) {
            set_err(err, "%s: larger than 4 MiB", path);
            rc = -EFBIG;
            break;
        }
    if (rc == 0 && ferror(f)) {
        set_err(err, "%s: cannot read file: %s", path, strerror(errno ? errno : EIO));
        rc = -EIO;
    }
    fclose(f);
    if (rc == 0 && memchr(ldg_buf_head(&b), '\0', ldg_buf_size(&b))) {
        set_err(err, "%s: not a text file (NUL byte)", path);
        rc = -EINVAL;
    }
    if (rc == 0) {
        char *text = ldg_malloc(ldg_buf_size(&b) + 1);
        memcpy(text, ldg_buf_head(&b), ldg_buf_size(&b));
        text[ldg_buf_size(&b)] = '\0';
        rc = ldg_cfg_load_string(secs, n, path, text, err);
        free(text);
    }
    ldg_buf_free(&b);
    return rc;
}

/* An INT key whose minimum is 0 and whose default is "auto" prints 0 as auto (see normalise). */
static bool is_auto(const struct ldg_cfg_key *k, int64_t v)
{
    return k->type == LDG_CFG_INT && k->min == 0 && v == 0 && k->def && strcasecmp(k->def, "auto") == 0;
}

int ldg_cfg_resolve_paths(const struct ldg_cfg_section *secs, size_t n, const char *base_dir)
{
    for (size_t i = 0; i < n; i++)
        for (const struct ldg_cfg_key *k = secs[i].keys; k->name; k++) {
            if (k->type != LDG_CFG_PATH)
                continue;
            char **s = (char **)((char *)secs[i].base + k->offset);
            if (!*s || !**s || **s == '/')
                continue;
            const char *rel = *s;
            while (rel[0] == '.' && rel[1] == '/')
                rel += 2;
            char *abs = ldg_asprintf("%s/%s", base_dir, *rel ? rel : ".");
            free(*s);
            *s = abs;
        }
    return 0;
}

void ldg_cfg_dump(const struct ldg_cfg_section *secs, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        if (secs[i].present && !*secs[i].present)
            continue;
        fprintf(out, "%s[%s]\n", i ? "\n" : "", secs[i].name);
        for (const struct ldg_cfg_key *k = secs[i].keys; k->name; k++) {
            const void *field = (const char *)secs[i].base + k->offset;
            if (k->desc)
                fprintf(out, "; %s\n", k->desc);
            fprintf(out, "%s = ", k->name);
            /* A PATH flagged secret names where the secret is, which is not itself secret. */
            if ((k->flags & LDG_CFG_SECRET) && k->type != LDG_CFG_PATH) {
                const char *s = (k->type >= LDG_CFG_STR) ? *(char *const *)field : NULL;
                fputs((k->type >= LDG_CFG_STR && (!s || !*s)) ? "" : "********", out);
                fputc('\n', out);
                continue;
            }
            switch (k->type) {
            case LDG_CFG_BOOL:
                fputs(*(const bool *)field ? "on" : "off", out);
                break;
            case LDG_CFG_INT:
            case LDG_CFG_SIZE:
            case LDG_CFG_MS:
                if (is_auto(k, *(const int64_t *)field))
                    fputs("auto", out);
                else
                    fprintf(out, "%lld", (long long)*(const int64_t *)field);
                break;
            case LDG_CFG_ENUM:
                for (const struct ldg_cfg_enum *c = k->choices; c && c->name; c++)
                    if (c->value == *(const int *)field) {
                        fputs(c->name, out);
                        break;
                    }
                break;
            case LDG_CFG_STR:
            case LDG_CFG_PATH:
            case LDG_CFG_LIST: {
                const char *s = *(char *const *)field;
                fputs(s ? s : "", out);
                break;
            }
            }
            fputc('\n', out);
        }
    }
}

void ldg_cfg_free(const struct ldg_cfg_section *secs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (const struct ldg_cfg_key *k = secs[i].keys; k->name; k++)
            if (k->type >= LDG_CFG_STR) {
                char **s = (char **)((char *)secs[i].base + k->offset);
                free(*s);
                *s = NULL;
            }
}

bool ldg_cfg_list_has(const char *list, const char *item, size_t item_len)
{
    if (!list)
        return false;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && end[-1] == ' ')
            end--;
        if ((size_t)(end - start) == item_len && memcmp(start, item, item_len) == 0)
            return true;
    }
    return false;
}

char *ldg_cfg_read_secret(const char *path, struct ldg_cfg_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, "%s: cannot open secret file: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = ldg_malloc(4097);
    size_t n = fread(buf, 1, 4096, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        free(buf);
        set_err(err, "%s: secret file larger than 4096 bytes", path);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}
