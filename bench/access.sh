#!/usr/bin/env bash
# Access-rules benchmark: `GET /auth` with a session cookie and an original
# URL, answered by sessiond with 100 access rules (the request matching the
# last one, so every rule is tried: prefixes, regular expressions, methods,
# networks) against the same request to a sessiond without rules, in the
# same run, alternating A B A B … so drift hits both alike.
#
#   bench/access.sh [seconds-per-run] [rounds]     (defaults 8 and 3)
#
# wrk -t2 -c50 keep-alive, straight to sessiond (memory store). Results go
# to bench/out/access.md: the median of each side's rounds, and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-8}
rounds=${2:-3}
out=bench/out
mkdir -p "$out"
source bench/lib.sh

need=()
command -v wrk >/dev/null || need+=(wrk)
install_packages "${need[@]}"
cargo build --release -q -p sessiond-server
bin=$PWD/target/release/sessiond

scratch

echo 'bench-pw' | "$bin" user add bench --groups bench,staff -f "$work/passwd" >/dev/null

# 99 rules the request does not match, each a different kind of miss, then
# the one that admits it.
{
  echo '[access]'
  echo 'default = "deny"'
  for i in $(seq 0 98); do
    echo '[[access.rules]]'
    echo "name = \"rule $i\""
    case $((i % 4)) in
      0) echo "paths = [\"/svc$i\", \"/static$i/\"]" ;;
      1) echo "path_regex = \"^/api/v[0-9]+/item$i(/|\$)\"" ;;
      2) echo "hosts = [\"*.zone$i.example.test\", \"app$i.example.test\"]" ;;
      3) echo "methods = [\"DELETE\"]"; echo "networks = [\"10.$i.0.0/16\"]" ;;
    esac
    echo 'policy = "allow"'
    echo "groups = [\"team$i\"]"
  done
  echo '[[access.rules]]'
  echo 'name = "the application"'
  echo 'hosts = ["app.example.test"]'
  echo 'paths = ["/app"]'
  echo 'policy = "allow"'
  echo 'groups = ["bench"]'
} > "$work/rules.toml"
: > "$work/none.toml"
[ "$(grep -c '^\[\[access.rules\]\]' "$work/rules.toml")" = 100 ]

start() { # name config
  SESSIOND_LOG=warn SESSIOND_BROWSER__COOKIE__SECURE=false \
    "$bin" serve -p 0 -c "$2" --password-file "$work/passwd" > "$work/$1.out" 2> "$work/$1.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$1.out" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://[0-9.:]*' "$work/$1.out" | sed 's|http://||'
}
none=$(start none "$work/none.toml")
rules=$(start rules "$work/rules.toml")

url='http://app.example.test/app/page?x=1'
cookie_of() {
  curl -s -o /dev/null -D - -H "Origin: http://$1" \
    --data 'user=bench&password=bench-pw' "http://$1/session/login_password" \
    | awk -F': ' 'tolower($1)=="set-cookie" {split($2, a, ";"); print a[1]}'
}
check() { # addr cookie → status of /auth
  curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $2" -H "X-Original-URL: $url" "http://$1/auth"
}
c_none=$(cookie_of "$none"); c_rules=$(cookie_of "$rules")
[ "$(check "$none" "$c_none")" = 200 ] && [ "$(check "$rules" "$c_rules")" = 200 ] \
  || { echo "/auth does not answer 200 on both" >&2; exit 1; }
# and the rules really decide: another host is refused
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $c_rules" -H 'X-Original-URL: http://other.test/' "http://$rules/auth")" = 403 ] \
  || { echo "the 100 rules do not decide" >&2; exit 1; }

for r in $(seq "$rounds"); do
  for side in none rules; do
    addr=${!side}; cvar=c_$side
    wrk -t2 -c50 -d"${duration}s" --latency -H "Cookie: ${!cvar}" -H "X-Original-URL: $url" \
      "http://$addr/auth" > "$out/access-$side-$r.txt"
    require_2xx "$out/access-$side-$r.txt"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m_none=$(for r in $(seq "$rounds"); do rps "$out/access-none-$r.txt"; done | median)
m_rules=$(for r in $(seq "$rounds"); do rps "$out/access-rules-$r.txt"; done | median)
p_none=$(for r in $(seq "$rounds"); do p99_ms "$out/access-none-$r.txt"; done | median)
p_rules=$(for r in $(seq "$rounds"); do p99_ms "$out/access-rules-$r.txt"; done | median)
{
  echo "# bench/access.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c50 -d${duration}s, $rounds rounds each, alternating"
  echo
  echo "| GET /auth (cookie, X-Original-URL) | requests/s (median) | p99 ms (median) | vs no rules |"
  echo "|---|---|---|---|"
  awk -v nr="$m_none" -v np="$p_none" -v rr="$m_rules" -v rp="$p_rules" 'BEGIN {
    printf "| no access rules | %.0f | %.2f | 1.00 |\n", nr, np
    printf "| 100 rules, the last one decides | %.0f | %.2f | %.2f |\n", rr, rp, rr/nr
  }'
  echo
  echo "rounds (requests/s): none $(for r in $(seq "$rounds"); do printf '%.0f ' "$(rps "$out/access-none-$r.txt")"; done)· rules $(for r in $(seq "$rounds"); do printf '%.0f ' "$(rps "$out/access-rules-$r.txt")"; done)"
} > "$out/access.md"
cat "$out/access.md"
