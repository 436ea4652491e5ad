#!/usr/bin/env bash
# Load benchmark: GET /valid (a valid token, keep-alive, 50 connections) against
# GET /healthz on the same server in the same run, for the memory and the file
# store, with wrk; then memory per live session with 1,000,000 sessions.
#
#   bench/valid.sh [seconds-per-run]      (default 10)
#
# Figures are reported as ratios to /healthz because this 2-core machine is
# noisy: wrk and sessiond share the cores, so absolute numbers move run to run.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
out=bench/out
mkdir -p "$out"

source bench/lib.sh
command -v wrk >/dev/null || install_packages wrk
cargo build --release -q -p sessiond-server
bin=target/release/sessiond

results="$out/results.md"
{
  echo "# bench/valid.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c50 -d${duration}s"
  echo
  echo "| store | endpoint | requests/s | p99 ms | requests/s vs /healthz | p99 vs /healthz |"
  echo "|---|---|---|---|---|---|"
} > "$results"

for store in memory file; do
  dir=$(mktemp -d)
  echo 'bench-pw' | "$bin" user add bench -f "$dir/passwd" >/dev/null
  args=(serve -p 0 --password-file "$dir/passwd")
  [ "$store" = file ] && args+=(-d "$dir/data")
  SESSIOND_LOG=warn "$bin" "${args[@]}" > "$dir/stdout" 2> "$dir/stderr" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
  base=$(grep -o 'http://[0-9.:]*' "$dir/stdout")
  token=$(curl -sf "$base/auth_token?realm=bench&user=bench&pwd=bench-pw" | head -1)
  check=$(curl -sf "$base/valid?realm=bench&token=$token")
  [ "$(echo "$check" | head -1)" = YES ] || { echo "token not valid: $check" >&2; kill $pid; exit 1; }

  wrk -t2 -c50 -d"${duration}s" --latency "$base/healthz" > "$out/$store-healthz.txt"
  wrk -t2 -c50 -d"${duration}s" --latency "$base/valid?realm=bench&token=$token" > "$out/$store-valid.txt"
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"

  h_rps=$(rps "$out/$store-healthz.txt"); h_p99=$(p99_ms "$out/$store-healthz.txt")
  v_rps=$(rps "$out/$store-valid.txt"); v_p99=$(p99_ms "$out/$store-valid.txt")
  for f in healthz valid; do require_2xx "$out/$store-$f.txt"; done
  awk -v s="$store" -v hr="$h_rps" -v hp="$h_p99" -v vr="$v_rps" -v vp="$v_p99" 'BEGIN {
    printf "| %s | /healthz | %.0f | %.2f | 1.00 | 1.00 |\n", s, hr, hp
    printf "| %s | /valid | %.0f | %.2f | %.2f | %.2f |\n", s, vr, vp, vr/hr, vp/hp
  }' >> "$results"
done

echo >> "$results"
cargo run --release -q -p sessiond-store --example memory_per_session >> "$results"
cat "$results"
