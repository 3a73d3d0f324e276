"""Rows written into a stopped server's store before benchmark cells (matrix.sh), to measure a store
that has been in use for months. What is written, each as many as its environment variable says
(all default 0):

  BENCH_PRELOAD_EVENTS       account events over the last 80 days, 10,000 users, a tenth of them
                             the bench user's logins from other addresses and devices
  BENCH_PRELOAD_SESSIONS     live sessions of 1,000 other users, each with its live refresh token
                             and three spent ones (four token rows a session)
  BENCH_PRELOAD_ENDED        sessions whose idle lifetime ended three days ago, four token rows
                             each: what housekeeping purges, in batches, while the cells run
  BENCH_PRELOAD_REVOCATIONS  revocation events (sessions revoked), valid for another hour: what the
                             server then holds in memory for Introspect and the feed

Counters move with the rows, as the server's own writes would move them. The store is then
settled (analysed, checkpointed; vacuumed on PostgreSQL) so that the cells do not pay for the bulk
load's own write-back.

    python3 benches/preload.py sqlite PATH/latchkey.db
    python3 benches/preload.py postgres POSTGRES_URL
"""

import os
import subprocess
import sys
import time

DAY = 86_400_000

EVENTS = """
WITH n AS (SELECT MAX(seq) AS base FROM account_events)
INSERT INTO account_events (seq, at, user_id, kind, session_id, ip, device, client_id, new_device, detail)
SELECT n.base + i, {now} - 6912 * CAST(i AS BIGINT),
       CASE WHEN i % 10 = 0 THEN (SELECT id FROM users WHERE username = 'bench') ELSE 'user-' || (i % 10000) END,
       CASE WHEN i % 3 = 0 THEN 'login_failed' ELSE 'login' END,
       'session-' || i, '10.0.' || (i % 250) || '.' || (i % 200), 'device ' || (i % 50), 'default', FALSE, ''
FROM n, {series};
UPDATE event_counter SET seq = (SELECT MAX(seq) FROM account_events) WHERE id = 1;
"""

USERS = """
INSERT INTO users (id, username, password_hash, created_at)
SELECT 'scale-user-' || i, 'scale-user-' || i, 'none', {now} FROM {series};
"""

# `{name}` sessions: created, last used and idle-expiring at the offsets given (ms from now).
SESSIONS = """
INSERT INTO sessions (id, user_id, client_id, device, ip, scope, created_at, last_used_at,
                      idle_expires_at, absolute_expires_at, revoked_at, generation, rotated_at, sealed_token)
SELECT '{name}-' || i, 'scale-user-' || (i % 1000 + 1), 'default', '', '10.1.0.1', '',
       {now} + {created}, {now} + {used}, {now} + {idle}, {now} + {created} + {lifetime},
       NULL, 3, {now} + {used}, {empty}
FROM {series};
"""

TOKENS = """
INSERT INTO refresh_tokens (hash, session_id, generation, issued_at)
SELECT {hash}, '{name}-' || ((i + 3) / 4), (i + 3) % 4, {now} + {used} FROM {series};
"""

REVOCATIONS = """
WITH n AS (SELECT seq AS base FROM revocation_counter WHERE id = 1)
INSERT INTO revocations (seq, kind, target, not_before, expires_at, created_at)
SELECT n.base + i, 'session', 'revoked-' || i, NULL, {now} + 3600000, {now} FROM n, {series};
UPDATE revocation_counter SET seq = (SELECT MAX(seq) FROM revocations) WHERE id = 1;
"""

DIALECTS = {
    "postgres": {
        "series": "generate_series(1, {count}) AS g (i)",
        "hash": "sha256(('{name}-' || i)::bytea)",
        "empty": "''::bytea",
        "settle": "VACUUM ANALYZE;\nCHECKPOINT;\n",
    },
    "sqlite": {
        "series": "(WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) "
        "SELECT i FROM s)",
        "hash": "randomblob(32)",
        "empty": "X''",
        "settle": "ANALYZE;\nPRAGMA wal_checkpoint(TRUNCATE);\n",
    },
}


def script(backend):
    dialect = DIALECTS[backend]
    now = int(time.time() * 1000)
    count = {name: int(os.environ.get(f"BENCH_PRELOAD_{name}", "0")) for name in
             ("EVENTS", "SESSIONS", "ENDED", "REVOCATIONS")}

    def part(template, n, **values):
        series = dialect["series"].format(count=n)
        name = values.get("name", "")
        return template.format(now=now, lifetime=30 * DAY, series=series, empty=dialect["empty"],
                               hash=dialect["hash"].format(name=name), **values)

    parts = []
    if count["EVENTS"]:
        parts.append(part(EVENTS, count["EVENTS"]))
    if count["SESSIONS"] or count["ENDED"]:
        parts.append(part(USERS, 1000))
    for name, n, created, used, idle in (
        ("live", count["SESSIONS"], -DAY, -60_000, 13 * DAY),
        ("ended", count["ENDED"], -20 * DAY, -17 * DAY, -3 * DAY),
    ):
        if n:
            parts.append(part(SESSIONS, n, name=name, created=created, used=used, idle=idle))
            parts.append(part(TOKENS, 4 * n, name=name, used=used))
    if count["REVOCATIONS"]:
        parts.append(part(REVOCATIONS, count["REVOCATIONS"]))
    if not parts:
        return "", count
    return "".join(parts) + dialect["settle"], count


def main():
    backend, target = sys.argv[1], sys.argv[2]
    sql, count = script(backend)
    if not sql:
        return
    started = time.monotonic()
    if backend == "postgres":
        subprocess.run(["psql", target, "-XAq", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                       input=sql.encode(), stdout=subprocess.DEVNULL, check=True)
    else:
        import sqlite3
        conn = sqlite3.connect(target, timeout=30)
        conn.executescript(sql)
        conn.close()
    what = ", ".join(f"{n:,} {name.lower()}" for name, n in count.items() if n)
    print(f"preloaded {what} in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
