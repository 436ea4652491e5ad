#!/usr/bin/env bash
# Forward-auth benchmark: GET of a protected page through nginx with
# `auth_request` to sessiond (the README's nginx configuration, as written,
# ports substituted) and a valid session cookie, against the same nginx
# proxying the same back end without `auth_request`, in the same run.
#
#   bench/forward_auth.sh [seconds-per-run]      (default 10)
#
# wrk -t2 -c50 keep-alive; nginx, sessiond (memory store) and wrk share the
# machine's cores, so only the ratio means anything. Results go to
# bench/out/forward_auth.md.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
out=bench/out
mkdir -p "$out"
export PATH="$PATH:/usr/sbin"
source bench/lib.sh

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx)
install_packages "${need[@]}"
cargo build --release -q -p sessiond-server
bin=$PWD/target/release/sessiond

work=$(mktemp -d)
chmod 755 "$work"
pids=()
finish() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap finish EXIT


echo 'bench-pw' | "$bin" user add bench -f "$work/passwd" >/dev/null
SESSIOND_LOG=warn SESSIOND_BROWSER__COOKIE__SECURE=false \
  "$bin" serve -p 0 --password-file "$work/passwd" > "$work/stdout" 2> "$work/stderr" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.1; done
sessiond=$(grep -o 'http://[0-9.:]*' "$work/stdout" | sed 's|http://||')

front=$(free_port); direct=$(free_port); back=$(free_port)
server_block=$(awk '/^```nginx$/ {on=1; next} on && /^```/ {exit} on {print}' README.md \
  | sed -e "s|listen 80;|listen 127.0.0.1:$front;|" \
        -e "s|127.0.0.1:4431|$sessiond|g" -e "s|127.0.0.1:8080|127.0.0.1:$back|g")
mkdir -p "$work/tmp"; chmod 777 "$work/tmp"
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
$server_block
    # the same back end, without auth_request: the baseline
    server {
        listen 127.0.0.1:$direct;
        location / {
            proxy_pass http://127.0.0.1:$back;
        }
    }
    server {
        listen 127.0.0.1:$back;
        location / { default_type text/plain; return 200 "hello \$http_x_remote_user\n"; }
    }
}
EOF
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$front") 2>/dev/null && break; sleep 0.1; done

cookie=$(curl -s -o /dev/null -D - -H 'Origin: http://localhost' -H 'Host: localhost' \
  --data 'user=bench&password=bench-pw' "http://127.0.0.1:$front/session/login_password" \
  | awk -F': ' 'tolower($1)=="set-cookie" {split($2, a, ";"); print a[1]}')
[ -n "$cookie" ] || { echo "login through nginx failed" >&2; exit 1; }
check=$(curl -s -H "Cookie: $cookie" "http://127.0.0.1:$front/private")
[ "$check" = "hello bench" ] || { echo "protected page: $check" >&2; exit 1; }

wrk -t2 -c50 -d"${duration}s" --latency "http://127.0.0.1:$direct/private" > "$out/fa-direct.txt"
wrk -t2 -c50 -d"${duration}s" --latency -H "Cookie: $cookie" "http://127.0.0.1:$front/private" > "$out/fa-auth.txt"
for f in direct auth; do require_2xx "$out/fa-$f.txt"; done

{
  echo "# bench/forward_auth.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c50 -d${duration}s"
  echo
  echo "| path | requests/s | p99 ms | vs nginx without auth_request |"
  echo "|---|---|---|---|"
  awk -v dr="$(rps "$out/fa-direct.txt")" -v dp="$(p99_ms "$out/fa-direct.txt")" \
      -v ar="$(rps "$out/fa-auth.txt")" -v ap="$(p99_ms "$out/fa-auth.txt")" 'BEGIN {
    printf "| nginx → back end | %.0f | %.2f | 1.00 |\n", dr, dp
    printf "| nginx → auth_request /auth (sessiond, memory store) → back end | %.0f | %.2f | %.2f |\n", ar, ap, ar/dr
  }'
} > "$out/forward_auth.md"
cat "$out/forward_auth.md"
