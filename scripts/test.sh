#!/usr/bin/env bash
# The one command that runs every sessiond test (README, CI's .ci/run).
#
# It installs what the tests need (Debian packages, idempotently), creates the
# throwaway fixtures the real-PAM tests use (a PAM service file and a Unix
# user, removed again on exit), starts the services the store tests need
# (scripts/services.sh: memcached and a Redis Cluster on free ports; the
# machine's Redis and PostgreSQL are used under per-test prefixes), checks formatting and lints, and runs the
# whole suite: unit tests, the store conformance suite, and black-box tests
# that start the real `sessiond` binary; then builds, installs and purges the
# Debian package (scripts/package-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- packages -----------------------------------------------------------------
need_pkgs=()
[ -e /usr/include/security/pam_appl.h ] || need_pkgs+=(libpam0g-dev)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
command -v memcached >/dev/null || need_pkgs+=(memcached)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v redis-cli >/dev/null || need_pkgs+=(redis-tools)
# Redis Sentinel: a primary, a replica and three sentinels for the failover test
command -v redis-sentinel >/dev/null || need_pkgs+=(redis-sentinel)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx)
command -v caddy >/dev/null || need_pkgs+=(caddy)
# Kerberos: a KDC for the test realm, kinit, and what libgssapi builds with
[ -x /usr/sbin/krb5kdc ] || need_pkgs+=(krb5-kdc)
[ -x /usr/sbin/kadmin.local ] || need_pkgs+=(krb5-admin-server)
command -v kinit >/dev/null || need_pkgs+=(krb5-user)
[ -e /usr/include/gssapi/gssapi.h ] || need_pkgs+=(libkrb5-dev)
command -v clang >/dev/null || need_pkgs+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need_pkgs+=(libclang-dev)
# LDAP: an OpenLDAP server for the ldap module's tests
[ -x /usr/sbin/slapd ] || need_pkgs+=(slapd)
# the LDAP database back end of the KDC: the realm that can authorise
# constrained delegation (scripts/krb5-ldap-realm.sh)
[ -x /usr/sbin/kdb5_ldap_util ] || need_pkgs+=(krb5-kdc-ldap)
command -v ldapsearch >/dev/null || need_pkgs+=(ldap-utils)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
# systemd: socket activation (systemd-socket-activate) and unit checks (systemd-analyze)
command -v systemd-socket-activate >/dev/null || need_pkgs+=(systemd)
# Tickets: Apache httpd with mod_auth_tkt, a peer of the interop tests
[ -x /usr/sbin/apache2 ] || need_pkgs+=(apache2)
[ -e /usr/lib/apache2/modules/mod_auth_tkt.so ] || need_pkgs+=(libapache2-mod-auth-tkt)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: need root to apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # Packages with a daemon (memcached, redis, nginx) must not start it on
  # their standard port: the tests start their own on free ports.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
export PATH="$PATH:/usr/sbin"   # nginx lives there

# --- PAM fixture --------------------------------------------------------------
pam_service=sessiond-test
pam_deny_service=sessiond-test-deny
pam_slow_service=sessiond-test-slow
pam_user=sessiond-t1
pam_group=sessiond-tg
source scripts/services.sh
cleanup() {
  stop_services
  if [ -n "${made_pam_user:-}" ]; then userdel "$pam_user" 2>/dev/null || true; groupdel "$pam_group" 2>/dev/null || true; fi
  if [ -n "${made_pam_service:-}" ]; then rm -f "/etc/pam.d/$pam_service" "/etc/pam.d/$pam_deny_service" "/etc/pam.d/$pam_slow_service"; fi
}
trap cleanup EXIT
if [ "$(id -u)" -eq 0 ]; then
  log "creating the throwaway PAM service /etc/pam.d/$pam_service and user $pam_user"
  pam_password="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  # `nodelay`: no 2-second fail delay per wrong password in tests.
  printf 'auth required pam_unix.so nodelay\naccount required pam_unix.so\n' > "/etc/pam.d/$pam_service"
  # A service that refuses everyone: shows which service a login really used.
  printf 'auth requisite pam_deny.so\naccount requisite pam_deny.so\n' > "/etc/pam.d/$pam_deny_service"
  # A service whose check takes 3 s (a slow directory behind PAM): shows
  # that a login which timed out still holds its check slot.
  printf 'auth required pam_exec.so quiet /bin/sleep 3\nauth required pam_permit.so\naccount required pam_permit.so\n' > "/etc/pam.d/$pam_slow_service"
  made_pam_service=1
  # a supplementary group, which a PAM login reports among the user's groups
  getent group "$pam_group" >/dev/null || groupadd "$pam_group"
  if ! id "$pam_user" >/dev/null 2>&1; then
    useradd -M -N -s /usr/sbin/nologin "$pam_user"
  fi
  usermod -a -G "$pam_group" "$pam_user"
  made_pam_user=1
  echo "$pam_user:$pam_password" | chpasswd
  export SESSIOND_TEST_PAM_SERVICE="$pam_service" SESSIOND_TEST_PAM_USER="$pam_user" SESSIOND_TEST_PAM_PASSWORD="$pam_password"
  export SESSIOND_TEST_PAM_DENY_SERVICE="$pam_deny_service" SESSIOND_TEST_REQUIRE_PAM=1
  export SESSIOND_TEST_PAM_SLOW_SERVICE="$pam_slow_service" SESSIOND_TEST_PAM_GROUP="$pam_group"
else
  echo "not root: the real-PAM tests will not run (they need a PAM service file and a Unix user)" >&2
fi

# --- services: memcached, a Redis Cluster; the machine's Redis and PostgreSQL --
log "starting throwaway memcached and Redis Cluster"
start_services

# --- ticket peers: Paste, Pyramid and plone.session's tktauth in a virtualenv --
ticket_venv="$PWD/target/ticket-peers-venv"
if ! "$ticket_venv/bin/python" -c 'import paste.auth.auth_tkt, pyramid.authentication' 2>/dev/null \
   || ! ls "$ticket_venv"/lib/python3*/site-packages/plone/session/tktauth.py >/dev/null 2>&1; then
  log "creating the ticket peers' virtualenv (Paste, pyramid, plone.session)"
  rm -rf "$ticket_venv"
  python3 -m venv "$ticket_venv"
  "$ticket_venv/bin/pip" install -q --disable-pip-version-check Paste pyramid
  # plone.session without Zope: the tests load only its standalone tktauth module
  "$ticket_venv/bin/pip" install -q --disable-pip-version-check --no-deps plone.session
fi
export SESSIOND_TEST_TICKET_PYTHON="$ticket_venv/bin/python"
export SESSIOND_TEST_APACHE=/usr/sbin/apache2

# --- checks and tests ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
# The README's `cargo run` builds without features: no warning there either.
cargo clippy -p sessiond-server --all-targets --quiet -- -D warnings

log "no import circle among the server's modules"
python3 scripts/import-circles.py

log "cargo test (all features)"
mkdir -p target
set +e
cargo test --workspace --all-features --no-fail-fast > target/test-output.txt 2>&1
status=$?
set -e
grep -E '^(test |running|     Running|test result)|panicked|FAILED|^error' target/test-output.txt || true
if [ "$status" -ne 0 ]; then
  echo "tests failed; full output in target/test-output.txt" >&2
  tail -n 80 target/test-output.txt >&2
  exit "$status"
fi
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo
echo "$passed passed, $failed failed"

# The Debian package is built from the release binary, so it comes last,
# after everything the debug build tests has passed.
log "the Debian package: build (cargo deb), contents, install, run, purge"
scripts/package-test.sh
