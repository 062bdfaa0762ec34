#!/usr/bin/env bash
# Builds the Debian package into target/debian/: the release binary, the
# man pages and completions generated from the clap definitions, then
# cargo-deb (installed from crates.io when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
cargo build --release --locked --bin pve-cpuguard --bin pve-cpuguard-hook

assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
target/release/pve-cpuguard generate man "$assets/man"
target/release/pve-cpuguard generate completions "$assets/completions"
gzip -9n "$assets"/man/*.1

rm -f target/debian/pve-cpuguard_*.deb
cargo deb --no-build --locked
ls target/debian/pve-cpuguard_*.deb
