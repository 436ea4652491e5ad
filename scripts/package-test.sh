#!/usr/bin/env bash
# The Debian package, end to end (run by scripts/test.sh as root): builds
# the .deb with packaging/build-deb.sh (cargo deb, release, PAM and
# Kerberos), checks its contents and metadata, installs it, runs the
# installed `sessiond --version` and `sessiond check-config` (also as the
# package's own user, which must be able to read its configuration), checks
# what the maintainer script did, and purges it again.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package test: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  echo "package test: skipped (installing a package needs root)" >&2
  exit 0
fi
if dpkg -s sessiond >/dev/null 2>&1; then
  fail "a sessiond package is already installed here; not touching it"
fi

packaging/build-deb.sh >/dev/null
deb=$(ls -t target/debian/sessiond_*.deb | head -1)
echo "package test: built $deb ($(du -h "$deb" | cut -f1))"

# Contents: every file the package promises, with the right modes.
listing=$(dpkg-deb -c "$deb")
for want in \
  "-rwxr-xr-x .* ./usr/bin/sessiond$" \
  "-rw-r--r-- .* ./lib/systemd/system/sessiond.service$" \
  "-rw-r--r-- .* ./lib/systemd/system/sessiond.socket$" \
  "-rw-r----- .* ./etc/sessiond/sessiond.toml$" \
  "./usr/share/man/man1/sessiond.1" \
  "./usr/share/bash-completion/completions/sessiond$" \
  "./usr/share/zsh/vendor-completions/_sessiond$" \
  "./usr/share/fish/vendor_completions.d/sessiond.fish$" \
  "./usr/share/doc/sessiond/sessiond.example.toml$" \
  "./usr/share/doc/sessiond/copyright$"; do
  grep -Eq -- "$want" <<<"$listing" || fail "the package lacks $want:
$listing"
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libpam0g libgssapi-krb5-2 adduser; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
dpkg-deb -e "$deb" target/debian/control-check
grep -qx "/etc/sessiond/sessiond.toml" target/debian/control-check/conffiles \
  || fail "the configuration is not a conffile"
rm -rf target/debian/control-check

cleanup() {
  dpkg --purge sessiond >/dev/null 2>&1 || true
}
trap cleanup EXIT

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
getent passwd sessiond >/dev/null || fail "no sessiond system user after install"
[ "$(stat -c '%U:%G %a' /etc/sessiond/sessiond.toml)" = "root:sessiond 640" ] \
  || fail "configuration owner/mode: $(stat -c '%U:%G %a' /etc/sessiond/sessiond.toml)"
version=$(/usr/bin/sessiond --version)
want_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ "$version" = "sessiond $want_version" ] || fail "installed --version says: $version"
/usr/bin/sessiond check-config -c /etc/sessiond/sessiond.toml >/dev/null \
  || fail "check-config refuses the installed configuration"
# The service runs as `sessiond`: it must be able to read it too.
su -s /bin/sh sessiond -c '/usr/bin/sessiond check-config -c /etc/sessiond/sessiond.toml' >/dev/null \
  || fail "the sessiond user cannot check the installed configuration"
man -w sessiond >/dev/null 2>&1 || [ -e /usr/share/man/man1/sessiond.1.gz ] || [ -e /usr/share/man/man1/sessiond.1 ] \
  || fail "the man page is not installed"

dpkg --purge sessiond >/dev/null
[ ! -e /usr/bin/sessiond ] || fail "/usr/bin/sessiond left after purge"
[ ! -e /etc/sessiond/sessiond.toml ] || fail "/etc/sessiond/sessiond.toml left after purge"
trap - EXIT
echo "package test: installed, ran $version and check-config (as root and as sessiond), purged"
