#!/usr/bin/env bash
# Scale (issue 9, item 5): the load-generator matrix (matrix.sh), Introspect and Refresh only, on
# stores preloaded four ways per backend (benches/preload.py writes the rows):
#
#   small     1,000 live sessions of other users (4,000 refresh tokens)
#   large     BENCH_SCALE_SESSIONS live sessions (default 1,000,000; four token rows each)
#   purging   as large, plus a quarter as many sessions ended three days ago with their tokens,
#             which housekeeping purges in batches while the cells run
#   revoked   as small, plus BENCH_SCALE_REVOCATIONS revoked sessions (default 100,000) still in
#             the revocation feed, so in the server's memory
#
# Each figure is a ratio to its own run's no-op call, so the comparison survives a noisy machine.
# Targets: large ≥ 0.8× small for Introspect and Refresh; Refresh p99 while purging ≤ 2× large's.
# Memory: the server's RSS after its no-op cell, revoked minus small, per 100,000 revocations.
#
#   bash benches/scale.sh [sqlite] [postgres]
#
# Other settings as in matrix.sh (BENCH_DURATION, BENCH_WARMUP, BENCH_CONC, BENCH_BIN, ...).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
SESSIONS=${BENCH_SCALE_SESSIONS:-1000000}
REVOCATIONS=${BENCH_SCALE_REVOCATIONS:-100000}
if [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release --locked -p latchkey -p latchkey-bench --bins >&2
    export BENCH_BIN=target/release
fi
OUT_DIR=$(mktemp -d /tmp/latchkey-scale.XXXXXX)
trap 'rm -rf "$OUT_DIR"' EXIT

# `run STORE BACKEND SESSIONS ENDED REVOCATIONS`
run() {
    local store=$1 backend=$2
    echo "== $backend, $store" >&2
    BENCH_OPS="introspect refresh" BENCH_PRELOAD_SESSIONS=$3 BENCH_PRELOAD_ENDED=$4 \
        BENCH_PRELOAD_REVOCATIONS=$5 BENCH_RESULTS="$OUT_DIR/$backend.$store" \
        BENCH_OUT="$OUT_DIR/table.md" bash benches/matrix.sh "$backend" >/dev/null
}

for backend in "${backends[@]}"; do
    run small "$backend" 1000 0 0
    run large "$backend" "$SESSIONS" 0 0
    run purging "$backend" "$SESSIONS" $((SESSIONS / 4)) 0
    run revoked "$backend" 1000 0 "$REVOCATIONS"
done

python3 - "$OUT_DIR" "$SESSIONS" "$REVOCATIONS" "${backends[@]}" <<'PY'
import json, re, sys

out, sessions, revocations, backends = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
stores = {
    "small": "1,000 live sessions",
    "large": f"{sessions:,} live sessions",
    "purging": f"{sessions:,} live + {sessions // 4:,} ended, being purged",
    "revoked": f"1,000 live sessions + {revocations:,} revocations held",
}

def cells(backend, store):
    found = {}
    for line in open(f"{out}/{backend}.{store}"):
        _, op, rss, hwm, report = line.split(" ", 4)
        found[op] = (int(rss), json.loads(report))
    return found

print("| backend | store | Introspect × no-op | Refresh × no-op | Refresh p99 ms | RSS after the no-op cell, MiB |")
print("|---|---|---:|---:|---:|---:|")
for b in backends:
    for store, label in stores.items():
        c = cells(b, store)
        base = c["health"][1]["ops_per_sec"]
        i, r = c["introspect"][1], c["refresh"][1]
        print(f"| {names[b]} | {label} | {i['ops_per_sec'] / base:.3f} ({i['ops_per_sec']:,.0f}/s) "
              f"| {r['ops_per_sec'] / base:.3f} ({r['ops_per_sec']:,.0f}/s) | {r['p99_ms']:.1f} "
              f"| {c['health'][0] / 1024:.0f} |")
print()
print("| backend | Introspect, large ÷ small (≥ 0.8) | Refresh, large ÷ small (≥ 0.8) "
      "| Refresh p99, purging ÷ large (≤ 2) | memory per 100,000 revocations |")
print("|---|---:|---:|---:|---:|")
for b in backends:
    s, l, p, v = (cells(b, x) for x in ("small", "large", "purging", "revoked"))
    ratio = lambda c, op: c[op][1]["ops_per_sec"] / c["health"][1]["ops_per_sec"]
    mib = (v["health"][0] - s["health"][0]) / 1024 * 100_000 / revocations
    print(f"| {names[b]} | {ratio(l, 'introspect') / ratio(s, 'introspect'):.2f} "
          f"| {ratio(l, 'refresh') / ratio(s, 'refresh'):.2f} "
          f"| {p['refresh'][1]['p99_ms'] / l['refresh'][1]['p99_ms']:.2f} | {mib:.1f} MiB |")
print()
# Whether housekeeping was still purging when the cells ended: its runs, as the server logged them.
for b in backends:
    runs = [line.strip() for line in open(f"{out}/{b}.purging.{b}.log")
            if "housekeeping" in line and re.search(r"purged\D+[1-9]", line)]
    print(f"{names[b]}, purging: housekeeping runs that purged rows: {len(runs)}")
    for line in runs[:3]:
        print(f"    {line[:160]}")
PY
