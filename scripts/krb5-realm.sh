#!/usr/bin/env bash
# A throwaway MIT Kerberos realm on 127.0.0.1, entirely in one directory:
#
#   eval "$(scripts/krb5-realm.sh start DIR)"   # prints the variables to export
#   scripts/krb5-realm.sh stop DIR
#
# Realm EXAMPLE.TEST, a KDC on a free port (TCP and UDP), principals
#   alice@EXAMPLE.TEST      password $KRB_TEST_PASSWORD
#   expired@EXAMPLE.TEST    a password that expired in 2000
#   HTTP/localhost          service key in DIR/http.keytab (and HTTP/app-a.localhost,
#                           HTTP/app-b.localhost, the browser test's two applications)
# krb5.conf and kdc.conf live in DIR and are selected with KRB5_CONFIG and
# KRB5_KDC_PROFILE: nothing under /etc is read or written.
set -euo pipefail
cmd=${1:?usage: krb5-realm.sh start|stop DIR}
dir=${2:?usage: krb5-realm.sh start|stop DIR}
realm=EXAMPLE.TEST
export PATH="$PATH:/usr/sbin"
source "$(dirname "$0")/lib.sh"   # free_port, rand_hex, krb5_libdefaults

stop() {
  if [ -f "$dir/kdc.pid" ]; then
    kill "$(cat "$dir/kdc.pid")" 2>/dev/null || true
    rm -f "$dir/kdc.pid"
  fi
}

case $cmd in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "krb5-realm.sh: unknown command $cmd" >&2; exit 2 ;;
esac

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stop
rm -f "$dir"/principal* "$dir/stash"
port=$(free_port)
password="alice-$(rand_hex)"

krb5_libdefaults "$realm" > "$dir/krb5.conf"
cat >> "$dir/krb5.conf" <<EOF
[realms]
    $realm = {
        kdc = 127.0.0.1:$port
        admin_server = 127.0.0.1:$port
    }
[domain_realm]
    localhost = $realm
    .localhost = $realm
EOF
cat > "$dir/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$port
    kdc_tcp_listen = 127.0.0.1:$port
[realms]
    $realm = {
        database_name = $dir/principal
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        max_life = 10h
        max_renewable_life = 7d
    }
[logging]
    kdc = FILE:$dir/kdc.log
EOF
: > "$dir/kadm5.acl"
export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
kdb5_util create -s -r "$realm" -P "master-$(rand_hex)" >/dev/null 2>&1
kadmin.local -r "$realm" -q "addprinc -pw $password alice" >/dev/null 2>&1
kadmin.local -r "$realm" -q 'addprinc -pw expired-Pass-1 -pwexpire "2000-01-01 00:00:00 UTC" expired' >/dev/null 2>&1
kadmin.local -r "$realm" -q "addprinc -randkey +ok_as_delegate HTTP/localhost" >/dev/null 2>&1
# the two applications of the browser single-sign-on test (nginx.rs), one
# host name each: a browser asks for HTTP/<host of the URL>
for host in app-a.localhost app-b.localhost; do
  kadmin.local -r "$realm" -q "addprinc -randkey HTTP/$host" >/dev/null 2>&1
done
rm -f "$dir/http.keytab"
kadmin.local -r "$realm" -q "ktadd -k $dir/http.keytab HTTP/localhost HTTP/app-a.localhost HTTP/app-b.localhost" >/dev/null 2>&1
krb5kdc -r "$realm" -P "$dir/kdc.pid"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

cat <<EOF
export KRB5_CONFIG='$dir/krb5.conf'
export KRB5_KDC_PROFILE='$dir/kdc.conf'
export KRB5_KTNAME='FILE:$dir/http.keytab'
export KRB5RCACHEDIR='$dir'
export KRB5CCNAME='FILE:$dir/ccache'
export KRB_TEST_DIR='$dir'
export KRB_TEST_REALM='$realm'
export KRB_TEST_KDC_PORT='$port'
export KRB_TEST_USER='alice'
export KRB_TEST_PASSWORD='$password'
EOF
