#!/usr/bin/env bash
# Ticket benchmark: `GET /auth` carrying a signed ticket against the same
# request carrying a server-side session cookie (memory store), and Apache
# httpd with mod_auth_tkt checking the same kind of ticket, in the same run.
#
#   bench/tickets.sh [seconds-per-run] [digest]     (default 10, sha256)
#
# wrk -t2 -c50 keep-alive on the machine's shared cores: only the ratios
# mean anything. The in-process figures are `cargo bench -p sessiond-core`.
# Results go to bench/out/tickets.md.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
digest=${2:-sha256}
out=bench/out
mkdir -p "$out"
export PATH="$PATH:/usr/sbin"
source bench/lib.sh

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/apache2 ] || need+=(apache2)
[ -e /usr/lib/apache2/modules/mod_auth_tkt.so ] || need+=(libapache2-mod-auth-tkt)
install_packages "${need[@]}"
cargo build --release -q -p sessiond-server
bin=$PWD/target/release/sessiond

work=$(mktemp -d)
chmod 755 "$work"
pids=()
finish() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -e "$work/httpd.conf" ] && apache2 -f "$work/httpd.conf" -k stop 2>/dev/null || true
  rm -rf "$work"
}
trap finish EXIT

secret=$(head -c 24 /dev/urandom | base64)
printf '%s\n' "$secret" > "$work/secrets"
echo 'bench-pw' | "$bin" user add bench -f "$work/passwd" >/dev/null
cat > "$work/sessiond.toml" <<EOF
[browser.cookie]
secure = false
[realms.web.ticket]
digest = "$digest"
secrets_file = "$work/secrets"
cookie_secure = false
refresh = 0.0
EOF
SESSIOND_LOG=warn "$bin" serve -p 0 -c "$work/sessiond.toml" --password-file "$work/passwd" \
  > "$work/stdout" 2> "$work/stderr" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.1; done
sessiond=$(grep -o 'http://[0-9.:]*' "$work/stdout" | sed 's|http://||')

headers=$(curl -s -D - -o /dev/null \
  -d 'user=bench&password=bench-pw' "http://$sessiond/session/login_password")
session=$(printf '%s' "$headers" | grep -i '^set-cookie: sessiond=' | sed 's/^[^:]*: //; s/;.*//')
ticket=$(printf '%s' "$headers" | grep -i '^set-cookie: auth_tkt=' | sed 's/^[^:]*: //; s/;.*//')
[ -n "$session" ] && [ -n "$ticket" ] || { echo "login gave no cookies: $headers" >&2; exit 1; }

apache_port=$(free_port)
mkdir -p "$work/htdocs/protected"; echo ok > "$work/htdocs/protected/index.html"; chmod -R a+rX "$work"
m=/usr/lib/apache2/modules
cat > "$work/httpd.conf" <<EOF
ServerRoot $work
PidFile $work/httpd.pid
ErrorLog $work/error.log
LogLevel warn
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule auth_tkt_module $m/mod_auth_tkt.so
ServerName 127.0.0.1
User daemon
Group daemon
DocumentRoot $work/htdocs
Listen 127.0.0.1:$apache_port
TKTAuthSecret "$secret"
TKTAuthDigestType ${digest^^}
<Location /protected>
  AuthType None
  TKTAuthLoginURL http://127.0.0.1/login
  TKTAuthIgnoreIP on
  TKTAuthTimeout 7200
  require valid-user
</Location>
EOF
apache2 -f "$work/httpd.conf" -k start
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$apache_port/" && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$ticket" "http://127.0.0.1:$apache_port/protected/index.html")
[ "$code" = 200 ] || { echo "apache refused sessiond's ticket ($code)" >&2; exit 1; }

run() { # name url cookie
  wrk -t2 -c50 -d"${duration}s" -H "Cookie: $3" --latency "$2" > "$work/$1.txt"
  require_2xx "$work/$1.txt"
  # p99 as wrk writes it (with its unit): the table shows it as measured
  echo "$1 $(rps "$work/$1.txt") $(awk '$1=="99%" {print $2}' "$work/$1.txt")"
}
session_line=$(run session "http://$sessiond/auth" "$session")
ticket_line=$(run ticket "http://$sessiond/auth" "$ticket")
apache_line=$(run apache "http://127.0.0.1:$apache_port/protected/index.html" "$ticket")
read -r _ s_rps s_p99 <<<"$session_line"
read -r _ t_rps t_p99 <<<"$ticket_line"
read -r _ a_rps a_p99 <<<"$apache_line"
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
  echo "# Tickets ($digest), $(date -u +%Y-%m-%dT%H:%MZ), wrk -t2 -c50 ${duration}s"
  echo
  echo "| request | req/s | p99 | vs session cookie | vs Apache mod_auth_tkt |"
  echo "|---|---|---|---|---|"
  echo "| sessiond /auth, session cookie (memory store) | $s_rps | $s_p99 | 1.00 | $(ratio "$s_rps" "$a_rps") |"
  echo "| sessiond /auth, ticket | $t_rps | $t_p99 | $(ratio "$t_rps" "$s_rps") | $(ratio "$t_rps" "$a_rps") |"
  echo "| Apache mod_auth_tkt, same ticket | $a_rps | $a_p99 | $(ratio "$a_rps" "$s_rps") | 1.00 |"
} | tee "$out/tickets.md"
