#!/usr/bin/env bash
# What account events cost Login and Refresh (issue 10): the load-generator matrix (matrix.sh)
# with only those cells, in one run, three ways per backend:
#
#   before   a build from before account events (BENCH_BASE_BIN: its `latchkey` and
#            `latchkey-bench`), the figures of the performance work;
#   empty    this build, the events table empty (each login writes its event and looks up the
#            user's recent logins for `new_device`);
#   kept     this build on a store already holding BENCH_PRELOAD_EVENTS events (default 1,000,000,
#            a tenth of them the bench user's logins), as after months of retention.
#
# Each figure is a ratio to its own cell's baseline (Login to the raw argon2id rate, Refresh to the
# no-op call), so the comparison survives a noisy machine; the cost of events is 1 - the ratio of
# ratios. Rounds alternate the three (BENCH_ROUNDS, default 2) and the best round of each counts.
#
#   BENCH_BASE_BIN=/path/to/old/release bash benches/events.sh [sqlite] [postgres]
#
# Other settings as in matrix.sh (BENCH_DURATION, BENCH_WARMUP, BENCH_CONC, BENCH_BIN, ...).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
[ -n "${BENCH_BASE_BIN:-}" ] || { echo "set BENCH_BASE_BIN to a build from before account events" >&2; exit 2; }
ROUNDS=${BENCH_ROUNDS:-2}
PRELOAD=${BENCH_PRELOAD_EVENTS:-1000000}
if [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release --locked -p latchkey -p latchkey-bench --bins >&2
    BENCH_BIN=target/release
fi
OUT_DIR=$(mktemp -d /tmp/latchkey-events.XXXXXX)
trap 'rm -rf "$OUT_DIR"' EXIT

run() {
    local way=$1 backend=$2 round=$3 bin=$4 preload=$5
    echo "== $backend, $way, round $round" >&2
    BENCH_BIN=$bin BENCH_OPS="refresh login" BENCH_PRELOAD_EVENTS=$preload \
        BENCH_RESULTS="$OUT_DIR/$backend.$way.$round" BENCH_OUT="$OUT_DIR/table.md" \
        bash benches/matrix.sh "$backend" >/dev/null
}

for backend in "${backends[@]}"; do
    for round in $(seq 1 "$ROUNDS"); do
        run before "$backend" "$round" "$BENCH_BASE_BIN" 0
        run empty "$backend" "$round" "$BENCH_BIN" 0
        run kept "$backend" "$round" "$BENCH_BIN" "$PRELOAD"
    done
done

python3 - "$OUT_DIR" "$PRELOAD" "${backends[@]}" <<'PY'
import glob, json, os, sys

out, preload, backends = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

def ratios(path):
    cells = {}
    for line in open(path):
        backend, op, rss, hwm, report = line.split(" ", 4)
        cells[op] = json.loads(report)
    return {
        "login": cells["login"]["ops_per_sec"] / cells["argon2"]["ops_per_sec"],
        "refresh": cells["refresh"]["ops_per_sec"] / cells["health"]["ops_per_sec"],
        "login_abs": cells["login"]["ops_per_sec"],
        "refresh_abs": cells["refresh"]["ops_per_sec"],
        "refresh_p99": cells["refresh"]["p99_ms"],
    }

def best(backend, way):
    runs = [ratios(p) for p in sorted(glob.glob(os.path.join(out, f"{backend}.{way}.*"))) if not p.endswith(".log")]
    return {k: max(r[k] for r in runs) if k != "refresh_p99" else min(r[k] for r in runs) for k in runs[0]}

print(f"| backend | op | before events | events, table empty | events, {preload:,} kept | cost vs before | cost of a full table |")
print("|---|---|---:|---:|---:|---:|---:|")
for b in backends:
    before, empty, kept = best(b, "before"), best(b, "empty"), best(b, "kept")
    for op, label, base in (("login", "Login", "raw argon2id"), ("refresh", "Refresh", "no-op call")):
        cells = [f"{r[op]:.2f}× {base} ({r[op + '_abs']:,.0f}/s)" for r in (before, empty, kept)]
        cost = 1 - empty[op] / before[op]
        full = 1 - kept[op] / empty[op]
        print(f"| {names[b]} | {label} | " + " | ".join(cells) + f" | {cost:+.1%} | {full:+.1%} |")
PY
