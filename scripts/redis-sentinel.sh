#!/usr/bin/env bash
# A throwaway Redis Sentinel set-up on loopback for the tests: a primary, a
# replica and three sentinels (quorum 2) watching the master name
# `sessiond`, all on free ports, everything under DIR.
#
#   scripts/redis-sentinel.sh start DIR   prints `export …` lines:
#       SESSIOND_TEST_REDIS_SENTINEL         the sentinels, comma-separated URLs
#       SESSIOND_TEST_REDIS_SENTINEL_MASTER  the master name
#   scripts/redis-sentinel.sh stop DIR    stops every server it started
#
# Each data server's start command is kept in DIR/node-PORT.sh, so a test
# that kills one can start it again: with `--replicaof 127.0.0.1 NEW` it
# follows the new primary at once (the sentinels would also make it a
# replica, but only about 10 s after it comes back). Failure detection is set to 1 s
# (`down-after-milliseconds`) so a failover test takes seconds, not the
# default 30 s.
set -euo pipefail
action=${1:?usage: redis-sentinel.sh start|stop DIR}
dir=${2:?usage: redis-sentinel.sh start|stop DIR}
master=sessiond

source "$(dirname "$0")/lib.sh"   # free_port, wait_for

start_node() { # start_node PORT [replicaof-port]
  local port=$1 of=${2:-}
  local args=(--port "$port" --bind 127.0.0.1 --save "''" --appendonly no
    --dir "$dir" --logfile "$dir/redis-$port.log" --pidfile "$dir/redis-$port.pid"
    --daemonize yes)
  [ -n "$of" ] && args+=(--replicaof 127.0.0.1 "$of")
  printf 'exec redis-server %s "$@"\n' "${args[*]}" > "$dir/node-$port.sh"
  bash "$dir/node-$port.sh"
}

case $action in
start)
  mkdir -p "$dir"
  primary=$(free_port); replica=$(free_port)
  start_node "$primary"
  wait_for "redis primary on $primary" redis-cli -p "$primary" ping
  start_node "$replica" "$primary"
  wait_for "the replica on $replica" \
    bash -c "redis-cli -p $replica info replication | grep -q master_link_status:up"
  urls=()
  for _ in 1 2 3; do
    port=$(free_port)
    cat > "$dir/sentinel-$port.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/sentinel-$port.pid
logfile $dir/sentinel-$port.log
dir $dir
sentinel monitor $master 127.0.0.1 $primary 2
sentinel down-after-milliseconds $master 1000
sentinel failover-timeout $master 10000
sentinel parallel-syncs $master 1
CONF
    redis-sentinel "$dir/sentinel-$port.conf"
    urls+=("redis://127.0.0.1:$port")
  done
  # Ready when every sentinel knows the replica and the two other
  # sentinels: only then can a failover be agreed on.
  for url in "${urls[@]}"; do
    port=${url##*:}
    wait_for "sentinel $port" bash -c "
      [ \"\$(redis-cli -p $port sentinel master $master | grep -A1 -x num-other-sentinels | tail -1)\" = 2 ] &&
      [ \"\$(redis-cli -p $port sentinel master $master | grep -A1 -x num-slaves | tail -1)\" = 1 ]"
  done
  echo "export SESSIOND_TEST_REDIS_SENTINEL=$(IFS=,; echo "${urls[*]}")"
  echo "export SESSIOND_TEST_REDIS_SENTINEL_MASTER=$master"
  ;;
stop)
  pids=()
  for pidfile in "$dir"/sentinel-*.pid "$dir"/redis-*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  # Wait for them to exit: a sentinel rewrites its configuration as it
  # stops, and a caller removing DIR meanwhile fails ("Directory not empty").
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  ;;
*)
  echo "usage: redis-sentinel.sh start|stop DIR" >&2
  exit 2
  ;;
esac
