#!/usr/bin/env bash
# CPU time sessiond spends on one POST /valid carrying N names in the URL and
# N in the form body (issue 11, item 6: decoding was quadratic).
#
#   bench/param_flood.sh [N] [BINARY...]
#
# For each binary (default: target/release/sessiond, built if missing) it
# starts a server on the memory store, sends the request 20 times, and
# prints the server process's user+system CPU per request, read from
# /proc/PID/stat before and after. Compare binaries measured in one run: this
# machine is noisy. A current binary refuses the request (400, too many
# parameters); the CPU it spends saying so is the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-8000}; shift || true
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
  [ -x target/release/sessiond ] || cargo build --release -q
  bins=(target/release/sessiond)
fi
reps=20
tick=$(getconf CLK_TCK)
for bin in "${bins[@]}"; do
  dir=$(mktemp -d)
  port=$(free_port)
  "$bin" serve --store memory -l 127.0.0.1 -p "$port" --password-file "$dir/passwd" \
    >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 50); do grep -q '://' "$dir/out" 2>/dev/null && break; sleep 0.1; done
  cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  before=$(cpu)
  status=$(python3 - "$port" "$n" "$reps" <<'PY'
import http.client, sys
port, n, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
query = "&".join(f"q{i}=x" for i in range(n))
body = "&".join(f"b{i}=x" for i in range(n))
for _ in range(reps):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", f"/valid?realm=rc&{query}", body,
              {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); r.read(); status = r.status; c.close()
print(status)
PY
)
  after=$(cpu)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  awk -v b="$before" -v a="$after" -v t="$tick" -v r="$reps" -v bin="$bin" -v s="$status" -v n="$n" \
    'BEGIN { printf "%s: %d+%d parameters, HTTP %s, %.1f ms CPU per request\n", bin, n, n, s, (a-b)/t/r*1000 }'
done
