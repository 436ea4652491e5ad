# Throwaway services for the tests, sourced by scripts/test.sh.
#
# Everything runs from one temporary directory on free loopback ports, and
# `stop_services` (called on exit) kills what was started here and nothing
# else. The machine's own Redis (127.0.0.1:6379) and PostgreSQL
# (127.0.0.1:5432) are used as they are, under per-test key prefixes and
# schemas.

services_dir=""
service_pids=()

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # free_port, wait_for

# A free port below 50000 whose cluster bus port (port + 10000) is free too.
free_cluster_port() {
  python3 -c '
import random, socket
while True:
    port = random.randint(20000, 49999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); s.close()
        t = socket.socket(); t.bind(("127.0.0.1", port + 10000)); t.close()
        print(port); break
    except OSError:
        s.close()
'
}

start_services() {
  services_dir=$(mktemp -d /tmp/sessiond-services.XXXXXX)
  chmod 755 "$services_dir"

  # memcached: one on TCP, one on a UNIX socket (FreeIPA's two set-ups).
  local mc_port; mc_port=$(free_port)
  local run_as=(); [ "$(id -u)" -eq 0 ] && run_as=(-u nobody)
  memcached "${run_as[@]}" -l 127.0.0.1 -p "$mc_port" -U 0 -m 64 -t 2 &
  service_pids+=($!)
  mkdir -m 1777 "$services_dir/mc"
  memcached "${run_as[@]}" -s "$services_dir/mc/memcached.sock" -a 0777 -m 64 -t 2 &
  service_pids+=($!)
  wait_for "memcached on port $mc_port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$mc_port"
  wait_for "memcached on $services_dir/mc/memcached.sock" test -S "$services_dir/mc/memcached.sock"
  export SESSIOND_TEST_MEMCACHED="memcache://127.0.0.1:$mc_port"
  export SESSIOND_TEST_MEMCACHED_SOCKET="$services_dir/mc/memcached.sock"

  # Redis Cluster: three primaries, no replicas.
  local nodes=() port
  for _ in 1 2 3; do
    port=$(free_cluster_port)
    mkdir -p "$services_dir/redis-$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$services_dir/redis-$port/nodes.conf" \
      --dir "$services_dir/redis-$port" --save '' --appendonly no \
      --logfile "$services_dir/redis-$port/log" &
    service_pids+=($!)
    nodes+=("127.0.0.1:$port")
  done
  for node in "${nodes[@]}"; do
    wait_for "redis cluster node $node" redis-cli -h 127.0.0.1 -p "${node##*:}" ping
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$services_dir/cluster-create.log" 2>&1
  for node in "${nodes[@]}"; do
    wait_for "redis cluster state ok on $node" \
      bash -c "redis-cli -h 127.0.0.1 -p ${node##*:} cluster info | grep -q cluster_state:ok"
  done
  local urls=() n
  for n in "${nodes[@]}"; do urls+=("redis://$n"); done
  export SESSIOND_TEST_REDIS_CLUSTER; SESSIOND_TEST_REDIS_CLUSTER=$(IFS=,; echo "${urls[*]}")

  # Redis Sentinel: a primary, a replica and three sentinels
  # (scripts/redis-sentinel.sh), for the store conformance suite. The
  # failover test starts its own set, since it kills a primary.
  eval "$(scripts/redis-sentinel.sh start "$services_dir/sentinel")"
  echo "redis sentinel: $SESSIOND_TEST_REDIS_SENTINEL (master $SESSIOND_TEST_REDIS_SENTINEL_MASTER)"

  # A throwaway Kerberos realm (scripts/krb5-realm.sh)
  eval "$(scripts/krb5-realm.sh start "$services_dir/krb5")"
  echo "kerberos: realm $KRB_TEST_REALM, KDC 127.0.0.1:$KRB_TEST_KDC_PORT"

  # A throwaway OpenLDAP server (scripts/ldap-server.sh)
  eval "$(scripts/ldap-server.sh start "$services_dir/ldap")"
  echo "ldap: $LDAP_TEST_URL and $LDAP_TEST_LDAPS_URL"

  # A second realm, its database in LDAP, that authorises constrained
  # delegation (scripts/krb5-ldap-realm.sh); its variables are S4U_TEST_*,
  # so the realm above stays the default one.
  eval "$(scripts/krb5-ldap-realm.sh start "$services_dir/s4u")"
  echo "kerberos (LDAP database, S4U): realm $S4U_TEST_REALM"

  export SESSIOND_TEST_REDIS_URL="redis://127.0.0.1:6379"
  export SESSIOND_TEST_POSTGRES_URL="postgres://root@127.0.0.1:5432/test"
  export SESSIOND_TEST_REQUIRE_SERVICES=1
  echo "memcached: $SESSIOND_TEST_MEMCACHED and $SESSIOND_TEST_MEMCACHED_SOCKET"
  echo "redis cluster: $SESSIOND_TEST_REDIS_CLUSTER"
  echo "redis: $SESSIOND_TEST_REDIS_URL, postgres: $SESSIOND_TEST_POSTGRES_URL"
}

stop_services() {
  local pid
  for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${service_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  service_pids=()
  if [ -n "$services_dir" ]; then
    scripts/redis-sentinel.sh stop "$services_dir/sentinel" || true
    scripts/krb5-realm.sh stop "$services_dir/krb5" || true
    scripts/ldap-server.sh stop "$services_dir/ldap" || true
    scripts/krb5-ldap-realm.sh stop "$services_dir/s4u" || true
    rm -rf "$services_dir"
  fi
}
