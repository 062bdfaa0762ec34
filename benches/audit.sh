#!/usr/bin/env bash
# Benchmark: `pve-cpuguard audit` on 10 000 VM configs × 64 nodes, the whole
# process timed with hyperfine beside /bin/true (the exec floor) in the same
# run (target: median ≤ 250 ms, text, JSON and HTML), its output's size
# (target: ≤ 10 MB) and its peak RSS. The
# fixture (examples/gen_audit_fixture.rs) is as real clusters have it:
# real-sized configs with snapshots, [PENDING], host/named/custom/flagged CPU
# types, node records from real /proc/cpuinfo samples.
#
#   benches/audit.sh [VMS] [NODES] [diverse]
#
# `diverse`: every node a different CPU and 15 % `cpu: host` (issue 23),
# where few verdicts are shared; `audit` prints its grouped summary, the
# page groups the VMs too, `--output json` states every VM's answers.
set -euo pipefail
cd "$(dirname "$0")/.."
vms="${1:-10000}"
nodes="${2:-64}"
mode="${3:-}"

if ! command -v hyperfine >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq hyperfine
fi

cargo build --release --locked --bin pve-cpuguard --example gen_audit_fixture
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
target/release/examples/gen_audit_fixture "$dir" "$vms" "$nodes" $mode

export PVE_CPUGUARD_PVE_DIR="$dir/pve"
export PVE_CPUGUARD_CACHE="$dir/cache/cluster.json"
export PVE_CPUGUARD_CONFIG=/dev/null  # no configuration file (a named one must exist)
export PVE_CPUGUARD_NODE="not-a-node"
bin=target/release/pve-cpuguard
# Exit 1 means "VMs flagged", which this fixture has on purpose.
"$bin" audit | tail -n 1 || true

# -N: no shell in between; output goes to hyperfine's /dev/null.
hyperfine -N --warmup 3 --min-runs 20 -i \
    --export-json "$dir/hyperfine.json" \
    "/bin/true" \
    "$bin audit" \
    "$bin audit --output json" \
    "$bin audit --output html"
for format in text json html; do
    # Exit 1 is "VMs flagged" (see above).
    rss=$( (/usr/bin/time -f %M "$bin" audit --output "$format" 2>&1 >/dev/null || true) | tail -n 1)
    size=$( ("$bin" audit --output "$format" || true) | wc -c)
    echo "audit --output $format: peak RSS $((rss / 1024)) MiB, output $size bytes"
done
python3 - "$dir/hyperfine.json" <<'EOF'
import json, sys
worst = 0
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command']}: median {r['median']*1000:.1f} ms, mean {r['mean']*1000:.1f} ms, max {r['max']*1000:.1f} ms")
    if "audit" in r["command"]:
        worst = max(worst, r["median"])
if worst > 0.250:
    print(f"above the target: median {worst*1000:.1f} ms > 250 ms")
    sys.exit(1)
EOF
