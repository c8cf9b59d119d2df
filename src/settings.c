/*
 * settings.c: the core sections' key tables and the assembly of every section (core + roles)
 * into one list for the INI reader, --print-config and the doc-drift unit test.
 */
#include "settings.h"

#include "http/proxy.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>
#include <uv.h>

#include "auth/apikey.h"
#include "core/alloc.h"
#include "core/log.h"
#include "roles/auth/auth.h"

#define SRV(f) offsetof(struct ldg_server_cfg, f)
#define KB 1024LL
#define MB (1024LL * 1024LL)

static const struct ldg_cfg_key server_keys[] = {
    {"host", LDG_CFG_STR, SRV(host), "127.0.0.1", 0, 0, NULL, 0,
     "Address to listen on (IPv4 or IPv6 literal)"},
    {"port", LDG_CFG_INT, SRV(port), "8020", 1, 65535, NULL, 0, "TCP port to listen on"},
    {"workers", LDG_CFG_INT, SRV(workers), "auto", 0, 256, NULL, 0,
     "Worker threads (one libuv loop each, SO_REUSEPORT listeners); auto = one per core"},
    {"backlog", LDG_CFG_INT, SRV(backlog), "511", 1, 65535, NULL, 0, "listen(2) backlog per worker"},
    {"max_connections", LDG_CFG_INT, SRV(max_connections), "10000", 1, 1000000, NULL, 0,
     "Open connections per worker; more are closed at accept"},
    {"max_header_bytes", LDG_CFG_SIZE, SRV(max_header_bytes), "16384", 1024, 1 * MB, NULL, 0,
     "Request line plus headers; larger gets 431"},
    {"max_headers", LDG_CFG_INT, SRV(max_headers), "100", 8, 1000, NULL, 0,
     "Header fields per request; more gets 431"},
    {"max_body_bytes", LDG_CFG_SIZE, SRV(max_body_bytes), "1048576", 0, 1024 * MB, NULL, 0,
     "Request body limit for routes that set none (as received, before gzip); larger gets 413"},
    {"max_inflated_bytes", LDG_CFG_SIZE, SRV(max_inflated_bytes), "16777216", 1 * KB, 1024 * MB, NULL, 0,
     "Limit on a gzip request body once inflated; larger gets 413"},
    {"max_inflate_ratio", LDG_CFG_INT, SRV(max_inflate_ratio), "100", 1, 100000, NULL, 0,
     "A gzip body may inflate to this many times its size (at least 1 MiB); more gets 413"},
    {"max_buffered_body_bytes", LDG_CFG_SIZE, SRV(max_buffered_body_bytes), "134217728", 64 * KB, 64LL * 1024 * MB,
     NULL, 0, "Request body bytes buffered at once per worker, all connections together; beyond it 503"},
    {"header_timeout_ms", LDG_CFG_MS, SRV(header_timeout_ms), "10000", 10, 3600000, NULL, 0,
     "Time to receive a request's head, from its first byte (or from accept); never extended"},
    {"body_timeout_ms", LDG_CFG_MS, SRV(body_timeout_ms), "30000", 10, 3600000, NULL, 0,
     "Time to receive a whole request body, plus its length at body_min_rate; never extended"},
    {"body_min_rate", LDG_CFG_SIZE, SRV(body_min_rate), "4096", 1, 1024 * MB, NULL, 0,
     "Bytes per second a request body must average: each byte adds 1/rate s to body_timeout_ms"},
    {"idle_timeout_ms", LDG_CFG_MS, SRV(idle_timeout_ms), "60000", 10, 3600000, NULL, 0,
     "Keep-alive: how long an idle connection is kept"},
    {"write_timeout_ms", LDG_CFG_MS, SRV(write_timeout_ms), "30000", 10, 3600000, NULL, 0,
     "Time to write a response to a slow client"},
    {"request_timeout_ms", LDG_CFG_MS, SRV(request_timeout_ms), "30000", 10, 3600000, NULL, 0,
     "Deadline for a handler to answer; then 503"},
    {"drain_timeout_ms", LDG_CFG_MS, SRV(drain_timeout_ms), "10000", 0, 3600000, NULL, 0,
     "On SIGTERM/SIGINT: time in-flight requests get before connections are closed"},
    {"sweep_interval_ms", LDG_CFG_MS, SRV(sweep_interval_ms), "250", 10, 10000, NULL, 0,
     "Period of the per-worker timer that enforces the timeouts above"},
    {"threadpool_size", LDG_CFG_INT, SRV(threadpool_size), "4", 1, 128, NULL, 0,
     "libuv thread pool size (password hashing, file I/O), shared by all workers"},
    {"cors_origins", LDG_CFG_LIST, SRV(cors_origins), "", 0, 0, NULL, 0,
     "Origins allowed by CORS (comma-separated, * for any); empty = CORS off"},
    {"trusted_proxies", LDG_CFG_LIST, SRV(trusted_proxies), "", 0, 0, NULL, 0,
     "Reverse proxies (addresses, CIDRs) whose Forwarded / X-Forwarded-For name the client; empty = none"},
    {"schema_dir", LDG_CFG_PATH, SRV(schema_dir), "schema", 0, 0, NULL, 0,
     "Directory with auth/ and logs/ migrations, used by --migrate; relative to the config file's "
     "directory"},
    {"metrics_token_file", LDG_CFG_PATH, SRV(metrics_token_file), "", 0, 0, NULL, 0,
     "File with a bearer token that allows /metrics from non-loopback addresses"},
    {"share_listener", LDG_CFG_BOOL, SRV(share_listener), "off", 0, 0, NULL, 0,
     "Let another ledgerd listen on the same host:port (off: a second one refuses to start)"},
    {"health_queue_max_age_ms", LDG_CFG_MS, SRV(health_queue_max_age_ms), "60000", 1000, 86400000, NULL, 0,
     "/health/deep degrades when the oldest queued log waits longer than this for storage"},
    {"debug_endpoints", LDG_CFG_BOOL, SRV(debug_endpoints), "off", 0, 0, NULL, 0,
     "Serve /_debug/sleep (for tests of timeouts and draining); keep off in production"},
    {0},
};

static const struct ldg_cfg_enum level_choices[] = {{"debug", LDG_LOG_DEBUG},
                                                    {"info", LDG_LOG_INFO},
                                                    {"warn", LDG_LOG_WARN},
                                                    {"error", LDG_LOG_ERROR},
                                                    {NULL, 0}};
static const struct ldg_cfg_enum format_choices[] = {
    {"logfmt", LDG_LOG_LOGFMT}, {"plain", LDG_LOG_PLAIN}, {NULL, 0}};

static const struct ldg_cfg_key log_keys[] = {
    {"level", LDG_CFG_ENUM, offsetof(struct ldg_log_cfg, level), "info", 0, 0, level_choices, 0,
     "Lowest level written to stderr: debug, info, warn, error"},
    {"format", LDG_CFG_ENUM, offsetof(struct ldg_log_cfg, format), "logfmt", 0, 0, format_choices, 0,
     "logfmt (key=value, for machines) or plain (for a terminal)"},
    {"access_log", LDG_CFG_BOOL, offsetof(struct ldg_log_cfg, access_log), "off", 0, 0, NULL, 0,
     "One line per request (method, path, status, duration, bytes, request id)"},
    {0},
};

static const struct ldg_cfg_key node_keys[] = {
    {"name", LDG_CFG_STR, offsetof(struct ldg_node_cfg, name), "", 0, 0, NULL, 0,
     "This process's name in a fleet: in storage consumer names, logs and /metrics; empty = the host name"},
    {0},
};

static const char *const redis_extra_names[LDG_SHARDS_MAX - 1] = {
    "redis.1", "redis.2",  "redis.3",  "redis.4",  "redis.5",  "redis.6",  "redis.7", "redis.8",
    "redis.9", "redis.10", "redis.11", "redis.12", "redis.13", "redis.14", "redis.15"};

/* [roles]: one on/off key per registered role, generated from the registry. */
static struct ldg_cfg_key role_keys[LDG_ROLE_MAX + 1];
static char role_descs[LDG_ROLE_MAX][64];

static void build_role_keys(void)
{
    for (size_t i = 0; i < ldg_roles_count; i++) {
        snprintf(role_descs[i], sizeof role_descs[i], "Run the %s role in this process", ldg_roles[i]->name);
        role_keys[i] = (struct ldg_cfg_key){ldg_roles[i]->name,
                                            LDG_CFG_BOOL,
                                            offsetof(struct ldg_roles_cfg, enabled) + i * sizeof(bool),
                                            "on",
                                            0,
                                            0,
                                            NULL,
                                            0,
                                            role_descs[i]};
    }
    role_keys[ldg_roles_count] = (struct ldg_cfg_key){0};
}

static void add_section(struct ldg_config *c, const char *name, const struct ldg_cfg_key *keys, void *base)
{
    LDG_ASSERT(c->nsections < LDG_ARRAY_SIZE(c->sections));
    c->sections[c->nsections++] = (struct ldg_cfg_section){name, keys, base, NULL};
}

static const struct ldg_cfg_key pg_shards_keys[] = {
    {"projects", LDG_CFG_LIST, offsetof(struct ldg_pg_shards_cfg, projects), "", 0, 0, NULL, LDG_CFG_MULTI,
     "Projects pinned to a logs shard, as project:shard (e.g. 42:1, 57:0); others go by jump hash"},
    {0},
};

/* The number N of a "[<prefix>N]" section header on line l (len bytes), or -1. */
static int numbered_section(const char *l, size_t len, const char *prefix)
{
    while (len && (*l == ' ' || *l == '\t'))
        l++, len--;
    size_t pl = strlen(prefix);
    if (len < pl + 3 || l[0] != '[' || memcmp(l + 1, prefix, pl) != 0)
        return -1;
    int n = 0;
    size_t i = pl + 1;
    for (; i < len && l[i] >= '0' && l[i] <= '9' && n < 1000; i++)
        n = n * 10 + (l[i] - '0');
    return (i > pl + 1 && i < len && l[i] == ']') ? n : -1;
}

/* The numbered sections [pg_logs.N] and [pg_logs_replica.N] are registered only when the text
 * holds them (out-of-range numbers are left out, so the reader reports them as unknown). */
static void add_numbered_sections(struct ldg_config *c, const char *text)
{
    bool shard[LDG_PG_MAX_SHARDS] = {false}, replica[LDG_PG_MAX_REPLICAS + 1] = {false};
    for (const char *l = text ? text : ""; *l;) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        int n = numbered_section(l, len, "pg_logs.");
        if (n >= 1 && n < LDG_PG_MAX_SHARDS)
            shard[n] = true;
        n = numbered_section(l, len, "pg_logs_replica.");
        if (n >= 1 && n <= LDG_PG_MAX_REPLICAS)
            replica[n] = true;
        if (!eol)
            break;
        l = eol + 1;
    }
    size_t names = 0;
    for (int n = 1; n < LDG_PG_MAX_SHARDS; n++)
        if (shard[n]) {
            char *name = c->dyn_section_names[names++];
            snprintf(name, sizeof c->dyn_section_names[0], "pg_logs.%d", n);
            add_section(c, name, ldg_pg_logs_cfg_keys, &c->pg_shard[n]);
        }
    for (int n = 1; n <= LDG_PG_MAX_REPLICAS; n++)
        if (replica[n]) {
            char *name = c->dyn_section_names[names++];
            snprintf(name, sizeof c->dyn_section_names[0], "pg_logs_replica.%d", n);
            c->pg_replica_number[c->npg_replicas] = n;
            add_section(c, name, ldg_pg_replica_cfg_keys, &c->pg_replica[c->npg_replicas++]);
        }
}

static int prepare(struct ldg_config *c, const char *text, struct ldg_cfg_err *err)
{
    memset(c, 0, sizeof *c);
    build_role_keys();
    add_section(c, "server", server_keys, &c->server);
    add_section(c, "log", log_keys, &c->log);
    add_section(c, "roles", role_keys, &c->roles);
    add_section(c, "node", node_keys, &c->node);
    add_section(c, "redis", ldg_redis_cfg_keys, &c->redis);
    for (size_t i = 0; i < LDG_ARRAY_SIZE(redis_extra_names); i++) {
        add_section(c, redis_extra_names[i], ldg_redis_cfg_keys, &c->redis_extra[i]);
        c->sections[c->nsections - 1].present = &c->redis_extra_present[i];
    }
    add_section(c, "pg_auth", ldg_pg_auth_cfg_keys, &c->pg_auth);
    add_section(c, "pg_logs", ldg_pg_logs_cfg_keys, &c->pg_logs);
    add_section(c, "pg_shards", pg_shards_keys, &c->pg_shards);
    add_numbered_sections(c, text);
    for (size_t i = 0; i < ldg_roles_count; i++) {
        const struct ldg_role *r = ldg_roles[i];
        c->role_cfg[i] = ldg_calloc(1, r->cfg_size ? r->cfg_size : 1);
        add_section(c, r->name, r->keys, c->role_cfg[i]);
    }
    return ldg_cfg_defaults(c->sections, c->nsections, err);
}

/* Roles that answer authenticated API routes rely on the gateway in the same process to check
 * credentials; without it every request would get 403. A process with no role serves nothing. */
static int validate_roles(const struct ldg_config *c, struct ldg_cfg_err *err)
{
    static const char *const need_gateway[] = {"auth", "ingest", "query", "notifications"};
    int gw = ldg_role_index("gateway");
    bool any = false;
    for (size_t i = 0; i < ldg_roles_count; i++)
        any = any || c->roles.enabled[i];
    if (!any) {
        snprintf(
            err->msg, sizeof err->msg,
            "%s: [roles] every role is off: this process would serve nothing (see docs/operations.md#fleet)",
            c->path ? c->path : "<string>");
        return -EINVAL;
    }
    for (size_t j = 0; j < LDG_ARRAY_SIZE(need_gateway); j++) {
        int i = ldg_role_index(need_gateway[j]);
        if (i >= 0 && gw >= 0 && c->roles.enabled[i] && !c->roles.enabled[gw]) {
            snprintf(err->msg, sizeof err->msg,
                     "%s: [roles] %s = on needs gateway = on in the same process (the gateway checks the "
                     "credentials of its routes); switch gateway on or %s off",
                     c->path ? c->path : "<string>", need_gateway[j], need_gateway[j]);
            return -EINVAL;
        }
    }
    return 0;
}

/* [redis.N] sections: contiguous from 1, no project_shards of their own; then the project map. */
static int validate_redis_shards(struct ldg_config *c, struct ldg_cfg_err *err)
{
    unsigned n = 1;
    while (n < LDG_SHARDS_MAX && c->redis_extra_present[n - 1])
        n++;
    for (unsigned i = n; i < LDG_SHARDS_MAX; i++)
        if (c->redis_extra_present[i - 1]) {
            snprintf(err->msg, sizeof err->msg,
                     "%s: [redis.%u] without [redis.%u]: shards are numbered from 1 "
                     "without gaps",
                     c->path ? c->path : "<string>", i, n);
            return -EINVAL;
        }
    for (unsigned i = 1; i < n; i++)
        if (c->redis_extra[i - 1].project_shards && *c->redis_extra[i - 1].project_shards) {
            snprintf(err->msg, sizeof err->msg, "%s: [redis.%u] project_shards: set it in [redis] only",
                     c->path ? c->path : "<string>", i);
            return -EINVAL;
        }
    c->nredis = n;
    char why[256];
    if (ldg_shardmap_init(&c->redis_map, n, c->redis.project_shards, why, sizeof why) < 0) {
        snprintf(err->msg, sizeof err->msg, "%s: [redis] %s", c->path ? c->path : "<string>", why);
        return -EINVAL;
    }
    return 0;
}

/* Shards are numbered 1.. without gaps; a replica names an existing shard; the pins parse. */
static int validate_shards(struct ldg_config *c, struct ldg_cfg_err *err)
{
    c->npg_shards = 1;
    for (int n = 1; n < LDG_PG_MAX_SHARDS; n++) {
        bool present = false;
        for (size_t i = 0; i < c->nsections && !present; i++)
            present = c->sections[i].base == &c->pg_shard[n];
        if (present && c->npg_shards != n) {
            snprintf(err->msg, sizeof err->msg,
                     "[pg_logs.%d] needs [pg_logs.%d]: shards are numbered 1, 2, ... without gaps", n,
                     c->npg_shards);
            return -EINVAL;
        }
        if (present)
            c->npg_shards = n + 1;
    }
    for (int i = 0; i < c->npg_replicas; i++)
        if (c->pg_replica[i].shard >= c->npg_shards) {
            snprintf(err->msg, sizeof err->msg,
                     "[pg_logs_replica.%d] shard = %lld: no such logs shard (%d configured)",
                     c->pg_replica_number[i], (long long)c->pg_replica[i].shard, c->npg_shards);
            return -EINVAL;
        }
    char why[200];
    if (ldg_pgshard_map_parse(&c->pg_shard_map, c->pg_shards.projects, c->npg_shards, why, sizeof why) < 0) {
        snprintf(err->msg, sizeof err->msg, "[pg_shards] projects: %s", why);
        return -EINVAL;
    }
    return 0;
}

/* [node] name: the host name when empty. */
static void resolve_node(struct ldg_config *c)
{
    if (c->node.name && *c->node.name)
        return;
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "ledgerd");
    host[sizeof host - 1] = '\0';
    free(c->node.name);
    c->node.name = ldg_strdup(host);
}

static int validate(struct ldg_config *c, struct ldg_cfg_err *err)
{
    int rrc = validate_roles(c, err);
    if (rrc < 0)
        return rrc;
    if ((rrc = validate_shards(c, err)) < 0)
        return rrc;
    rrc = validate_redis_shards(c, err);
    if (rrc < 0)
        return rrc;
    resolve_node(c);
    char bad[64];
    if (!ldg_proxy_list_valid(c->server.trusted_proxies, bad, sizeof bad)) {
        snprintf(err->msg, sizeof err->msg, "[server] trusted_proxies: '%s' is not an address or CIDR", bad);
        return -EINVAL;
    }
    for (size_t i = 0; i < ldg_roles_count; i++) {
        const struct ldg_role *r = ldg_roles[i];
        if (r->validate) {
            int rc = r->validate(c->role_cfg[i], err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Set while checking (--check-config, --print-config): a secret file that does not exist yet is
 * reported on stderr instead of failing, so a config can be checked before its secrets are made
 * (a start still needs them). Main thread only. */
static bool secrets_may_be_missing;

static int read_secret(const char *path, char **out, struct ldg_cfg_err *err)
{
    if (!path || !*path)
        return 0;
    if (secrets_may_be_missing && access(path, F_OK) != 0 && errno == ENOENT) {
        fprintf(stderr,
                "ledgerd: note: secret file %s does not exist yet; ledgerd will not start without it. "
                "Make one with:\n  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s)\n",
                path, path);
        return 0;
    }
    *out = ldg_cfg_read_secret(path, err);
    return *out ? 0 : -EINVAL;
}

/* [auth] jwt_secret_file: read it, or (no file configured) make a random per-process secret, which
 * only suits a single process: tokens then die with it and other processes cannot verify them. */
static int load_jwt_secret(struct ldg_config *c, struct ldg_cfg_err *err)
{
    int ai = ldg_role_index("auth");
    const struct ldg_auth_cfg *ac = ai >= 0 ? c->role_cfg[ai] : NULL;
    if (ac && ac->jwt_secret_file && *ac->jwt_secret_file) {
        int rc = read_secret(ac->jwt_secret_file, &c->jwt_secret, err);
        if (rc < 0)
            return rc;
        if (!c->jwt_secret) /* missing while checking: reported by read_secret */
            return 0;
        if (strlen(c->jwt_secret) < 32) {
            snprintf(err->msg, sizeof err->msg, "%s: the JWT secret must be at least 32 bytes",
                     ac->jwt_secret_file);
            return -EINVAL;
        }
        return 0;
    }
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        snprintf(err->msg, sizeof err->msg, "no randomness for the JWT secret");
        return -EIO;
    }
    c->jwt_secret = ldg_malloc(LDG_B64URL_LEN(sizeof raw) + 1);
    ldg_base64url_encode(raw, sizeof raw, c->jwt_secret);
    OPENSSL_cleanse(raw, sizeof raw);
    c->jwt_secret_generated = true;
    return 0;
}

/* The directory of the config file, absolute: relative paths in the file are resolved against it. */
static char *config_dir(const char *path)
{
    char *copy = ldg_strdup(path);
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (slash == copy ? "/" : (*slash = '\0', copy)) : ".";
    char *real = realpath(dir, NULL);
    char *out = real ? ldg_strdup(real) : ldg_strdup(dir);
    free(real);
    free(copy);
    return out;
}

int ldg_settings_load_mode(struct ldg_config *c, const char *path, bool checking, struct ldg_cfg_err *err)
{
    secrets_may_be_missing = checking;
    int rc = ldg_settings_load(c, path, err);
    secrets_may_be_missing = false;
    return rc;
}

/* The file's text for the scan of numbered sections; NULL when unreadable (the reader then
 * reports why). Bounded like the reader (4 MiB). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4u << 20, n = 0;
    char *text = ldg_malloc(cap + 1);
    size_t got;
    while (n < cap && (got = fread(text + n, 1, cap - n, f)) > 0)
        n += got;
    fclose(f);
    text[n] = '\0';
    return text;
}

int ldg_settings_load(struct ldg_config *c, const char *path, struct ldg_cfg_err *err)
{
    char *text = slurp(path);
    int rc = prepare(c, text, err);
    free(text);
    if (rc == 0)
        rc = ldg_cfg_load_file(c->sections, c->nsections, path, err);
    c->path = ldg_strdup(path);
    if (rc == 0) {
        char *dir = config_dir(path);
        rc = ldg_cfg_resolve_paths(c->sections, c->nsections, dir);
        free(dir);
    }
    if (rc == 0)
        rc = validate(c, err);
    if (rc == 0)
        rc = read_secret(c->redis.password_file, &c->redis_password, err);
    for (unsigned i = 1; rc == 0 && i < c->nredis; i++)
        rc = read_secret(c->redis_extra[i - 1].password_file, &c->redis_extra_password[i - 1], err);
    if (rc == 0)
        rc = read_secret(c->pg_auth.password_file, &c->pg_auth_password, err);
    if (rc == 0)
        rc = read_secret(c->pg_logs.password_file, &c->pg_logs_password, err);
    for (int i = 1; rc == 0 && i < c->npg_shards; i++)
        rc = read_secret(c->pg_shard[i].password_file, &c->pg_shard_password[i], err);
    for (int i = 0; rc == 0 && i < c->npg_replicas; i++)
        rc = read_secret(c->pg_replica[i].pg.password_file, &c->pg_replica_password[i], err);
    if (rc == 0)
        rc = read_secret(c->server.metrics_token_file, &c->metrics_token, err);
    if (rc == 0)
        rc = load_jwt_secret(c, err);
    return rc;
}

int ldg_settings_load_string(struct ldg_config *c, const char *text, struct ldg_cfg_err *err)
{
    int rc = prepare(c, text, err);
    if (rc == 0)
        rc = ldg_cfg_load_string(c->sections, c->nsections, "<string>", text, err);
    if (rc == 0)
        rc = validate(c, err);
    return rc;
}

void ldg_settings_dump(const struct ldg_config *c, FILE *out)
{
    ldg_cfg_dump(c->sections, c->nsections, out);
}

void ldg_settings_free(struct ldg_config *c)
{
    ldg_cfg_free(c->sections, c->nsections);
    for (size_t i = 0; i < ldg_roles_count; i++)
        free(c->role_cfg[i]);
    free(c->redis_password);
    for (size_t i = 0; i < LDG_ARRAY_SIZE(c->redis_extra_password); i++)
        free(c->redis_extra_password[i]);
    ldg_shardmap_free(&c->redis_map);
    free(c->pg_auth_password);
    free(c->pg_logs_password);
    for (int i = 0; i < LDG_PG_MAX_SHARDS; i++)
        free(c->pg_shard_password[i]);
    for (int i = 0; i < LDG_PG_MAX_REPLICAS; i++)
        free(c->pg_replica_password[i]);
    ldg_pgshard_map_free(&c->pg_shard_map);
    free(c->metrics_token);
    if (c->jwt_secret)
        OPENSSL_cleanse(c->jwt_secret, strlen(c->jwt_secret));
    free(c->jwt_secret);
    free(c->path);
    memset(c, 0, sizeof *c);
}

const struct ldg_pg_cfg *ldg_settings_pg_shard(const struct ldg_config *c, int i)
{
    return i == 0 ? &c->pg_logs : &c->pg_shard[i];
}

const char *ldg_settings_pg_shard_password(const struct ldg_config *c, int i)
{
    return i == 0 ? c->pg_logs_password : c->pg_shard_password[i];
}

unsigned ldg_settings_workers(const struct ldg_config *c)
{
    if (c->server.workers > 0)
        return (unsigned)c->server.workers;
    unsigned n = (unsigned)uv_available_parallelism();
    return n ? n : 1;
}
