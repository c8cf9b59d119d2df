/*
 * migrate.c: apply schema files with blocking libpq (main thread, before the loops start).
 *
 * Order of operations, and why:
 *   1. Connect to the target database; if that fails, connect to "postgres" and CREATE DATABASE
 *      (a concurrent creator makes ours fail with duplicate_database, which is fine), then retry.
 *   2. pg_advisory_lock on the target: from here on we are the only migrator of this database.
 *      The lock is taken before CREATE TABLE IF NOT EXISTS schema_migrations because two sessions
 *      running that concurrently can both try to create it and one fails on a catalog unique index.
 *   3. Read the applied versions, then apply each missing file inside BEGIN ... COMMIT together
 *      with its schema_migrations row: a file is either fully applied and recorded, or not at all.
 */
#include "db/migrate.h"

#include <dirent.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/log.h"
#include "db/pg.h"

#define MIGRATE_LOCK_KEY "7237359823162500973" /* arbitrary constant: "ledgerd migrations" */
#define MIGRATE_MAX_FILE (16u << 20)

struct mctx {
    char log[128]; /* "migrate=<label> db=<name>" */
};

/* libpq messages end in a newline and may span lines: make them one log value. */
struct oneline {
    char s[512];
};

static struct oneline oneline(const char *msg)
{
    struct oneline o;
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < sizeof o.s; p++) {
        char ch = (*p == '\n' || *p == '\t') ? ' ' : *p;
        if (ch == ' ' && (n == 0 || o.s[n - 1] == ' '))
            continue;
        o.s[n++] = ch;
    }
    while (n && o.s[n - 1] == ' ')
        n--;
    o.s[n] = '\0';
    return o;
}

static void on_notice(void *arg, const char *message)
{
    const struct mctx *m = arg;
    ldg_log_debug(m->log, "server notice: %s", oneline(message).s);
}

static PGconn *connect_db(const struct ldg_pg_cfg *cfg, const char *password, const char *dbname,
                          struct mctx *m, bool quiet)
{
    char port[24], timeout[24], options[128];
    snprintf(port, sizeof port, "%lld", (long long)cfg->port);
    snprintf(timeout, sizeof timeout, "%d", (int)LDG_MAX(2, (cfg->connect_timeout_ms + 999) / 1000));
    snprintf(options, sizeof options,
             "-c statement_timeout=0 -c lock_timeout=%d -c client_min_messages=warning",
             LDG_MIGRATE_LOCK_TIMEOUT_MS);
    const char *keys[10], *vals[10];
    int k = 0;
    keys[k] = "host", vals[k++] = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    keys[k] = "port", vals[k++] = port;
    keys[k] = "dbname", vals[k++] = dbname;
    keys[k] = "user", vals[k++] = cfg->user && *cfg->user ? cfg->user : "postgres";
    keys[k] = "connect_timeout", vals[k++] = timeout;
    keys[k] = "options", vals[k++] = options;
    keys[k] = "application_name", vals[k++] = "ledgerd-migrate";
    keys[k] = "client_encoding", vals[k++] = "UTF8";
    if (password && *password)
        keys[k] = "password", vals[k++] = password;
    keys[k] = NULL, vals[k] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (!conn)
        ldg_panic("PQconnectdbParams: out of memory");
    if (PQstatus(conn) != CONNECTION_OK) {
        if (!quiet)
            ldg_log_error(m->log, "cannot connect to database %s: %s: %s", dbname,
                          ldg_pg_connect_cause(PQerrorMessage(conn)), oneline(PQerrorMessage(conn)).s);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, on_notice, m);
    return conn;
}

/* Run one command; returns 0 or -EIO after logging. `what` names it in the log. */
static int exec_ok(PGconn *conn, struct mctx *m, const char *sql, const char *what)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) ? 0 : -EIO;
    if (rc < 0)
        ldg_log_error(m->log, "%s failed: %s", what, oneline(PQresultErrorMessage(r)).s);
    PQclear(r);
    return rc;
}

static int create_database(const struct ldg_pg_cfg *cfg, const char *password, const char *dbname,
                           struct mctx *m)
{
    PGconn *conn = connect_db(cfg, password, "postgres", m, false);
    if (!conn)
        return -ECONNREFUSED;
    int rc = 0;
    const char *params[1] = {dbname};
    PGresult *r =
        PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ldg_log_error(m->log, "looking up database failed: %s", oneline(PQresultErrorMessage(r)).s);
        rc = -EIO;
    } else if (PQntuples(r) == 0) {
        char *ident = PQescapeIdentifier(conn, dbname, strlen(dbname));
        char *sql = ldg_asprintf("CREATE DATABASE %s", ident ? ident : "\"\"");
        PQfreemem(ident);
        PGresult *c = PQexec(conn, sql);
        const char *state = PQresultErrorField(c, PG_DIAG_SQLSTATE);
        if (PQresultStatus(c) == PGRES_COMMAND_OK)
            ldg_log_info(m->log, "database created");
        else if (!(state && (strcmp(state, "42P04") == 0 || strcmp(state, "23505") == 0))) {
            /* 42P04 duplicate_database, or 23505 on pg_database's name index: created concurrently */
            ldg_log_error(m->log, "CREATE DATABASE failed: %s", oneline(PQresultErrorMessage(c)).s);
            rc = -EIO;
        }
        PQclear(c);
        free(sql);
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.sql file names of dir, sorted. */
static int list_files(const char *dir, char ***out, size_t *n, struct mctx *m)
{
    DIR *d = opendir(dir);
    if (!d) {
        ldg_log_error(m->log, "cannot open migration directory %s: %s", dir, strerror(errno));
        return -ENOENT;
    }
    size_t cap = 16, cnt = 0;
    char **names = ldg_malloc(cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || e->d_name[0] == '.' || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        if (cnt == cap) {
            cap *= 2;
            names = ldg_realloc(names, cap * sizeof *names);
        }
        names[cnt++] = ldg_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, cnt, sizeof *names, cmp_names);
    *out = names;
    *n = cnt;
    return 0;
}

static char *read_file(const char *path, int *rc, struct mctx *m)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ldg_log_error(m->log, "cannot open %s: %s", path, strerror(errno));
        *rc = -ENOENT;
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > MIGRATE_MAX_FILE) {
        ldg_log_error(m->log, "%s: unreadable or larger than %u bytes", path, MIGRATE_MAX_FILE);
        fclose(f);
        *rc = -EFBIG;
        return NULL;
    }
    char *buf = ldg_malloc((size_t)st.st_size + 1);
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[got] = '\0';
    *rc = 0;
    return buf;
}

static bool applied_has(PGresult *applied, const char *version)
{
    for (int i = 0; i < PQntuples(applied); i++)
        if (strcmp(PQgetvalue(applied, i, 0), version) == 0)
            return true;
    return false;
}

static int apply_one(PGconn *conn, struct mctx *m, const char *dir, const char *file)
{
    char *path = ldg_asprintf("%s/%s", dir, file);
    int rc;
    char *sql = read_file(path, &rc, m);
    free(path);
    if (!sql)
        return rc;
    char *version = ldg_strndup(file, strlen(file) - 4);
    rc = exec_ok(conn, m, "BEGIN", "BEGIN");
    if (rc == 0) {
        char what[300];
        snprintf(what, sizeof what, "migration %s", file);
        rc = exec_ok(conn, m, sql, what);
    }
    if (rc == 0) {
        const char *params[1] = {version};
        PGresult *r = PQexecParams(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL,
                                   params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            ldg_log_error(m->log, "recording %s failed: %s", file, oneline(PQresultErrorMessage(r)).s);
            rc = -EIO;
        }
        PQclear(r);
    }
    if (rc == 0)
        rc = exec_ok(conn, m, "COMMIT", "COMMIT");
    if (rc < 0) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    } else {
        ldg_log_info(m->log, "applied %s", file);
    }
    free(version);
    free(sql);
    return rc;
}

int ldg_migrate_run(const struct ldg_pg_cfg *cfg, const char *password, const char *dir, const char *label)
{
    struct mctx m;
    const char *dbname = cfg->dbname && *cfg->dbname ? cfg->dbname : "postgres";
    snprintf(m.log, sizeof m.log, "migrate=%s db=%s", label && *label ? label : "default", dbname);

    char **files = NULL;
    size_t nfiles = 0;
    int rc = list_files(dir, &files, &nfiles, &m);
    if (rc < 0)
        return rc;

    PGconn *conn = connect_db(cfg, password, dbname, &m, true);
    if (!conn) {
        rc = create_database(cfg, password, dbname, &m);
        if (rc == 0) {
            conn = connect_db(cfg, password, dbname, &m, false);
            if (!conn)
                rc = -ECONNREFUSED;
        }
    }
    PGresult *applied = NULL;
    if (rc == 0)
        rc = exec_ok(conn, &m, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock");
    if (rc == 0)
        rc = exec_ok(conn, &m,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                     "creating schema_migrations");
    if (rc == 0) {
        applied = PQexec(conn, "SELECT version FROM schema_migrations");
        if (PQresultStatus(applied) != PGRES_TUPLES_OK) {
            ldg_log_error(m.log, "reading schema_migrations failed: %s",
                          oneline(PQresultErrorMessage(applied)).s);
            rc = -EIO;
        }
    }
    size_t done = 0;
    for (size_t i = 0; rc == 0 && i < nfiles; i++) {
        char *version = ldg_strndup(files[i], strlen(files[i]) - 4);
        bool skip = applied_has(applied, version);
        free(version);
        if (skip)
            continue;
        rc = apply_one(conn, &m, dir, files[i]);
        if (rc == 0)
            done++;
    }
    if (rc == 0)
        ldg_log_info(m.log, "schema up to date (%zu applied now, %zu files)", done, nfiles);
    PQclear(applied);
    if (conn)
        PQfinish(conn); /* ends the session: releases the advisory lock */
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return rc;
}

int ldg_migrate_id_space(const struct ldg_pg_cfg *cfg, const char *password, int shard)
{
    if (shard <= 0)
        return 0;
    struct mctx m;
    const char *dbname = cfg->dbname && *cfg->dbname ? cfg->dbname : "postgres";
    snprintf(m.log, sizeof m.log, "migrate=logs.%d db=%s", shard, dbname);
    PGconn *conn = connect_db(cfg, password, dbname, &m, false);
    if (!conn)
        return -ECONNREFUSED;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "DO $$ DECLARE r record; base bigint := %lld; BEGIN "
             "FOR r IN SELECT c.oid::regclass AS seq FROM pg_class c JOIN pg_namespace n ON n.oid = "
             "c.relnamespace WHERE c.relkind = 'S' AND n.nspname = 'public' LOOP "
             "IF coalesce(pg_sequence_last_value(r.seq), 0) < base THEN PERFORM setval(r.seq, base, false); "
             "END IF; END LOOP; END $$",
             (long long)((int64_t)shard << LDG_MIGRATE_ID_SHIFT));
    int rc = exec_ok(conn, &m, sql, "moving the id sequences to the shard's id space");
    PQfinish(conn);
    return rc;
}
