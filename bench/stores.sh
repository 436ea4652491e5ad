#!/usr/bin/env bash
# Load benchmark per store: GET /valid (a valid token, keep-alive, 50
# connections, wrk) against sessiond on each store — memory, file, redis,
# redis-cluster, memcached, postgres — reported as a ratio to the memory
# store and to what the store itself serves a bare client, in the same run:
#   redis          `redis-benchmark -c 50 -P 1 -t get` (same concurrency)
#   redis-cluster  the same with --cluster, against the same cluster
#   postgres       `pgbench -S -M prepared -c 16` (sessiond's 16 check
#                  connections), on a throwaway database
#
#   bench/stores.sh [seconds-per-run]      (default 10)
#   STORES="redis postgres" bench/stores.sh   (a subset; memory always runs)
#
# A store named with "+cache" (redis+cache, redis-cluster+cache, memcached+cache, postgres+cache)
# runs with the near cache on ([store.cache] enabled = true); the default
# list has all three.
#
# It starts its own memcached and three-node Redis Cluster
# (scripts/services.sh) and uses this machine's Redis (127.0.0.1:6379) and
# PostgreSQL (127.0.0.1:5432) under throwaway prefixes. Results go to
# bench/out/stores.md. Run it on an otherwise idle machine: wrk, sessiond
# and the store share two cores, so only ratios from one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
out=bench/out
mkdir -p "$out"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v memcached >/dev/null || need+=(memcached)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
source bench/lib.sh
install_packages "${need[@]}"
cargo build --release -q -p sessiond-server -p bench-baseline
bin=target/release/sessiond

source scripts/services.sh
work=$(mktemp -d)
pid=""
finish() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  stop_services
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'sessiond-bench:*' | xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null || true
  psql -h 127.0.0.1 -U root -d test -qc 'DROP SCHEMA IF EXISTS sessiond_bench CASCADE' >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U root -d test -qc 'DROP DATABASE IF EXISTS sessiond_pgbench' >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap finish EXIT
start_services >/dev/null


echo 'bench-pw' | "$bin" user add bench -f "$work/passwd" >/dev/null

declare -A url=(
  [redis]="redis://127.0.0.1:6379"
  [redis-cluster]="$SESSIOND_TEST_REDIS_CLUSTER"
  [memcached]="$SESSIOND_TEST_MEMCACHED"
  [postgres]="postgres://root@127.0.0.1:5432/test"
)
declare -A prefix=([postgres]=sessiond_bench)
read -r -a stores <<< "${STORES:-memory file redis redis-cluster memcached postgres redis+cache redis-cluster+cache memcached+cache postgres+cache}"
[ "${stores[0]}" = memory ] || stores=(memory "${stores[@]}")   # the baseline
declare -A got_rps got_p99

for store in "${stores[@]}"; do
  kind=${store%+cache}
  args=(serve -p 0 --password-file "$work/passwd")
  env=(SESSIOND_LOG=warn SESSIOND_STORE__PREFIX="${prefix[$kind]:-sessiond-bench}")
  [ "$kind" != "$store" ] && env+=(SESSIOND_STORE__CACHE__ENABLED=true)
  case $kind in
    memory) ;;
    file) args+=(-d "$work/data") ;;
    *) args+=(--store "$kind" --store-url "${url[$kind]}") ;;
  esac
  env "${env[@]}" "$bin" "${args[@]}" > "$work/stdout" 2> "$work/stderr" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.1; done
  base=$(grep -o 'http://[0-9.:]*' "$work/stdout") || { cat "$work/stderr" >&2; exit 1; }
  token=$(curl -sf "$base/auth_token?realm=bench&user=bench&pwd=bench-pw" | head -1)
  check=$(curl -sf "$base/valid?realm=bench&token=$token")
  [ "$(echo "$check" | head -1)" = YES ] || { echo "$store: token not valid: $check" >&2; exit 1; }
  wrk -t2 -c50 -d"${duration}s" --latency "$base/valid?realm=bench&token=$token" > "$out/store-$store.txt"
  require_2xx "$out/store-$store.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  got_rps[$store]=$(rps "$out/store-$store.txt")
  got_p99[$store]=$(p99_ms "$out/store-$store.txt")
  echo "$store: ${got_rps[$store]} requests/s, p99 ${got_p99[$store]} ms" >&2
done

# The ceiling for any HTTP front end here: bench-baseline (bare axum, the
# same store clients) answering one store round trip per request — Redis
# GET, the same on the cluster, pgbench -S's statement on 16 connections —
# under the same wrk load. wrk, the server and the store share the cores,
# so this, not the bare store client, is what HTTP can reach.
declare -A ceiling ceiling_path=([redis]=/redis [redis-cluster]=/redis-cluster [postgres]=/pg)
baseline_env=()
for store in "${stores[@]}"; do
  case $store in
    redis) baseline_env+=(BASELINE_REDIS_URL="${url[redis]}") ;;
    redis-cluster)
      redis-cli -c -u "${SESSIOND_TEST_REDIS_CLUSTER%%,*}" set sessiond-bench:plain value >/dev/null
      baseline_env+=(BASELINE_REDIS_CLUSTER="$SESSIOND_TEST_REDIS_CLUSTER") ;;
    postgres)
      psql -h 127.0.0.1 -U root -d test -qc 'DROP DATABASE IF EXISTS sessiond_pgbench' >/dev/null
      psql -h 127.0.0.1 -U root -d test -qc 'CREATE DATABASE sessiond_pgbench' >/dev/null
      pgbench -h 127.0.0.1 -U root -i -s 1 -q sessiond_pgbench > /dev/null 2>&1
      baseline_env+=(BASELINE_PG_URL="postgres://root@127.0.0.1:5432/sessiond_pgbench") ;;
  esac
done
if [ ${#baseline_env[@]} -gt 0 ]; then
  redis-cli -h 127.0.0.1 -p 6379 set sessiond-bench:plain value >/dev/null
  env "${baseline_env[@]}" target/release/bench-baseline > "$work/baseline.out" 2> "$work/baseline.err" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/baseline.out" 2>/dev/null && break; sleep 0.1; done
  base=$(grep -o 'http://[0-9.:]*' "$work/baseline.out") || { cat "$work/baseline.err" >&2; exit 1; }
  for store in "${!ceiling_path[@]}"; do
    [[ " ${stores[*]} " == *" $store "* ]] || continue
    wrk -t2 -c50 -d"${duration}s" --latency "$base${ceiling_path[$store]}" > "$out/ceiling-$store.txt"
    require_2xx "$out/ceiling-$store.txt"
    ceiling[$store]=$(rps "$out/ceiling-$store.txt")
    echo "bare axum + $store: ${ceiling[$store]} requests/s" >&2
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
fi

# The same concurrency straight against Redis: 50 clients, one GET each in flight.
redis-cli -h 127.0.0.1 -p 6379 set sessiond-bench:plain value >/dev/null
redis-benchmark -h 127.0.0.1 -p 6379 -c 50 -n $((duration * 50000)) -P 1 -q \
  -t get > "$out/redis-benchmark.txt" 2>&1 || true
# -q prints progress lines separated by CR; the last line has the total.
redis_get=$(tr '\r' '\n' < "$out/redis-benchmark.txt" | awk '/requests per second/ {print $2}' | tail -1)
[ -n "$redis_get" ] || { cat "$out/redis-benchmark.txt" >&2; exit 1; }
declare -A bare=([redis]=$redis_get)
declare -A bare_what=([redis]="redis-benchmark GET")

for store in "${stores[@]}"; do
  case $store in
    *+cache) continue ;;
    redis-cluster)
      node=${SESSIOND_TEST_REDIS_CLUSTER%%,*}; node=${node#redis://}
      redis-benchmark -h "${node%:*}" -p "${node#*:}" --cluster -c 50 \
        -n $((duration * 50000)) -P 1 -q -t get > "$out/redis-benchmark-cluster.txt" 2>&1 || true
      bare[$store]=$(tr '\r' '\n' < "$out/redis-benchmark-cluster.txt" | awk '/requests per second/ {print $2}' | tail -1)
      bare_what[$store]="redis-benchmark --cluster GET" ;;
    postgres)
      pgbench -h 127.0.0.1 -U root -S -M prepared -c 16 -j 2 -T "$duration" sessiond_pgbench \
        > "$out/pgbench.txt" 2>&1
      bare[$store]=$(awk '/^tps = / {print $3}' "$out/pgbench.txt" | tail -1)
      bare_what[$store]="pgbench -S -M prepared -c 16" ;;
  esac
done

results="$out/stores.md"
{
  echo "# bench/stores.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c50 -d${duration}s"
  echo
  echo "redis-benchmark GET, 50 clients, no pipelining: ${redis_get} requests/s"
  echo
  echo "| store | /valid requests/s | p99 ms | vs memory store | vs redis-benchmark GET | the store to a bare client | vs that | bare axum + one store read | vs that |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for store in "${stores[@]}"; do
    awk -v s="$store" -v r="${got_rps[$store]}" -v p="${got_p99[$store]}" \
        -v m="${got_rps[memory]}" -v g="$redis_get" -v b="${bare[${store%+cache}]:-}" \
        -v w="${bare_what[${store%+cache}]:-}" -v c="${ceiling[${store%+cache}]:-}" 'BEGIN {
      own = (b == "") ? "| – | – |" : sprintf("| %s: %.0f/s | %.2f |", w, b, r/b)
      top = (c == "") ? " – | – |" : sprintf(" %.0f/s | %.2f |", c, r/c)
      printf "| %s | %.0f | %.2f | %.2f | %.2f %s%s\n", s, r, p, r/m, r/g, own, top }'
  done
} > "$results"
cat "$results"
