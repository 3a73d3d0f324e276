#!/usr/bin/env bash
# The load-generator matrix behind BENCHMARKS.md: a fresh `latchkey serve` per backend (SQLite in a
# temp dir, then PostgreSQL in a fresh database), one user, and `latchkey-bench` over every op at
# the same concurrency, with the server's memory (VmRSS, VmHWM) read after each cell; then, while
# that server idles, the raw argon2id and EdDSA rates of this machine. Prints Markdown tables:
# ratios to the baselines of the same run first, absolute figures second.
#
#   bash benches/matrix.sh                 # both backends, release build (built first)
#   bash benches/matrix.sh sqlite          # one backend
#   bash benches/matrix.sh --strict sqlite # fail on any failed call (what .ci/run's smoke does)
#
# Settings (environment):
#   BENCH_DURATION, BENCH_WARMUP   per cell (humantime): 10s, 3s
#   BENCH_CONC                     calls in flight (health, introspect, check, refresh): 64
#   BENCH_LOGIN_CONC               logins in flight: 4 per CPU, under the server's admission bound
#                                  (8 waiting per hashing thread, one thread per CPU), so that the
#                                  figure is the hashing rate and not a flood of OVERLOADED
#   BENCH_CONNS                    HTTP/2 connections: 1
#   BENCH_BIN                      a directory holding `latchkey` and `latchkey-bench` already built
#                                  (default: build them with `cargo build --release` into target/)
#   LATCHKEY_BENCH_POSTGRES_URL    a PostgreSQL superuser URL; a fresh database is created in it
#                                  and dropped at the end (default postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_OUT                      where the table is also written: target/bench-matrix.md
#   BENCH_OPS                      the server cells besides the no-op baseline (default: introspect
#                                  check refresh login introspect-logins check-logins); OP-logins
#                                  is OP while another user's logins (BENCH_LOGIN_CONC in flight)
#                                  keep the server's argon2 workers busy, and their rate then
#   BENCH_PRELOAD_EVENTS, BENCH_PRELOAD_SESSIONS, BENCH_PRELOAD_ENDED, BENCH_PRELOAD_REVOCATIONS
#                                  rows written into the store before the cells, to measure a store
#                                  in use for months: see benches/preload.py (default 0 each)
#   BENCH_RESULTS                  where the raw figures (one JSON report per cell) are also kept,
#                                  and the server's log beside them (BENCH_RESULTS.BACKEND.log)
# Every other LATCHKEY_* variable is cleared: the server runs at its defaults.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

strict=0
backends=()
for arg in "$@"; do
    case "$arg" in
        --strict) strict=1 ;;
        sqlite | postgres) backends+=("$arg") ;;
        *) echo "usage: $0 [--strict] [sqlite] [postgres]" >&2; exit 2 ;;
    esac
done
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)

# The server runs with its defaults: a stray setting from the caller's environment (a config
# file, a cost, a cap) would change what is measured.
for var in $(compgen -e | grep '^LATCHKEY_' | grep -v '^LATCHKEY_BENCH_'); do
    unset "$var"
done

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
CONC=${BENCH_CONC:-64}
CPUS=$(nproc)
LOGIN_CONC=${BENCH_LOGIN_CONC:-$((4 * CPUS))}
CONNS=${BENCH_CONNS:-1}
PG_URL=${LATCHKEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
OUT=${BENCH_OUT:-target/bench-matrix.md}
OPS=${BENCH_OPS:-introspect check refresh login introspect-logins check-logins}

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    echo "building the release binaries (cargo build --release -p latchkey -p latchkey-bench)" >&2
    cargo build --release --locked -p latchkey -p latchkey-bench --bins >&2
    BIN=target/release
fi
for program in latchkey latchkey-bench; do
    [ -x "$BIN/$program" ] || { echo "no $BIN/$program" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/latchkey-bench.XXXXXX)
SERVER_PID=""
LOGINS_PID=""
PG_DB=""
cleanup() {
    if [ -n "$LOGINS_PID" ]; then
        kill "$LOGINS_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$PG_DB" ]; then
        psql "$PG_URL" -XAqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The bench user's password: random, passed by variable, never on a command line.
LATCHKEY_BENCH_PASSWORD=$(head -c 18 /dev/urandom | base64)
export LATCHKEY_BENCH_PASSWORD

# Figures, one line per cell: backend op rss_kib hwm_kib json.
RESULTS="$WORK/results"
: >"$RESULTS"
failed=0

# `is_local OP`: whether latchkey-bench runs OP without the server (the raw rates).
is_local() {
    [ "$1" = argon2 ] || [ "$1" = argon2-plain ] || [ "$1" = eddsa ]
}

# `cell BACKEND OP ARGS...`: one latchkey-bench run, reported on stderr and kept for the table
# (under the name CELL, when set, instead of OP). A server cell of its own (not one behind another
# generator's logins) also reads the server's CPU time per call.
cell() {
    local backend=$1 op=$2 json status=0 watch=()
    shift 2
    if ! is_local "$op" && [ -z "${CELL:-}" ]; then
        watch=(--server-pid "$SERVER_PID")
    fi
    json=$("$BIN/latchkey-bench" --op "$op" --duration "$DURATION" --warmup "$WARMUP" --json \
        "${watch[@]}" "$@") || status=$?
    op=${CELL:-$op}
    if [ "$status" -eq 2 ] || [ -z "$json" ]; then
        echo "FATAL: latchkey-bench --op $op could not run (exit $status)" >&2
        exit 1
    fi
    if [ "$status" -ne 0 ]; then
        failed=1
    fi
    local rss=0 hwm=0
    if ! is_local "$op"; then
        # A server that died is a zombie until reaped: its status has no memory lines.
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || true)
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || true)
        if [ -z "$rss" ] || [ -z "$hwm" ]; then
            echo "FATAL: the server died during --op $op" >&2
            exit 1
        fi
    fi
    printf '%s %s %s %s %s\n' "$backend" "$op" "$rss" "$hwm" "$json" >>"$RESULTS"
    python3 -c 'import json, sys; r = json.loads(sys.argv[3]); rss = int(sys.argv[4]) // 1024; print("%-8s %-10s %9.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  max %8.2f ms  errors %d %s%s%s" % (sys.argv[1], sys.argv[2], r["ops_per_sec"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["errors"], r["errors_by_kind"] or "", " server RSS %d MiB" % rss if rss else "", "  server CPU %.0f µs/call" % (r["server_cpu_ms_per_op"] * 1e3) if "server_cpu_ms_per_op" in r else ""))' \
        "$backend" "$op" "$json" "$rss" >&2
}

# `start_server DIR`: `latchkey serve` in the background, logging into DIR, once it is ready.
start_server() {
    local dir=$1
    "$BIN/latchkey" serve >>"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 300); do
        "$BIN/latchkey" healthcheck >/dev/null 2>&1 && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
        sleep 0.1
    done
    if ! "$BIN/latchkey" healthcheck >/dev/null; then
        cat "$dir/server.log" >&2
        echo "FATAL: the server never became ready" >&2
        exit 1
    fi
}

# `serve BACKEND`: a fresh server on that backend, ready, with the bench user.
serve() {
    local backend=$1 dir="$WORK/$1"
    mkdir -p "$dir"
    export LATCHKEY_DATA_DIR="$dir/data"
    export LATCHKEY_GRPC_ADDR="127.0.0.1:$(free_port)"
    export LATCHKEY_HTTP_ADDR="127.0.0.1:$(free_port)"
    unset LATCHKEY_DATABASE_URL
    if [ "$backend" = postgres ]; then
        command -v psql >/dev/null || { echo "FATAL: psql is needed for the PostgreSQL cells" >&2; exit 1; }
        PG_DB="latchkey_bench_$$"
        psql "$PG_URL" -XAqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
        psql "$PG_URL" -XAqc "CREATE DATABASE $PG_DB" >/dev/null
        # The same server and credentials, the fresh database instead of the one named.
        export LATCHKEY_DATABASE_URL
        LATCHKEY_DATABASE_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$PG_DB")
    fi
    start_server "$dir"
    # `bench-logins` logs in behind the OP-logins cells, apart from `bench`: its sessions, past the
    # cap per user, evict its own oldest, not the session of the token those cells present.
    local user
    for user in bench bench-logins; do
        printf '%s' "$LATCHKEY_BENCH_PASSWORD" |
            "$BIN/latchkey" user add "$user" --password-stdin >"$dir/user.log" 2>&1 ||
            { cat "$dir/user.log" >&2; exit 1; }
    done
}

# `under_logins BACKEND OP`: the OP cell while `bench-logins` logs in with LOGIN_CONC in flight,
# warming up and measuring alongside it (started half a second before it, so that the hashing is
# busy from the cell's first call); the logins' own figures are kept as the cell OP-logins-bg.
under_logins() {
    local backend=$1 op=$2 json status=0
    "$BIN/latchkey-bench" --op login --duration "$DURATION" --warmup "$WARMUP" --json \
        --target "$target" --conns 1 --user bench-logins --password-env LATCHKEY_BENCH_PASSWORD \
        --conc "$LOGIN_CONC" >"$WORK/logins.json" &
    LOGINS_PID=$!
    sleep 0.5
    CELL="$op-logins" cell "$backend" "$op" "${common[@]}" --conc "$CONC"
    wait "$LOGINS_PID" || status=$?
    LOGINS_PID=""
    json=$(cat "$WORK/logins.json")
    if [ -z "$json" ]; then
        echo "FATAL: the logins behind the $op cell could not run (exit $status)" >&2
        exit 1
    fi
    [ "$status" -eq 0 ] || failed=1
    printf '%s %s 0 0 %s\n' "$backend" "$op-logins-bg" "$json" >>"$RESULTS"
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print("%-8s %-10s %9.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  errors %d, behind the cell above" % (sys.argv[2], "login", r["ops_per_sec"], r["p50_ms"], r["p99_ms"], r["errors"]))' \
        "$json" "$backend" >&2
}

# `preload BACKEND`: the rows the BENCH_PRELOAD_* settings ask for (see benches/preload.py),
# written while the server is stopped; then the server starts again on them, as a replica starts
# on a store in use for months.
preload() {
    local backend=$1 var asked=0
    # Only when some count is above 0: events.sh sets BENCH_PRELOAD_EVENTS=0 for its plain runs,
    # whose server must not be restarted.
    for var in $(compgen -e | grep '^BENCH_PRELOAD_' || true); do
        [ "${!var}" = 0 ] || asked=1
    done
    [ "$asked" -eq 1 ] || return 0
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    if [ "$backend" = postgres ]; then
        python3 benches/preload.py postgres "$LATCHKEY_DATABASE_URL"
    else
        python3 benches/preload.py sqlite "$LATCHKEY_DATA_DIR/latchkey.db"
    fi
    start_server "$WORK/$backend"
}

stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    if [ -n "${BENCH_RESULTS:-}" ]; then
        cp "$WORK/$1/server.log" "$BENCH_RESULTS.$1.log"
    fi
    if [ -n "$PG_DB" ]; then
        psql "$PG_URL" -XAqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        PG_DB=""
    fi
}

echo "cells: $DURATION after $WARMUP warm-up; $CONC in flight ($LOGIN_CONC for login), $CONNS connection(s); $CPUS CPUs" >&2
for backend in "${backends[@]}"; do
    serve "$backend"
    target="http://$LATCHKEY_GRPC_ADDR"
    common=(--target "$target" --conns "$CONNS" --user bench --password-env LATCHKEY_BENCH_PASSWORD)
    preload "$backend"
    cell "$backend" health "${common[@]}" --conc "$CONC"
    for op in $OPS; do
        case "$op" in
            login) cell "$backend" login "${common[@]}" --conc "$LOGIN_CONC" ;;
            *-logins) under_logins "$backend" "${op%-logins}" ;;
            *) cell "$backend" "$op" "${common[@]}" --conc "$CONC" ;;
        esac
    done
    # The raw rates right after, while the server idles: the machine's load (shared, noisy) is
    # then close to what the cells above saw.
    cell "$backend" argon2
    cell "$backend" argon2-plain
    cell "$backend" eddsa
    stop "$backend"
done

if [ -n "${BENCH_RESULTS:-}" ]; then
    cp "$RESULTS" "$BENCH_RESULTS"
fi
mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$DURATION" "$WARMUP" "$CONC" "$LOGIN_CONC" "$CONNS" "$CPUS" >"$OUT" <<'PY'
import json, sys

path, duration, warmup, conc, login_conc, conns, cpus = sys.argv[1:]
cells = {}
for line in open(path):
    backend, op, rss, hwm, report = line.split(" ", 4)
    cells[(backend, op)] = (int(rss), int(hwm), json.loads(report))
backends = [b for b in ("sqlite", "postgres") if (b, "health") in cells]
names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
rows = [
    row for row in (
        ("health", f"no-op call (health Check), {conc} in flight", "health"),
        ("introspect", f"Introspect, {conc} in flight", "health"),
        ("check", f"ext_authz Check, {conc} in flight", "health"),
        ("refresh", f"Refresh, {conc} chains rotating", "health"),
        ("login", f"Login, {login_conc} in flight", "argon2"),
        ("introspect-logins", f"Introspect, {conc} in flight, while logins saturate the hashing", "health"),
        ("introspect-logins-bg", f"Login, {login_conc} in flight, behind that Introspect cell", "argon2"),
        ("check-logins", f"ext_authz Check, {conc} in flight, while logins saturate the hashing", "health"),
        ("check-logins-bg", f"Login, {login_conc} in flight, behind that Check cell", "argon2"),
    )
    if (backends[0], row[0]) in cells
]


def rate(report):
    return f"{report['ops_per_sec']:,.0f}"

def ms(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"

print(f"Cells of {duration} after a {warmup} warm-up, {conns} HTTP/2 connection(s), {cpus} CPUs; "
      "client and server on the same cores.\n")
head = " | ".join(f"× baseline, {names[b]}" for b in backends)
print(f"| op | baseline | {head} |")
print("|---|---|" + "---:|" * len(backends))
for op, label, base in rows:
    ratios = []
    for b in backends:
        r = cells[(b, op)][2]["ops_per_sec"]
        d = cells[(b, base)][2]["ops_per_sec"]
        ratios.append(f"{r / d:.2f}" if d else "–")
    name = "itself" if op == "health" else ("raw argon2id" if base == "argon2" else "no-op call")
    print(f"| {label} | {name} | " + " | ".join(ratios) + " |")
print()
head = " | ".join(f"{names[b]} ops/s | p50 / p99 / max ms | errors | RSS / peak MiB | server CPU µs per call" for b in backends)
print(f"| op | {head} |")
print("|---|" + "---:|---:|---:|---:|---:|" * len(backends))
for op, label, _ in rows:
    cols = []
    for b in backends:
        rss, hwm, r = cells[(b, op)]
        errors = str(r["errors"]) + (f" ({', '.join(f'{k} {n}' for k, n in r['errors_by_kind'].items())})" if r["errors"] else "")
        cpu = f"{r['server_cpu_ms_per_op'] * 1e3:,.0f}" if "server_cpu_ms_per_op" in r else "–"
        cols.append(f"{rate(r)} | {ms(r['p50_ms'])} / {ms(r['p99_ms'])} / {ms(r['max_ms'])} | {errors} | " + (f"{rss // 1024} / {hwm // 1024}" if hwm else "–") + f" | {cpu}")
    print(f"| {label} | " + " | ".join(cols) + " |")
print()
head = " | ".join(f"{names[b]} ops/s | p50 / p99 ms" for b in backends)
threads = cells[(backends[0], "argon2")][2]["conc"]
print(f"| raw rate, this machine, right after the server's cells ({threads} threads) | {head} |")
print("|---|" + "---:|---:|" * len(backends))
for op, label in (
    ("argon2", "argon2id hash, OWASP cost (m=19 MiB, t=2, p=1), memory as the server's workers lay it out (2 MiB pages)"),
    ("argon2-plain", "the same hash in a plain allocation (4 KiB pages, unless huge pages are `always`)"),
    ("eddsa", "EdDSA access-token verification"),
):
    cols = [f"{rate(cells[(b, op)][2])} | {ms(cells[(b, op)][2]['p50_ms'])} / {ms(cells[(b, op)][2]['p99_ms'])}" for b in backends]
    print(f"| {label} | " + " | ".join(cols) + " |")
PY
cat "$OUT"

if [ "$strict" -eq 1 ] && [ "$failed" -ne 0 ]; then
    echo "FAILED: some calls failed or a cell made none (see the errors above)" >&2
    exit 1
fi
