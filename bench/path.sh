#!/usr/bin/env bash
# The request path against the hardware's limit: sessiond's GET /healthz,
# GET /valid (memory store), and GET /auth with a session cookie and with a
# signed ticket, each against a bare axum server answering a constant
# (bench/baseline: same HTTP stack, none of sessiond's middleware), measured
# in the same run, alternating, so each ratio compares like with like.
#
#   bench/path.sh [seconds-per-run] [rounds]     (default 8 s, 2 rounds)
#
# wrk -t2 -c50 keep-alive. wrk and the server share this 2-core machine, so
# only the ratios mean anything. Results go to bench/out/path.md.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-8}
rounds=${2:-2}
out=bench/out
mkdir -p "$out"
source bench/lib.sh
command -v wrk >/dev/null || install_packages wrk
cargo build --release -q -p sessiond-server -p bench-baseline
# BENCH_SESSIOND: another build to measure (an A/B comparison of two commits;
# not SESSIOND_*, which sessiond reads as configuration)
bin=${BENCH_SESSIOND:-$PWD/target/release/sessiond}

scratch

wait_listening() { # file: the server's stdout
  for _ in $(seq 100); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://[0-9.:]*' "$1"
}

target/release/bench-baseline > "$work/baseline.out" &
pids+=($!)
baseline=$(wait_listening "$work/baseline.out")

printf '%s\n' "$(head -c 24 /dev/urandom | base64)" > "$work/secrets"
echo 'bench-pw' | "$bin" user add bench -f "$work/passwd" >/dev/null
cat > "$work/sessiond.toml" <<EOF
[browser.cookie]
secure = false
[realms.web.ticket]
secrets_file = "$work/secrets"
cookie_secure = false
refresh = 0.0
EOF
SESSIOND_LOG=warn "$bin" serve -p 0 -c "$work/sessiond.toml" --password-file "$work/passwd" \
  > "$work/sessiond.out" 2> "$work/sessiond.err" &
pids+=($!)
sessiond=$(wait_listening "$work/sessiond.out")

token=$(curl -sf "$sessiond/auth_token?realm=bench&user=bench&pwd=bench-pw" | head -1)
[ "$(curl -sf "$sessiond/valid?realm=bench&token=$token" | head -1)" = YES ] || { echo "token not valid" >&2; exit 1; }
headers=$(curl -s -D - -o /dev/null -d 'user=bench&password=bench-pw' "$sessiond/session/login_password")
session=$(printf '%s' "$headers" | grep -i '^set-cookie: sessiond=' | sed 's/^[^:]*: //; s/;.*//')
ticket=$(printf '%s' "$headers" | grep -i '^set-cookie: auth_tkt=' | sed 's/^[^:]*: //; s/;.*//')
[ -n "$session" ] && [ -n "$ticket" ] || { echo "login gave no cookies: $headers" >&2; exit 1; }
for c in "$session" "$ticket"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -b "$c" "$sessiond/auth")
  [ "$code" = 200 ] || { echo "/auth with a cookie answered $code" >&2; exit 1; }
done

run() { # name url [cookie] → appends "name rps" to $work/rates
  local name=$1 url=$2 cookie=${3:-}
  local args=(-t2 -c50 -d"${duration}s" --latency)
  [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
  wrk "${args[@]}" "$url" > "$out/path-$name.txt"
  require_2xx "$out/path-$name.txt"
  echo "$name $(rps "$out/path-$name.txt")" >> "$work/rates"
}

for round in $(seq "$rounds"); do
  run baseline "$baseline/healthz"
  run healthz "$sessiond/healthz"
  run baseline "$baseline/healthz"
  run valid "$sessiond/valid?realm=bench&token=$token"
  run baseline "$baseline/healthz"
  run auth-cookie "$sessiond/auth" "$session"
  run baseline "$baseline/healthz"
  run auth-ticket "$sessiond/auth" "$ticket"
done

# Each sessiond run against the mean of the baseline runs beside it.
{
  echo "# bench/path.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c50 -d${duration}s, $rounds rounds"
  echo
  echo "| request | requests/s (each round) | vs bare axum /healthz beside it |"
  echo "|---|---|---|"
  awk '
    { name[NR] = $1; rate[NR] = $2 }
    END {
      for (i = 1; i <= NR; i++) {
        if (name[i] == "baseline") { base_all = base_all " " sprintf("%.0f", rate[i]); continue }
        b = 0; n = 0
        if (i > 1 && name[i-1] == "baseline") { b += rate[i-1]; n++ }
        if (i < NR && name[i+1] == "baseline") { b += rate[i+1]; n++ }
        r[name[i]] = r[name[i]] " " sprintf("%.0f", rate[i])
        q[name[i]] = q[name[i]] " " sprintf("%.2f", rate[i] / (b / n))
        if (!(name[i] in seen)) { seen[name[i]] = 1; order[++k] = name[i] }
      }
      printf "| bare axum `GET /healthz` (bench/baseline) |%s | 1.00 |\n", base_all
      label["healthz"] = "sessiond `GET /healthz`"
      label["valid"] = "sessiond `GET /valid` (memory store)"
      label["auth-cookie"] = "sessiond `GET /auth`, session cookie (memory store)"
      label["auth-ticket"] = "sessiond `GET /auth`, signed ticket"
      for (j = 1; j <= k; j++) printf "| %s |%s |%s |\n", label[order[j]], r[order[j]], q[order[j]]
    }' "$work/rates"
} | tee "$out/path.md"
