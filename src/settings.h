/*
 * settings.h: the process-wide configuration: the core sections ([server], [log], [roles],
 * [redis], [pg_auth], [pg_logs], [pg_shards]) plus one section per role, the optional numbered
 * sections of extra logs shards ([pg_logs.N]) and replicas ([pg_logs_replica.N]) that the file
 * holds, and the secrets read from the files those sections name.
 *
 * Built and validated on the main thread before any worker starts; immutable afterwards and read
 * by every thread through `const struct ldg_config *`.
 */
#ifndef LDG_SETTINGS_H
#define LDG_SETTINGS_H

#include "core/config.h"
#include "db/pg.h"
#include "db/pgshard.h"
#include "db/redis.h"
#include "db/shardmap.h"
#include "roles/role.h"

struct ldg_server_cfg {
    char *host;
    int64_t port;
    int64_t workers; /* 0 = auto (one per core) */
    int64_t backlog;
    int64_t max_connections; /* per worker */
    int64_t max_header_bytes;
    int64_t max_headers;
    int64_t max_body_bytes; /* default for routes that set none */
    int64_t max_inflated_bytes;
    int64_t max_inflate_ratio;
    int64_t max_buffered_body_bytes; /* per worker */
    int64_t body_min_rate;           /* bytes per second */
    int64_t header_timeout_ms;
    int64_t body_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t write_timeout_ms;
    int64_t request_timeout_ms;
    int64_t drain_timeout_ms;
    int64_t sweep_interval_ms;
    int64_t threadpool_size;
    char *cors_origins;
    char *trusted_proxies; /* addresses / CIDRs whose forwarding headers are believed */
    char *schema_dir;
    char *metrics_token_file;
    bool debug_endpoints;
    bool share_listener;
    int64_t health_queue_max_age_ms;
};

enum ldg_log_level;
struct ldg_log_cfg {
    int level;  /* enum ldg_log_level */
    int format; /* enum ldg_log_format */
    bool access_log;
};

/* [node]: this process's identity in a fleet. */
struct ldg_node_cfg {
    char *name; /* "" in the file = the host name (resolved at load) */
};

struct ldg_roles_cfg {
    bool enabled[LDG_ROLE_MAX]; /* indexed like ldg_roles[] */
};

/* [pg_shards]: pins of projects to logs shards (db/pgshard.h). */
struct ldg_pg_shards_cfg {
    char *projects; /* "project:shard, ..." */
};

struct ldg_config {
    struct ldg_server_cfg server;
    struct ldg_log_cfg log;
    struct ldg_roles_cfg roles;
    struct ldg_node_cfg node;
    struct ldg_redis_cfg redis; /* shard 0 */
    /* [redis.1] ... [redis.15]: the other Redis shards, present when their section is in the file
     * (contiguous from 1). nredis = 1 + how many; redis_map places projects on them. */
    struct ldg_redis_cfg redis_extra[LDG_SHARDS_MAX - 1];
    bool redis_extra_present[LDG_SHARDS_MAX - 1];
    char *redis_extra_password[LDG_SHARDS_MAX - 1];
    unsigned nredis;
    struct ldg_shardmap redis_map;
    struct ldg_pg_cfg pg_auth;
    struct ldg_pg_cfg pg_logs;
    struct ldg_pg_shards_cfg pg_shards;
    void *role_cfg[LDG_ROLE_MAX]; /* owned: each role's section struct (role->cfg_size bytes) */

    /* Logs shards: 0 is [pg_logs], N is [pg_logs.N] (pg_shard[0] is unused; use
     * ldg_settings_pg_shard). Replicas in the order of their section numbers. */
    int npg_shards; /* >= 1 */
    struct ldg_pg_cfg pg_shard[LDG_PG_MAX_SHARDS];
    char *pg_shard_password[LDG_PG_MAX_SHARDS];
    int npg_replicas;
    struct ldg_pg_replica_cfg pg_replica[LDG_PG_MAX_REPLICAS];
    char *pg_replica_password[LDG_PG_MAX_REPLICAS];
    int pg_replica_number[LDG_PG_MAX_REPLICAS]; /* N of [pg_logs_replica.N] */
    struct ldg_pgshard_map pg_shard_map;        /* from [pg_shards] projects and npg_shards */
    char dyn_section_names[LDG_PG_MAX_SHARDS + LDG_PG_MAX_REPLICAS][24];

    /* Secrets, owned; NULL when no file is configured. */
    char *redis_password;
    char *pg_auth_password;
    char *pg_logs_password;
    char *metrics_token;
    char *jwt_secret;          /* [auth] jwt_secret_file, or random (see jwt_secret_generated) */
    bool jwt_secret_generated; /* no file configured: per-process secret */

    struct ldg_cfg_section sections[8 + (LDG_SHARDS_MAX - 1) + LDG_ROLE_MAX + LDG_PG_MAX_SHARDS + LDG_PG_MAX_REPLICAS];
    size_t nsections;
    char *path; /* owned: the file it came from */
};

/* Defaults, parse `path`, make relative paths absolute against the file's directory, check that
 * the enabled roles can serve together, run every role's validate hook (enabled or not), read secret files.
 * Returns 0 or a negative code with err filled (file:line where it applies). Main thread. */
int ldg_settings_load(struct ldg_config *c, const char *path, struct ldg_cfg_err *err) LDG_MUSTCHECK;

/* As ldg_settings_load; with `checking` (--check-config, --print-config) a secret file that does
 * not exist yet is a note on stderr rather than an error. */
int ldg_settings_load_mode(struct ldg_config *c, const char *path, bool checking,
                           struct ldg_cfg_err *err) LDG_MUSTCHECK;

/* Only defaults and parse of a string (unit tests); no secrets are read. */
int ldg_settings_load_string(struct ldg_config *c, const char *text, struct ldg_cfg_err *err) LDG_MUSTCHECK;

void ldg_settings_dump(const struct ldg_config *c, FILE *out);
void ldg_settings_free(struct ldg_config *c);

/* The config and password of Redis shard i (< nredis); 0 is [redis]. */
static inline const struct ldg_redis_cfg *ldg_settings_redis_cfg(const struct ldg_config *c, unsigned i)
{
    return i ? &c->redis_extra[i - 1] : &c->redis;
}

static inline const char *ldg_settings_redis_password(const struct ldg_config *c, unsigned i)
{
    return i ? c->redis_extra_password[i - 1] : c->redis_password;
}

/* The Redis shard of a project (always 0 with one Redis). */
static inline unsigned ldg_settings_redis_shard(const struct ldg_config *c, int64_t project_id)
{
    return c->nredis > 1 ? ldg_shardmap_of(&c->redis_map, project_id) : 0;
}

/* Logs shard i (0 .. npg_shards-1): its section and password (nullable). */
const struct ldg_pg_cfg *ldg_settings_pg_shard(const struct ldg_config *c, int i);
const char *ldg_settings_pg_shard_password(const struct ldg_config *c, int i);

/* Worker count after resolving `auto`. */
unsigned ldg_settings_workers(const struct ldg_config *c);

#endif
