/*
 * migrate.h: schema migrations (`ledgerd --migrate`).
 *
 * A migration directory holds files named NNNN_<what>.sql, applied in byte order of their names.
 * Each file runs in its own transaction together with the row recording it in
 * schema_migrations(version text primary key, applied_at timestamptz), where version is the file
 * name without ".sql". Files already recorded are skipped, so running again applies nothing.
 * A file must therefore not contain BEGIN/COMMIT, nor statements that cannot run in a transaction
 * (CREATE INDEX CONCURRENTLY, CREATE DATABASE, VACUUM).
 *
 * Concurrency: the run holds a session advisory lock on the target database, so several ledgerd
 * processes starting together apply each file once; the others wait (lock_timeout 60 s), then
 * find nothing left to do.
 *
 * Threading: blocking libpq calls. Main thread only, before any loop runs; not thread-safe.
 */
#ifndef LDG_DB_MIGRATE_H
#define LDG_DB_MIGRATE_H

#include "db/pg.h"

/* Longest wait for another process's migration lock. */
#define LDG_MIGRATE_LOCK_TIMEOUT_MS 60000

/* Apply the pending *.sql files of `dir` to the database of `cfg` (created first, from the
 * "postgres" maintenance database, when it does not exist). `password` is nullable; `label`
 * (e.g. "auth") names the run in log lines. Logs every applied file at info level.
 * Returns 0, or a negative code after logging the reason: -ENOENT (directory unreadable),
 * -ECONNREFUSED (cannot connect), -EIO (a statement failed; that file was rolled back, earlier
 * files stay applied), -EFBIG (a file over 16 MiB). */
int ldg_migrate_run(const struct ldg_pg_cfg *cfg, const char *password, const char *dir,
                    const char *label) LDG_MUSTCHECK;

/* Logs shard N > 0 draws ids (logs, error groups, aggregates) from [N << 48, (N+1) << 48): every
 * sequence of the database that is still below N << 48 is moved there, so ids stay unique across
 * shards and a project moved between shards keeps its ids (scripts/ledger-move-project). Shard 0
 * keeps [1, 1 << 48): nothing to do. Idempotent; blocking (main thread, --migrate). Returns 0,
 * -ECONNREFUSED or -EIO (logged). */
#define LDG_MIGRATE_ID_SHIFT 48
int ldg_migrate_id_space(const struct ldg_pg_cfg *cfg, const char *password, int shard) LDG_MUSTCHECK;

#endif
