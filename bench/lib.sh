# Shared by the benchmark scripts: `source bench/lib.sh`.

# apt-get installs the named packages, without starting their daemons on
# standard ports (the benchmarks start their own).
install_packages() {
  [ $# -gt 0 ] || return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

# A TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wrk's "Requests/sec" from its output file.
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }

# wrk's 99th-percentile latency (--latency), in milliseconds.
p99_ms() {
  awk '$1=="99%" {v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
       if (u=="us") v/=1000; else if (u=="s") v*=1000; print v}' "$1"
}

# Stops the benchmark if wrk saw any answer but 2xx: its rate would not be
# the rate of the request meant.
require_2xx() {
  if grep -q 'Non-2xx' "$1"; then echo "non-2xx answers in $1" >&2; cat "$1" >&2; exit 1; fi
}

# A scratch directory ($work) and the background processes a benchmark
# starts ($pids: append to it), both cleaned up when the script exits.
scratch() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}
