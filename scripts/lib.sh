# Shell helpers shared by the test scripts (sourced, never run).

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for <what> <command...>: runs the command until it succeeds, up to 20 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$(basename "$0"): $what did not come up" >&2
  return 1
}

# 18 random hex digits: throwaway passwords and keys.
rand_hex() { head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# stop_slapd PIDFILE: ends a throwaway slapd and waits (2.5 s at most) for
# it to remove its pid file, as it does once it has shut down.
stop_slapd() {
  [ -f "$1" ] || return 0
  kill "$(cat "$1")" 2>/dev/null || true
  for _ in $(seq 50); do [ -f "$1" ] || break; sleep 0.05; done
  rm -f "$1"
}

# krb5_libdefaults REALM: the [libdefaults] of a throwaway realm's
# krb5.conf. Nothing from DNS and host names as written (tests always use
# `localhost` names: a reverse lookup of 127.0.0.1 differs between hosts),
# forwardable tickets (delegation needs them), and TCP to the KDC.
krb5_libdefaults() {
  cat <<CONF
[libdefaults]
    default_realm = $1
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    forwardable = true
    udp_preference_limit = 1
CONF
}
