#!/usr/bin/env bash
# Near-cache propagation: two sessiond instances on one shared store, both
# with [store.cache] on; a revocation or a superseding login on B, timed
# until A stops answering YES (bench/propagation.py), while wrk keeps A busy
# with /valid on another session. Reports p50/p99 per store, from the moment
# B was asked (so B's own write is included).
#
#   bench/propagation.sh [samples]      (default 400; STORES="redis postgres")
#
# Uses this machine's Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432)
# under throwaway prefixes. Results go to bench/out/propagation.md.
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-400}
out=bench/out
mkdir -p "$out"
source bench/lib.sh
command -v wrk >/dev/null || install_packages wrk
cargo build --release -q -p sessiond-server
bin=$PWD/target/release/sessiond
scratch
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "sessiond-prop:*" | xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null || true
  psql -h 127.0.0.1 -U root -d test -qc "DROP SCHEMA IF EXISTS sessiond_prop CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"' EXIT

echo 'bench-pw' | "$bin" user add bench -f "$work/passwd" >/dev/null
for i in $(seq 0 49); do echo 'bench-pw' | "$bin" user add "prop$i" -f "$work/passwd" >/dev/null; done
declare -A url=([redis]="redis://127.0.0.1:6379" [postgres]="postgres://root@127.0.0.1:5432/test")
declare -A prefix=([redis]=sessiond-prop [postgres]=sessiond_prop)
read -r -a stores <<< "${STORES:-redis postgres}"

start() { # store name: starts an instance, prints its base URL
  SESSIOND_LOG=warn SESSIOND_STORE__PREFIX="${prefix[$1]}" SESSIOND_STORE__CACHE__ENABLED=true \
    "$bin" serve -p 0 --password-file "$work/passwd" --store "$1" --store-url "${url[$1]}" \
    > "$work/$1-$2.out" 2> "$work/$1-$2.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$1-$2.out" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://[0-9.:]*' "$work/$1-$2.out" || { cat "$work/$1-$2.err" >&2; exit 1; }
}

results="$out/propagation.md"
{
  echo "# bench/propagation.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $samples samples per store"
  echo
  echo "| store | write on B | samples | p50 ms | p99 ms | max ms | A's /valid under load meanwhile |"
  echo "|---|---|---|---|---|---|---|"
} > "$results"
for store in "${stores[@]}"; do
  a=$(start "$store" a); b=$(start "$store" b)
  token=$(curl -sf "$a/auth_token?realm=bench&user=bench&pwd=bench-pw" | head -1)
  wrk -t1 -c8 -d600s "$a/valid?realm=bench&token=$token" > "$work/load.txt" &
  load=$!; pids+=($load)
  sleep 1
  python3 bench/propagation.py "$a" "$b" "$samples" > "$work/$store.samples"
  kill -INT "$load"; wait "$load" 2>/dev/null || true
  for kind in revoke supersede; do
    awk -v k="$kind" '$1==k {print $2}' "$work/$store.samples" | sort -n > "$work/$store.$kind"
    n=$(wc -l < "$work/$store.$kind")
    pct() { awk -v p="$1" -v n="$n" 'NR==int((n-1)*p)+1 {print; exit}' "$work/$store.$kind"; }
    echo "| $store | $kind | $n | $(pct 0.5) | $(pct 0.99) | $(tail -1 "$work/$store.$kind") | $(rps "$work/load.txt") req/s |" >> "$results"
  done
done
cat "$results"
