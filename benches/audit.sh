#!/usr/bin/env bash
# Benchmark: `pve-cpuguard audit` on 10 000 VM configs × 64 nodes, the whole
# process timed with hyperfine (target: ≤ 250 ms). The fixture is generated
# by examples/gen_audit_fixture.rs from real /proc/cpuinfo samples.
#
#   benches/audit.sh [VMS] [NODES]
set -euo pipefail
cd "$(dirname "$0")/.."
vms="${1:-10000}"
nodes="${2:-64}"

if ! command -v hyperfine >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq hyperfine
fi

cargo build --release --locked --bin pve-cpuguard --example gen_audit_fixture
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
target/release/examples/gen_audit_fixture "$dir" "$vms" "$nodes"

export PVE_CPUGUARD_PVE_DIR="$dir/pve"
export PVE_CPUGUARD_CACHE="$dir/cache/cluster.json"
export PVE_CPUGUARD_CONFIG="$dir/none.conf"
export PVE_CPUGUARD_NODE="not-a-node"
bin=target/release/pve-cpuguard
# Exit 1 means "VMs flagged", which this fixture has on purpose.
"$bin" audit | tail -n 1 || true

hyperfine --warmup 3 --min-runs 20 -i \
    --export-json "$dir/hyperfine.json" \
    "$bin audit > /dev/null" \
    "$bin audit --output json > /dev/null"
python3 - "$dir/hyperfine.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command']}: mean {r['mean']*1000:.1f} ms, max {r['max']*1000:.1f} ms")
EOF
