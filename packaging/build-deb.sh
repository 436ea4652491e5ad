#!/usr/bin/env bash
# Builds target/debian/sessiond_*.deb: the release binary with PAM and
# Kerberos, the man page and completions generated from the CLI, the
# hardened systemd units, an /etc configuration and a system user made on
# install. Needs cargo-deb (installed here if missing) and the -dev
# packages scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo build --release -p sessiond-server --features pam,kerberos
./target/release/sessiond generate --out target/assets
cargo deb -p sessiond-server --no-build
ls -l target/debian/*.deb
