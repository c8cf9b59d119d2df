/*
 * textrules.c: the text rules of accounts (see auth.h): v1's email and password rules with
 * Python's Unicode character classes, whitespace stripping as str.strip(), and header text made
 * safe for a column.
 */
#include "roles/auth/auth.h"

#include <locale.h>
#include <wctype.h>

#include "core/json.h"

/* ---- rules --------------------------------------------------------------------------------- */

static bool ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool ascii_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* v1's register rule: `..` refused first, then
 * ^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]@[a-zA-Z0-9][a-zA-Z0-9.-]*[a-zA-Z0-9]\.[a-zA-Z]{2,}$
 * (the TLD holds no dot, so the domain ends at the last dot). Returns the message or NULL. */
const char *ldg__auth_email_error(const char *s)
{
    if (strstr(s, ".."))
        return "Invalid email format: consecutive dots not allowed";
    const char *at = strchr(s, '@');
    const char *bad = "Invalid email format";
    if (!at || at - s < 2 || !ascii_alnum(s[0]) || !ascii_alnum(at[-1]))
        return bad;
    for (const char *c = s; c < at; c++)
        if (!ascii_alnum(*c) && *c != '.' && *c != '_' && *c != '-')
            return bad;
    const char *dom = at + 1;
    const char *dot = strrchr(dom, '.');
    if (!dot || dot - dom < 2 || !ascii_alnum(dom[0]) || !ascii_alnum(dot[-1]))
        return bad;
    for (const char *c = dom; c < dot; c++)
        if (!ascii_alnum(*c) && *c != '.' && *c != '-')
            return bad;
    size_t tld = strlen(dot + 1);
    if (tld < 2)
        return bad;
    for (const char *c = dot + 1; *c; c++)
        if (!ascii_alpha(*c))
            return bad;
    return NULL;
}

/* Decode one code point of valid UTF-8 (ldg_json_parse guarantees validity). */
static uint32_t utf8_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t c = p[0];
    size_t n = 1;
    if (c >= 0xF0) {
        c = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
        n = 4;
    } else if (c >= 0xE0) {
        c = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        n = 3;
    } else if (c >= 0xC0) {
        c = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
        n = 2;
    }
    *pp = p + n;
    return c;
}

/* Unicode-aware classes as Python's str.isupper/islower/isdigit see single characters. Letters
 * beyond ASCII use glibc's C.UTF-8 tables (ldg__auth_textrules_init); digits
 * use the decimal-digit blocks most likely in a password. */
static locale_t utf8_locale;

static bool unicode_digit(uint32_t c)
{
    static const uint32_t zeros[] = {0x660,  0x6F0,  0x7C0,  0x966,  0x9E6,  0xA66,  0xAE6,  0xB66,
                                     0xBE6,  0xC66,  0xCE6,  0xD66,  0xDE6,  0xE50,  0xED0,  0xF20,
                                     0x1040, 0x1090, 0x17E0, 0x1810, 0x2080, 0xFF10, 0x1D7CE};
    if (c >= '0' && c <= '9')
        return true;
    if (c == 0xB2 || c == 0xB3 || c == 0xB9 || c == 0x2070 || (c >= 0x2074 && c <= 0x2079) ||
        (c >= 0x2460 && c <= 0x2468))
        return true;
    for (size_t i = 0; i < LDG_ARRAY_SIZE(zeros); i++)
        if (c >= zeros[i] && c <= zeros[i] + 9)
            return true;
    return c >= 0x1D7CE && c <= 0x1D7FF;
}

const char *ldg__auth_password_error(const char *pw)
{
    bool up = false, lo = false, dg = false;
    const unsigned char *p = (const unsigned char *)pw;
    while (*p) {
        uint32_t c = utf8_next(&p);
        if (c < 0x80) {
            up |= c >= 'A' && c <= 'Z';
            lo |= c >= 'a' && c <= 'z';
        } else if (utf8_locale) {
            up |= iswupper_l((wint_t)c, utf8_locale) != 0;
            lo |= iswlower_l((wint_t)c, utf8_locale) != 0;
        }
        dg |= unicode_digit(c);
    }
    if (!up)
        return "Password must contain uppercase letter";
    if (!lo)
        return "Password must contain lowercase letter";
    if (!dg)
        return "Password must contain digit";
    return NULL;
}

/* Python's str.isspace for the characters str.strip() removes. */
static bool unicode_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

char *ldg__auth_strip(struct ldg_req *req, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *start = NULL, *end = NULL;
    while (*p) {
        const unsigned char *here = p;
        uint32_t c = utf8_next(&p);
        if (!unicode_space(c)) {
            if (!start)
                start = here;
            end = p;
        }
    }
    if (!start)
        return ldg_arena_strndup(&req->arena, "", 0);
    return ldg_arena_strndup(&req->arena, (const char *)start, (size_t)(end - start));
}

const char *ldg__auth_clean_text(struct ldg_req *req, struct ldg_str v, size_t max_chars)
{
    if (!v.p || !v.n)
        return NULL;
    char *out = ldg_arena_alloc(&req->arena, LDG_MIN(v.n, max_chars * 4) + 1);
    size_t o = 0, chars = 0, i = 0;
    while (i < v.n && chars < max_chars) {
        unsigned char c = (unsigned char)v.p[i];
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        size_t cnt = 0;
        if (len > 1 && i + len <= v.n && ldg_utf8_count(v.p + i, len, &cnt) == 0 && cnt == 1) {
            memcpy(out + o, v.p + i, len);
            o += len;
            i += len;
            chars++;
            continue;
        }
        i++;
        if (len == 1 && (c < 0x20 || c == 0x7F))
            continue;
        out[o++] = len == 1 ? (char)c : '?';
        chars++;
    }
    out[o] = 0;
    return o ? out : NULL;
}

void ldg__auth_textrules_init(void)
{
    if (!utf8_locale) /* main thread, before workers start */
        utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}
