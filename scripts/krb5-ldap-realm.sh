#!/usr/bin/env bash
# A throwaway MIT Kerberos realm whose database lives in LDAP (Debian's
# krb5-kdc-ldap, in a throwaway slapd), so that the KDC can authorise
# constrained delegation: MIT's default database cannot (no
# krbAllowedToDelegateTo), the LDAP back end can. Entirely in one
# directory, on 127.0.0.1:
#
#   eval "$(scripts/krb5-ldap-realm.sh start DIR)"   # prints the variables to export
#   scripts/krb5-ldap-realm.sh stop DIR
#
# Realm S4U.TEST (its own name, so it is never mistaken for the file-backed
# EXAMPLE.TEST realm the other tests use), a KDC on a free port, principals
#   alice@S4U.TEST             password $S4U_TEST_PASSWORD
#   HTTP/localhost             sessiond's service (DIR/http.keytab): allowed
#                              to delegate to HTTP/backend.localhost only
#                              (krbAllowedToDelegateTo) and to obtain tickets
#                              for users who did not use Kerberos
#                              (+ok_to_auth_as_delegate, protocol transition)
#   HTTP/backend.localhost     the back end (DIR/backend.keytab)
#   HTTP/other.localhost       a service sessiond may not delegate to
#                              (DIR/other.keytab)
# krb5.conf and kdc.conf live in DIR (KRB5_CONFIG, KRB5_KDC_PROFILE); nothing
# under /etc is read or written. Needs krb5-kdc, krb5-admin-server,
# krb5-kdc-ldap, slapd and ldap-utils.
set -euo pipefail
cmd=${1:?usage: krb5-ldap-realm.sh start|stop DIR}
dir=${2:?usage: krb5-ldap-realm.sh start|stop DIR}
realm=S4U.TEST
suffix=dc=s4u,dc=test
admin="cn=admin,$suffix"
export PATH="$PATH:/usr/sbin"
source "$(dirname "$0")/lib.sh"   # free_port, rand_hex, stop_slapd, krb5_libdefaults

stop() {
  if [ -f "$dir/kdc.pid" ]; then
    kill "$(cat "$dir/kdc.pid")" 2>/dev/null || true
    rm -f "$dir/kdc.pid"
  fi
  stop_slapd "$dir/slapd.pid"
}

case $cmd in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "krb5-ldap-realm.sh: unknown command $cmd" >&2; exit 2 ;;
esac

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stop
rm -rf "$dir/db" "$dir"/*.keytab "$dir/ldap.stash" "$dir/stash"
mkdir -p "$dir/db"
kdc_port=$(free_port); ldap_port=$(free_port)
password="alice-$(rand_hex)"; root_password="root-$(rand_hex)"

# --- the directory: Kerberos schema, one database, the KDC binds as its root
gunzip -c /usr/share/doc/krb5-kdc-ldap/kerberos.schema.gz > "$dir/kerberos.schema"
cat > "$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include $dir/kerberos.schema
pidfile $dir/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "$suffix"
rootdn "$admin"
rootpw $(slappasswd -s "$root_password")
directory $dir/db
index krbPrincipalName eq,pres,sub
access to * by * none
EOF
printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: s4u\no: S4U\n' "$suffix" \
  > "$dir/base.ldif"
slapadd -f "$dir/slapd.conf" -l "$dir/base.ldif" >/dev/null 2>&1
slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$ldap_port/"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$ldap_port") 2>/dev/null && break
  sleep 0.05
done

# --- the realm, stored in that directory (krb5.conf for kadmin.local and
# kdb5_ldap_util, kdc.conf for the KDC: both need to know where)
dbmodules="[dbmodules]
    LDAP = {
        db_library = kldap
        ldap_kerberos_container_dn = cn=krbContainer,$suffix
        ldap_kdc_dn = $admin
        ldap_kadmind_dn = $admin
        ldap_service_password_file = $dir/ldap.stash
        ldap_servers = ldap://127.0.0.1:$ldap_port
        ldap_conns_per_server = 2
    }"
krb5_libdefaults "$realm" > "$dir/krb5.conf"
cat >> "$dir/krb5.conf" <<EOF
[realms]
    $realm = {
        kdc = 127.0.0.1:$kdc_port
        admin_server = 127.0.0.1:$kdc_port
        database_module = LDAP
    }
[domain_realm]
    localhost = $realm
    .localhost = $realm
$dbmodules
EOF
cat > "$dir/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$kdc_port
    kdc_tcp_listen = 127.0.0.1:$kdc_port
[realms]
    $realm = {
        database_module = LDAP
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        max_life = 10h
        max_renewable_life = 7d
    }
$dbmodules
[logging]
    kdc = FILE:$dir/kdc.log
EOF
: > "$dir/kadm5.acl"
export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
ldap=(-D "$admin" -w "$root_password" -H "ldap://127.0.0.1:$ldap_port")
kdb5_ldap_util "${ldap[@]}" create -subtrees "$suffix" -r "$realm" -s \
  -P "master-$(rand_hex)" >"$dir/create.log" 2>&1
# the KDC's password for its LDAP bind (prompted twice, read from stdin)
printf '%s\n%s\n' "$root_password" "$root_password" |
  kdb5_ldap_util "${ldap[@]}" stashsrvpw -f "$dir/ldap.stash" "$admin" >>"$dir/create.log" 2>&1
ka() { kadmin.local -r "$realm" -q "$1" >>"$dir/create.log" 2>&1; }
ka "addprinc -pw $password alice"
ka "addprinc -randkey +ok_to_auth_as_delegate HTTP/localhost"
ka "addprinc -randkey HTTP/backend.localhost"
ka "addprinc -randkey HTTP/other.localhost"
ka "ktadd -k $dir/http.keytab HTTP/localhost"
ka "ktadd -k $dir/backend.keytab HTTP/backend.localhost"
ka "ktadd -k $dir/other.keytab HTTP/other.localhost"
# Constrained delegation: the one service sessiond may obtain tickets for on
# a user's behalf. kadmin has no command for it; it is an LDAP attribute.
ldapmodify -x "${ldap[@]}" >>"$dir/create.log" 2>&1 <<EOF
dn: krbPrincipalName=HTTP/localhost@$realm,cn=$realm,cn=krbContainer,$suffix
changetype: modify
add: krbAllowedToDelegateTo
krbAllowedToDelegateTo: HTTP/backend.localhost@$realm
EOF
krb5kdc -r "$realm" -P "$dir/kdc.pid"
up=false
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$kdc_port") 2>/dev/null && { up=true; break; }
  sleep 0.05
done
# Said loudly: the caller evals this script's output, and an empty output
# would only show as skipped tests.
$up || { echo "krb5-ldap-realm.sh: the KDC did not start; see $dir/kdc.log and $dir/create.log" >&2; exit 1; }

cat <<EOF
export S4U_TEST_DIR='$dir'
export S4U_TEST_KRB5_CONFIG='$dir/krb5.conf'
export S4U_TEST_REALM='$realm'
export S4U_TEST_USER='alice'
export S4U_TEST_PASSWORD='$password'
EOF
