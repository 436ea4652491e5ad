#!/usr/bin/env bash
# A throwaway OpenLDAP server on 127.0.0.1, entirely in one directory:
#
#   eval "$(scripts/ldap-server.sh start DIR)"   # prints the variables to export
#   scripts/ldap-server.sh stop DIR
#
# Suffix dc=example,dc=test with
#   uid=alice,ou=people,dc=example,dc=test     password $LDAP_TEST_PASSWORD
#   cn=reader,dc=example,dc=test               the search account ($LDAP_TEST_READER_PASSWORD)
#   cn=dev,ou=groups,dc=example,dc=test         groupOfNames with alice (memberOf kept
#                                               by the memberof overlay)
#   cn=engineering,ou=groups,dc=example,dc=test groupOfNames with the group dev (nested)
#   cn=ops,ou=groups,dc=example,dc=test         groupOfNames without alice
# ldap:// (StartTLS offered) and ldaps:// on free ports, with a certificate
# for localhost/127.0.0.1 signed by a private CA (DIR/ca.pem).
set -euo pipefail
cmd=${1:?usage: ldap-server.sh start|stop DIR}
dir=${2:?usage: ldap-server.sh start|stop DIR}
export PATH="$PATH:/usr/sbin"
source "$(dirname "$0")/lib.sh"   # free_port, rand_hex, stop_slapd

stop() { stop_slapd "$dir/slapd.pid"; }

case $cmd in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "ldap-server.sh: unknown command $cmd" >&2; exit 2 ;;
esac

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stop
rm -rf "$dir/db"; mkdir -p "$dir/db"
port=$(free_port); tls_port=$(free_port)
password="alice-$(rand_hex)"; reader_password="reader-$(rand_hex)"; root_password="root-$(rand_hex)"

# a private CA, and a server certificate it signs (TLS clients refuse a CA
# certificate used as the server's own)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sessiond-test-ca \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
  -keyout "$dir/key.pem" -out "$dir/server.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/server.ext" -out "$dir/cert.pem" >/dev/null 2>&1

cat > "$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $dir/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCertificateFile $dir/cert.pem
TLSCertificateKeyFile $dir/key.pem
database mdb
maxsize 10485760
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw $(slappasswd -s "$root_password")
directory $dir/db
overlay memberof
access to attrs=userPassword
    by anonymous auth
    by * none
access to dn.subtree="ou=groups,dc=example,dc=test"
    by dn.exact="cn=reader,dc=example,dc=test" read
    by users read
    by * none
access to *
    by dn.exact="cn=reader,dc=example,dc=test" read
    by self read
    by * none
EOF

cat > "$dir/base.ldif" <<EOF
dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: cn=reader,dc=example,dc=test
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: $(slappasswd -s "$reader_password")

dn: uid=alice,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.test
userPassword: $(slappasswd -s "$password")
EOF
slapadd -f "$dir/slapd.conf" -l "$dir/base.ldif" >/dev/null 2>&1
slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tls_port/"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

# Groups through the running server, not slapadd: the memberof overlay
# keeps memberOf only for changes made through LDAP.
ldapadd -x -H "ldap://127.0.0.1:$port" -D "cn=admin,dc=example,dc=test" -w "$root_password" >/dev/null <<EOF
dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: cn=dev,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: dev
member: uid=alice,ou=people,dc=example,dc=test

dn: cn=engineering,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: engineering
member: cn=dev,ou=groups,dc=example,dc=test

dn: cn=ops,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: ops
member: cn=reader,dc=example,dc=test
EOF

cat <<EOF
export LDAP_TEST_URL='ldap://127.0.0.1:$port'
export LDAP_TEST_LDAPS_URL='ldaps://127.0.0.1:$tls_port'
export LDAP_TEST_CA='$dir/ca.pem'
export LDAP_TEST_PASSWORD='$password'
export LDAP_TEST_READER_PASSWORD='$reader_password'
EOF
