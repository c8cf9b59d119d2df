/*
 * webdir.c: see webdir.h.
 *
 * Loading walks the tree once with plain POSIX calls. Each entry is lstat'ed: a symbolic link is
 * resolved with realpath() and kept only when the target lies under the directory's own real
 * path, so a link cannot pull /etc into the table; a directory reached through links is still
 * bounded by LDG_WEBDIR_MAX_DEPTH. Names starting with '.' are skipped (editor and OS litter).
 * After the walk the table is sorted, and every `x.gz` whose `x` exists becomes x's gzip
 * representation instead of a file of its own.
 */
#include "roles/gateway/webdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

struct walk {
    struct ldg_webdir *d;
    size_t cap;
    char root_real[PATH_MAX]; /* realpath of the directory, for the symlink check */
    size_t root_len;
    char *why;
    size_t whycap;
};

static int fail(struct walk *wk, int rc, const char *fmt, ...) LDG_PRINTF(3, 4);
static int fail(struct walk *wk, int rc, const char *fmt, ...)
{
    if (wk->whycap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(wk->why, wk->whycap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int read_all(const char *path, size_t size, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = ldg_malloc(size ? size : 1);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int rc = r < 0 ? -errno : -EIO; /* shrank while we read it */
            close(fd);
            free(buf);
            return rc;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    return 0;
}

static void hex_tag(const char *data, size_t len, char *out, size_t cap, const char *suffix)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, len, md);
    char hex[17];
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, cap, "\"%s%s\"", hex, suffix);
}

static bool inside_root(struct walk *wk, const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return false;
    return strncmp(real, wk->root_real, wk->root_len) == 0 && real[wk->root_len] == '/';
}

static int add_file(struct walk *wk, const char *path, const char *rel, size_t size)
{
    struct ldg_webdir *d = wk->d;
    if (d->n == LDG_WEBDIR_MAX_FILES)
        return fail(wk, -EFBIG, "more than %d files", LDG_WEBDIR_MAX_FILES);
    if (size > LDG_WEBDIR_MAX_BYTES - d->bytes)
        return fail(wk, -EFBIG, "more than %u bytes", LDG_WEBDIR_MAX_BYTES);
    char *data = NULL;
    int rc = read_all(path, size, &data);
    if (rc < 0)
        return fail(wk, rc, "cannot read %s", rel);
    if (d->n == wk->cap) {
        wk->cap = wk->cap ? wk->cap * 2 : 64;
        d->files = ldg_realloc(d->files, wk->cap * sizeof *d->files);
    }
    struct ldg_webfile *f = &d->files[d->n++];
    memset(f, 0, sizeof *f);
    f->name = ldg_strdup(rel);
    f->data = data;
    f->len = size;
    d->bytes += size;
    return 0;
}

static int walk_dir(struct walk *wk, const char *path, const char *rel, int depth)
{
    if (depth > LDG_WEBDIR_MAX_DEPTH)
        return fail(wk, -EFBIG, "directories nested deeper than %d levels", LDG_WEBDIR_MAX_DEPTH);
    DIR *dir = opendir(path);
    if (!dir)
        return fail(wk, -errno, "cannot open directory %s", rel[0] ? rel : ".");
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char full[PATH_MAX], sub[LDG_WEBDIR_MAX_NAME + 1];
        int fn = snprintf(full, sizeof full, "%s/%s", path, de->d_name);
        int sn = snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        if (fn < 0 || (size_t)fn >= sizeof full || sn < 0 || (size_t)sn >= sizeof sub) {
            rc = fail(wk, -ENAMETOOLONG, "name too long under %s", rel[0] ? rel : ".");
            break;
        }
        struct stat st;
        if (lstat(full, &st) < 0)
            continue; /* vanished */
        if (S_ISLNK(st.st_mode)) {
            if (!inside_root(wk, full) || stat(full, &st) < 0)
                continue; /* points outside the directory (or nowhere): never served */
        }
        if (S_ISDIR(st.st_mode))
            rc = walk_dir(wk, full, sub, depth + 1);
        else if (S_ISREG(st.st_mode))
            rc = add_file(wk, full, sub, (size_t)st.st_size);
    }
    closedir(dir);
    return rc;
}

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const struct ldg_webfile *)a)->name, ((const struct ldg_webfile *)b)->name);
}

static void free_file(struct ldg_webfile *f)
{
    free(f->name);
    free(f->data);
    free(f->gz);
}

void ldg_webdir_free(struct ldg_webdir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free_file(&d->files[i]);
    free(d->files);
    memset(d, 0, sizeof *d);
}

/* Pair every x.gz with x; an x.gz without its x stays a file of its own. Paired entries keep
 * their names until the end of the first pass (the binary search reads them). */
static void attach_gzip(struct ldg_webdir *d)
{
    bool *paired = ldg_calloc(d->n ? d->n : 1, sizeof *paired);
    for (size_t i = 0; i < d->n; i++) {
        struct ldg_webfile *f = &d->files[i];
        size_t n = strlen(f->name);
        if (n > 3 && memcmp(f->name + n - 3, ".gz", 3) == 0) {
            struct ldg_webfile *base = (struct ldg_webfile *)ldg_webdir_find(d, f->name, n - 3);
            if (base && !base->gz) {
                base->gz = f->data;
                base->gz_len = f->len;
                f->data = NULL;
                paired[i] = true;
            }
        }
    }
    size_t out = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (paired[i])
            free_file(&d->files[i]);
        else
            d->files[out++] = d->files[i];
    }
    d->n = out;
    free(paired);
}

int ldg_webdir_load(struct ldg_webdir *d, const char *dir, char *why, size_t cap)
{
    struct walk wk = {.d = d, .why = why, .whycap = cap};
    memset(d, 0, sizeof *d);
    if (cap)
        why[0] = 0;
    if (!realpath(dir, wk.root_real))
        return fail(&wk, -ENOENT, "directory %s does not exist", dir);
    wk.root_len = strlen(wk.root_real);
    if (wk.root_len == 1) /* "/": the prefix check needs no trailing slash */
        wk.root_len = 0;
    int rc = walk_dir(&wk, wk.root_real, "", 0);
    if (rc < 0) {
        ldg_webdir_free(d);
        return rc;
    }
    if (d->n) /* qsort must not see a NULL base, even for no elements */
        qsort(d->files, d->n, sizeof *d->files, cmp_files);
    attach_gzip(d);
    for (size_t i = 0; i < d->n; i++) {
        struct ldg_webfile *f = &d->files[i];
        f->type = ldg_webdir_mime(f->name);
        f->immutable = strncmp(f->name, "assets/", 7) == 0;
        hex_tag(f->data, f->len, f->etag, sizeof f->etag, "");
        if (f->gz)
            hex_tag(f->data, f->len, f->gz_etag, sizeof f->gz_etag, "-gz");
    }
    d->index = ldg_webdir_find(d, "index.html", 10);
    if (!d->index) {
        ldg_webdir_free(d);
        return fail(&wk, -ENOENT, "no index.html in %s", dir);
    }
    return 0;
}

const struct ldg_webfile *ldg_webdir_find(const struct ldg_webdir *d, const char *name, size_t n)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = d->files[mid].name;
        /* Compare s (NUL-terminated) with name[0..n) bytewise, as strcmp sorted them. */
        int c = strncmp(s, name, n);
        if (c == 0)
            c = s[n] == '\0' ? 0 : 1;
        if (c == 0)
            return &d->files[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *ldg_webdir_mime(const char *name)
{
    static const struct {
        const char *ext, *type;
    } tab[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".gz", "application/gzip"},
    };
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < LDG_ARRAY_SIZE(tab); i++)
            if (strcasecmp(dot, tab[i].ext) == 0)
                return tab[i].type;
    return "application/octet-stream";
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct ldg_str trim(const char *p, size_t n)
{
    while (n && ows(*p))
        p++, n--;
    while (n && ows(p[n - 1]))
        n--;
    return ldg_str_make(p, n);
}

/* q value of the parameters after a coding ("; q=0.5"): 0 when it is zero, 1 otherwise. */
static bool q_nonzero(struct ldg_str params)
{
    size_t i = 0;
    while (i < params.n) {
        size_t s = i;
        while (i < params.n && params.p[i] != ';')
            i++;
        struct ldg_str prm = trim(params.p + s, i - s);
        i++;
        if (prm.n >= 2 && (prm.p[0] == 'q' || prm.p[0] == 'Q') && prm.p[1] == '=') {
            /* "0", "0.", "0.0", "0.000": zero; anything else: accepted. */
            size_t k = 2;
            if (k >= prm.n || prm.p[k] != '0')
                return true;
            k++;
            if (k < prm.n && prm.p[k] == '.')
                k++;
            while (k < prm.n && prm.p[k] == '0')
                k++;
            return k < prm.n;
        }
    }
    return true;
}

bool ldg_webdir_accepts_gzip(struct ldg_str v)
{
    int gzip = -1, star = -1; /* -1 unmentioned, 0 refused, 1 accepted */
    size_t i = 0;
    while (v.p && i < v.n) {
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        struct ldg_str item = trim(v.p + s, i - s);
        i++;
        size_t nl = 0;
        while (nl < item.n && item.p[nl] != ';')
            nl++;
        struct ldg_str coding = trim(item.p, nl);
        int ok = q_nonzero(ldg_str_make(item.p + nl + (nl < item.n), item.n - nl - (nl < item.n)));
        if (ldg_str_caseeq(coding, "gzip") || ldg_str_caseeq(coding, "x-gzip"))
            gzip = ok;
        else if (ldg_str_eq(coding, "*"))
            star = ok;
    }
    return gzip == 1 || (gzip == -1 && star == 1);
}

bool ldg_webdir_etag_matches(struct ldg_str v, const char *etag)
{
    size_t en = strlen(etag);
    size_t i = 0;
    while (v.p && i < v.n) {
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        struct ldg_str t = trim(v.p + s, i - s);
        i++;
        if (ldg_str_eq(t, "*"))
            return true;
        if (t.n > 2 && t.p[0] == 'W' && t.p[1] == '/')
            t = ldg_str_make(t.p + 2, t.n - 2);
        if (t.n == en && memcmp(t.p, etag, en) == 0)
            return true;
    }
    return false;
}

int ldg_webdir_clean_path(struct ldg_str path, char *out, size_t cap)
{
    if (path.n == 0 || path.p[0] != '/' || path.n > LDG_WEBDIR_MAX_NAME || cap < path.n)
        return -EINVAL;
    size_t n = ldg_url_decode(out, path.p + 1, path.n - 1, false);
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? (unsigned char)out[i] : '/';
        if (c < 0x20 || c == 0x7f || c == '\\')
            return -EINVAL;
        if (c == '/') {
            size_t len = i - seg;
            if ((len == 1 && out[seg] == '.') || (len == 2 && out[seg] == '.' && out[seg + 1] == '.'))
                return -EINVAL;
            seg = i + 1;
        }
    }
    return (int)n;
}

static bool under(struct ldg_str path, const char *prefix)
{
    size_t n = strlen(prefix);
    return path.n >= n && memcmp(path.p, prefix, n) == 0 && (path.n == n || path.p[n] == '/');
}

bool ldg_webdir_is_api_path(struct ldg_str path)
{
    if (path.n >= 7 && memcmp(path.p, "/health", 7) == 0)
        return true;
    return under(path, "/api") || under(path, "/v1") || under(path, "/_debug") || under(path, "/metrics");
}
