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

# The hookscript binary runs on every VM start: linked statically it skips
# the dynamic loader (0.3-0.4 ms of a ~2 ms start here, see
# benches/hook_prestart.rs). It does no name lookups (no NSS), so static
# glibc is safe for it; the main tool stays dynamic. An explicit --target
# keeps crt-static away from build scripts and proc-macros.
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" --bin pve-cpuguard-hook
cp "target/$triple/release/pve-cpuguard-hook" "$assets/pve-cpuguard-hook"
# cargo-deb strips the binaries it built itself; this one it only copies.
# The sections dh_strip removes from executables (lintian:
# unstripped-binary-or-object, binary-has-unneeded-section).
strip --remove-section=.comment --remove-section=.note "$assets/pve-cpuguard-hook"
target/release/pve-cpuguard generate man "$assets/man"
target/release/pve-cpuguard generate completions "$assets/completions"
gzip -9n "$assets"/man/*.1 "$assets"/man/*.5

rm -f target/debian/pve-cpuguard_*.deb
# --strip: every ELF asset (the hook is copied from its own target
# directory, so cargo-deb would not otherwise know it as built) loses its
# symbols; lintian's unstripped-binary-or-object.
cargo deb --no-build --locked --strip
deb=$(ls target/debian/pve-cpuguard_*.deb)

# DEBIAN/md5sums, which cargo-deb does not write (dpkg --verify and debsums
# read it): every file but the conffiles, as dh_md5sums does.
root=target/debian/root
rm -rf "$root"
dpkg-deb --raw-extract "$deb" "$root"
(
    cd "$root"
    find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
        grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles 2>/dev/null || true) |
        xargs -d '\n' md5sum
) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
rm -rf "$root"
echo "$deb"
