#!/usr/bin/env bash
# Before/after comparison of two sessiond binaries on this machine, in the
# same run: GET /valid against GET /healthz (as bench/valid.sh), for the
# memory and the file store, the two binaries taking turns for several
# rounds so that the machine's drift (2 noisy cores) falls on both alike.
#
#   bench/ab.sh BEFORE_BIN AFTER_BIN [rounds] [seconds-per-run]   (default 3, 8)
#
# Build the "before" binary from an older commit in a worktree, e.g.
#   git worktree add /tmp/before <rev> && (cd /tmp/before && cargo build --release -p sessiond-server)
#   bench/ab.sh /tmp/before/target/release/sessiond target/release/sessiond
# Prints each round's /valid ÷ /healthz request-rate ratio and the median
# (and, on stderr, each run's /valid and /healthz requests per second).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,12p "$0"; exit 2; }
before=$1 after=$2 rounds=${3:-3} duration=${4:-8}
source bench/lib.sh
command -v wrk >/dev/null || install_packages wrk
out=bench/out
mkdir -p "$out"

# One measurement: the ratio of /valid to /healthz requests per second.
ratio() {
  local bin=$1 store=$2 dir pid base token
  dir=$(mktemp -d)
  echo 'bench-pw' | "$bin" user add bench -f "$dir/passwd" >/dev/null
  local args=(serve -p 0 --password-file "$dir/passwd")
  [ "$store" = file ] && args+=(-d "$dir/data")
  SESSIOND_LOG=warn "$bin" "${args[@]}" > "$dir/stdout" 2> "$dir/stderr" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
  base=$(grep -o 'http://[0-9.:]*' "$dir/stdout")
  token=$(curl -sf "$base/auth_token?realm=bench&user=bench&pwd=bench-pw" | head -1)
  wrk -t2 -c50 -d"${duration}s" "$base/healthz" > "$out/ab-healthz.txt"
  wrk -t2 -c50 -d"${duration}s" "$base/valid?realm=bench&token=$token" > "$out/ab-valid.txt"
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
  require_2xx "$out/ab-healthz.txt"; require_2xx "$out/ab-valid.txt"
  awk -v v="$(rps "$out/ab-valid.txt")" -v h="$(rps "$out/ab-healthz.txt")" \
    'BEGIN {printf "%.2f", v/h; printf "%s %.0f %.0f\n", ENVIRON["AB_LABEL"], v, h >> "/dev/stderr"}'
}

median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# bench/ab.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $rounds rounds, wrk -t2 -c50 -d${duration}s"
echo
echo "| store | binary | /valid ÷ /healthz per round | median |"
echo "|---|---|---|---|"
for store in memory file; do
  b="" a=""
  for round in $(seq "$rounds"); do
    # ABBA: each binary goes first in every other round, so a drift of the
    # machine within a round does not favour one of them.
    if [ $((round % 2)) = 1 ]; then
      b="$b $(AB_LABEL="$store before" ratio "$before" "$store")"
      a="$a $(AB_LABEL="$store after" ratio "$after" "$store")"
    else
      a="$a $(AB_LABEL="$store after" ratio "$after" "$store")"
      b="$b $(AB_LABEL="$store before" ratio "$before" "$store")"
    fi
  done
  echo "| $store | before | ${b# } | $(echo ${b# } | median) |"
  echo "| $store | after | ${a# } | $(echo ${a# } | median) |"
done
