/*
 * webdir.h: the built web app (`[gateway] web_dir`, normally web/dist) held in memory.
 *
 * The directory is read once, on the main thread before workers start (blocking file I/O is
 * allowed there and nowhere else), into an immutable table that every worker then reads without
 * locks: each file's bytes, its precompressed `<name>.gz` sibling when there is one, a strong
 * ETag per representation (from a SHA-256 of the content) and its Content-Type. Requests never
 * touch the file system, so a path can only ever name a file of the table: traversal out of the
 * directory is impossible by construction, and symbolic links are followed only when they
 * resolve inside it.
 *
 * Bounds: LDG_WEBDIR_MAX_FILES files and LDG_WEBDIR_MAX_BYTES bytes (identity plus gzip); a
 * bigger directory fails the load (a web_dir pointing at the wrong place should not eat memory).
 *
 * Threading: load/free on the main thread; lookups and the pure helpers from any thread.
 */
#ifndef LDG_ROLES_GATEWAY_WEBDIR_H
#define LDG_ROLES_GATEWAY_WEBDIR_H

#include "core/common.h"
#include "core/str.h"

#define LDG_WEBDIR_MAX_FILES 4096
#define LDG_WEBDIR_MAX_BYTES (64u * 1024u * 1024u)
#define LDG_WEBDIR_MAX_DEPTH 16
#define LDG_WEBDIR_MAX_NAME 1024 /* bytes of a relative path */

struct ldg_webfile {
    char *name;        /* owned: path relative to the directory, '/'-separated, no leading '/' */
    const char *type;  /* static: Content-Type */
    bool immutable;    /* under assets/: content-hashed names, cached for a year */
    char *data;        /* owned */
    size_t len;
    char *gz;          /* owned: the `<name>.gz` sibling's bytes; NULL when there is none */
    size_t gz_len;
    char etag[24];     /* "\"<16 hex>\"" of the identity representation */
    char gz_etag[28];  /* "\"<16 hex>-gz\"" of the gzip one; "" without gz */
};

struct ldg_webdir {
    struct ldg_webfile *files; /* owned: sorted by name (bytewise) */
    size_t n;
    const struct ldg_webfile *index; /* borrowed from files: index.html */
    size_t bytes;                    /* total held */
};

/* Read `dir` into d (zeroed by the caller or by a previous free). Returns 0; -ENOENT when the
 * directory is missing or holds no index.html; -EFBIG over the bounds; another negative errno
 * when reading fails. On failure d is left empty and `why` (if cap > 0) says what happened.
 * Blocking: main thread only, before workers start. */
int ldg_webdir_load(struct ldg_webdir *d, const char *dir, char *why, size_t cap) LDG_MUSTCHECK;
void ldg_webdir_free(struct ldg_webdir *d);

/* The file named exactly `name` (relative, no leading '/'), or NULL. */
const struct ldg_webfile *ldg_webdir_find(const struct ldg_webdir *d, const char *name, size_t n);

/* Content-Type for a file name by its extension; application/octet-stream when unknown. */
const char *ldg_webdir_mime(const char *name);

/* Does an Accept-Encoding value allow gzip? ("gzip" or "*" with a non-zero q, gzip not refused). */
bool ldg_webdir_accepts_gzip(struct ldg_str accept_encoding);

/* Does an If-None-Match value match the strong tag `etag` (with quotes)? Weak comparison, as
 * If-None-Match asks: W/ prefixes are ignored; "*" matches. */
bool ldg_webdir_etag_matches(struct ldg_str if_none_match, const char *etag);

/* Request path (raw, starting with '/') -> file name: percent-decoded into out (cap bytes), the
 * leading '/' removed. Returns the name's length, or -EINVAL for a path that can never name a
 * file: a `.` or `..` segment (decoded), a NUL or control byte, a backslash, or too long. */
int ldg_webdir_clean_path(struct ldg_str path, char *out, size_t cap) LDG_MUSTCHECK;

/* Paths that belong to the JSON API (never answered with the web app): /api, /v1, /_debug and
 * /metrics with everything below them, and every path starting with /health. */
bool ldg_webdir_is_api_path(struct ldg_str path);

#endif
