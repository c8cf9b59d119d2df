/*
 * config.h: INI config (libinih) mapped onto declarative key tables, one table per section.
 *
 * Each section names a key table and a base pointer to a plain C struct; each key names the
 * field's offset, its type, its default as text (parsed by the same code as user input), its
 * bounds and a one-line description. Unknown sections and keys, duplicate keys, bad values and
 * out-of-range numbers are errors naming file:line.
 *
 * Field storage by type:
 *   BOOL -> bool; INT, SIZE (bytes), MS (milliseconds) -> int64_t; ENUM -> int;
 *   STR, PATH, LIST (comma separated, kept as text) -> char * (owned by the struct; released by
 *   ldg_cfg_free).
 *
 * Threading: parsing and freeing happen on the main thread before workers start / after they
 * stop; afterwards config structs are immutable and may be read from any thread.
 */
#ifndef LDG_CONFIG_H
#define LDG_CONFIG_H

#include "core/common.h"

enum ldg_cfg_type {
    LDG_CFG_BOOL,
    LDG_CFG_INT,
    LDG_CFG_SIZE,
    LDG_CFG_MS,
    LDG_CFG_ENUM,
    LDG_CFG_STR,
    LDG_CFG_PATH,
    LDG_CFG_LIST,
};

/* Key flags. */
#define LDG_CFG_RESTART 0x1u /* only applied on restart (everything, for now) */
#define LDG_CFG_SECRET 0x2u  /* value masked by --print-config */
#define LDG_CFG_MULTI 0x4u   /* may repeat; values are joined with ',' (LIST only) */

struct ldg_cfg_enum {
    const char *name;
    int value;
};

struct ldg_cfg_key {
    const char *name;
    enum ldg_cfg_type type;
    size_t offset;
    const char *def; /* default as text; NULL means "" for strings */
    int64_t min, max;
    const struct ldg_cfg_enum *choices; /* ENUM only; terminated by {NULL, 0} */
    unsigned flags;
    const char *desc;
};

/* A section: its name in the INI file, its key table ({0}-terminated) and the struct it fills. */
struct ldg_cfg_section {
    const char *name;
    const struct ldg_cfg_key *keys;
    void *base; /* borrowed */
    /* Nullable. An optional section (e.g. [redis.1]): set to true when its header appears in the
     * file; --print-config prints the section only when true. */
    bool *present;
};

struct ldg_cfg_err {
    char msg[512];
};

/* Fill every field of every section with its default. Returns 0 or -EINVAL (a bad default). */
int ldg_cfg_defaults(const struct ldg_cfg_section *secs, size_t n, struct ldg_cfg_err *err) LDG_MUSTCHECK;

/* Parse an INI file / string over the sections (defaults must have been applied first).
 * `name` is used for error messages (file name). Returns 0 or a negative code with err filled. */
int ldg_cfg_load_file(const struct ldg_cfg_section *secs, size_t n, const char *path,
                      struct ldg_cfg_err *err) LDG_MUSTCHECK;
int ldg_cfg_load_string(const struct ldg_cfg_section *secs, size_t n, const char *name, const char *text,
                        struct ldg_cfg_err *err) LDG_MUSTCHECK;

/* Make every non-empty relative PATH value absolute by prefixing base_dir (the config file's
 * directory): paths in a config file mean the same whatever the working directory. */
int ldg_cfg_resolve_paths(const struct ldg_cfg_section *secs, size_t n, const char *base_dir);

/* Print the effective values as INI: secret values masked (the paths of secret files are shown),
 * `auto` for INT keys whose default is auto and whose value is 0. The output parses again. */
void ldg_cfg_dump(const struct ldg_cfg_section *secs, size_t n, FILE *out);

/* Release owned strings. */
void ldg_cfg_free(const struct ldg_cfg_section *secs, size_t n);

/* Does the comma-separated list contain item (exact, whitespace around entries ignored)? */
bool ldg_cfg_list_has(const char *list, const char *item, size_t item_len);

/* Read a secret file: contents with one trailing newline stripped, owned by caller.
 * Returns NULL with err filled on failure. Blocking: main thread only, before workers start. */
char *ldg_cfg_read_secret(const char *path, struct ldg_cfg_err *err);

#endif
