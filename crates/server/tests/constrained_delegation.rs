//! Constrained delegation (issue 16) against a real MIT KDC whose database
//! is in LDAP (scripts/krb5-ldap-realm.sh, started by scripts/test.sh): the
//! only kind of MIT realm that can authorise S4U2Proxy.
//!
//! So far this holds the realm to what the feature will rely on; the
//! server's side (tickets for a back end from a session) is not built yet.

#![cfg(feature = "kerberos")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The S4U realm's directory, krb5.conf and user, or `None` (skip) when it
/// is not running.
struct Realm {
    dir: PathBuf,
    config: String,
    realm: String,
    user: String,
}

fn realm() -> Option<Realm> {
    match (
        std::env::var("S4U_TEST_DIR"),
        std::env::var("S4U_TEST_KRB5_CONFIG"),
        std::env::var("S4U_TEST_REALM"),
        std::env::var("S4U_TEST_USER"),
    ) {
        (Ok(dir), Ok(config), Ok(realm), Ok(user)) => Some(Realm {
            dir: dir.into(),
            config,
            realm,
            user,
        }),
        _ => common::missing(
            "the LDAP-backed test realm is not running (S4U_TEST_* unset; scripts/krb5-ldap-realm.sh)",
        ),
    }
}

impl Realm {
    /// An MIT tool run in this realm with the ccache `ccache`.
    fn run(&self, ccache: &Path, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("KRB5_CONFIG", &self.config)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .env_remove("KRB5_KTNAME")
            .env_remove("KRB5_CLIENT_KTNAME")
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }
}

/// The KDC gives sessiond's service (`HTTP/localhost`, its keytab) a ticket
/// for a user who never used Kerberos (S4U2Self, allowed by
/// `+ok_to_auth_as_delegate`), then, from it, a ticket for that user to
/// `HTTP/backend.localhost` (S4U2Proxy, allowed by `krbAllowedToDelegateTo`)
/// — and to no other service.
#[test]
fn the_realm_authorises_delegation_to_the_back_end_only() {
    let Some(r) = realm() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ccache = tmp.path().join("service.ccache");
    let keytab = r.dir.join("http.keytab");
    let out = r.run(
        &ccache,
        "kinit",
        &["-k", "-t", keytab.to_str().unwrap(), "HTTP/localhost"],
    );
    assert!(out.status.success(), "kinit -k: {out:?}");

    let out = r.run(
        &ccache,
        "kvno",
        &["-U", &r.user, "-P", "HTTP/backend.localhost"],
    );
    assert!(out.status.success(), "S4U2Self + S4U2Proxy: {out:?}");
    let listed = r.run(&ccache, "klist", &[]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("HTTP/backend.localhost@{}", r.realm))
            && listed.contains(&format!("for client {}@{}", r.user, r.realm)),
        "a ticket for the user to the back end: {listed}"
    );
    // What a plain export of this cache would hand a back end besides that
    // ticket: the service's own TGT. The server must never pass the cache
    // on as it is (issue 16, item 3).
    assert!(listed.contains(&format!("krbtgt/{}", r.realm)), "{listed}");

    let out = r.run(
        &ccache,
        "kvno",
        &["-U", &r.user, "-P", "HTTP/other.localhost"],
    );
    assert!(!out.status.success(), "a service not on the list: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("constrained delegation failed"), "{err}");
}
