"""A streaming replica of a PgServer, for tests of replica reads and for fleet tests.

    rep = PgReplica(primary, "/tmp/dir").start()   # pg_basebackup -R -X stream, then pg_ctl start
    rep.port, rep.host, rep.dsn("ledger_logs")
    rep.pause_replay() / rep.resume_replay()      # WAL keeps arriving, replay stops / goes on
    rep.cleanup()

The primary needs nothing special: initdb -A trust allows replication connections from 127.0.0.1
and wal_level = replica is the default. As root, both run as the postgres user (runuser), like
PgServer.
"""

import psycopg

from ldg_servers import PgServer


class PgReplica(PgServer):
    def __init__(self, primary, tmpdir):
        super().__init__(tmpdir)
        self.primary = primary

    def start(self):
        if not (self.datadir / "PG_VERSION").exists():
            self._run("pg_basebackup", "-h", self.primary.host, "-p", str(self.primary.port), "-U", "postgres",
                      "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        return super().start()

    def _sql(self, query):
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as c:
            return c.execute(query).fetchall()

    def pause_replay(self):
        self._sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self):
        self._sql("SELECT pg_wal_replay_resume()")

    def replayed_lsn(self):
        return self._sql("SELECT pg_last_wal_replay_lsn()::text")[0][0]
