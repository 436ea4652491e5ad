#!/usr/bin/env bash
# Negotiate vs cookie: `GET /auth` authenticated by a Kerberos ticket on every
# request (SPNEGO accept: AP-REQ decrypt with the keytab) against the same
# endpoint with a session cookie (one store lookup), same server, same run.
#
#   bench/negotiate.sh [seconds-per-run]      (default 10)
#
# The ticket is made once by curl and replayed by wrk, so the server runs
# with KRB5RCACHETYPE=none (a replay cache would refuse the copies; it costs
# little per accept, see ../shared/reference). kerberos.auth_sets_cookie is
# off, so a Negotiate request creates no session. Results go to
# bench/out/negotiate.md.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
out=bench/out
mkdir -p "$out"
export PATH="$PATH:/usr/sbin"
source bench/lib.sh
command -v wrk >/dev/null || install_packages wrk
cargo build --release -q -p sessiond-server --features kerberos
bin=$PWD/target/release/sessiond

work=$(mktemp -d)
pid=""
finish() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  scripts/krb5-realm.sh stop "$work/realm" || true
  rm -rf "$work"
}
trap finish EXIT
eval "$(scripts/krb5-realm.sh start "$work/realm")"

echo 'bench-pw' | "$bin" user add bench -f "$work/passwd" >/dev/null
KRB5RCACHETYPE=none SESSIOND_LOG=warn SESSIOND_KERBEROS__NEGOTIATE=true \
SESSIOND_KERBEROS__AUTH_SETS_COOKIE=false SESSIOND_BROWSER__COOKIE__SECURE=false \
  "$bin" serve -p 0 --password-file "$work/passwd" > "$work/stdout" 2> "$work/stderr" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'http://[0-9.:]*' "$work/stdout" | sed 's|.*:||')

echo "$KRB_TEST_PASSWORD" | kinit "$KRB_TEST_USER" >/dev/null
ticket=$(curl -sv --negotiate -u : "http://localhost:$port/auth" 2>&1 >/dev/null \
  | sed -n 's/^> Authorization: \(Negotiate .*\)\r\{0,1\}$/\1/p' | tail -1 | tr -d '\r')
[ -n "$ticket" ] || { echo "no Negotiate token from curl" >&2; exit 1; }
cookie=$(curl -s -o /dev/null -D - --data 'user=bench&password=bench-pw' \
  "http://127.0.0.1:$port/session/login_password" \
  | awk -F': ' 'tolower($1)=="set-cookie" {split($2, a, ";"); print a[1]}')
[ -n "$cookie" ] || { echo "no cookie" >&2; exit 1; }
for h in "Authorization: $ticket" "Cookie: $cookie"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$h" "http://127.0.0.1:$port/auth")
  [ "$code" = 200 ] || { echo "/auth with ${h%%:*} answered $code" >&2; exit 1; }
done

wrk -t2 -c50 -d"${duration}s" --latency -H "Cookie: $cookie" "http://127.0.0.1:$port/auth" > "$out/neg-cookie.txt"
wrk -t2 -c50 -d"${duration}s" --latency -H "Authorization: $ticket" "http://127.0.0.1:$port/auth" > "$out/neg-negotiate.txt"
for f in cookie negotiate; do require_2xx "$out/neg-$f.txt"; done
{
  echo "# bench/negotiate.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c50 -d${duration}s, GET /auth"
  echo
  echo "| authenticated by | requests/s | p99 ms | vs cookie |"
  echo "|---|---|---|---|"
  awk -v cr="$(rps "$out/neg-cookie.txt")" -v cp="$(p99_ms "$out/neg-cookie.txt")" \
      -v nr="$(rps "$out/neg-negotiate.txt")" -v np="$(p99_ms "$out/neg-negotiate.txt")" 'BEGIN {
    printf "| session cookie (memory store) | %.0f | %.2f | 1.00 |\n", cr, cp
    printf "| Kerberos ticket (Negotiate, every request) | %.0f | %.2f | %.2f |\n", nr, np, nr/cr
  }'
} > "$out/negotiate.md"
cat "$out/negotiate.md"
