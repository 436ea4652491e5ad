//! LDAP password logins against a real OpenLDAP slapd
//! (scripts/ldap-server.sh, started by scripts/test.sh): simple bind by DN
//! template, search-then-bind with a service account, StartTLS and LDAPS
//! with a private CA, injection attempts, an unreachable server, and the
//! user's groups (memberOf, a group search, nested groups).

mod common;

use common::{Options, Server};

struct Ldap {
    url: String,
    ldaps_url: String,
    ca: String,
    password: String,
    reader_password: String,
}

fn ldap() -> Option<Ldap> {
    let var = |k: &str| std::env::var(k).ok();
    match (
        var("LDAP_TEST_URL"),
        var("LDAP_TEST_LDAPS_URL"),
        var("LDAP_TEST_CA"),
        var("LDAP_TEST_PASSWORD"),
        var("LDAP_TEST_READER_PASSWORD"),
    ) {
        (Some(url), Some(ldaps_url), Some(ca), Some(password), Some(reader_password)) => {
            Some(Ldap {
                url,
                ldaps_url,
                ca,
                password,
                reader_password,
            })
        }
        _ => common::missing(
            "the test LDAP server is not running (LDAP_TEST_* unset; scripts/ldap-server.sh)",
        ),
    }
}

const TEMPLATE: &str = "uid={user},ou=people,dc=example,dc=test";

fn server(extra: &[(&str, &str)]) -> Server {
    let mut o = Options::default().env("SESSIOND_AUTH__MODULES", r#"["file", "ldap"]"#);
    for (k, v) in extra {
        o = o.env(k, v);
    }
    Server::start(o)
}

async fn login(s: &Server, user: &str, password: &str) -> (u16, serde_json::Value) {
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": user, "password": password, "module": "ldap"}),
        )
        .await;
    (r.status, r.json())
}

#[tokio::test]
async fn simple_bind_by_dn_template() {
    let Some(l) = ldap() else { return };
    let s = server(&[
        ("SESSIOND_LDAP__URL", &l.url),
        ("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE),
    ]);
    let (status, j) = login(&s, "alice", &l.password).await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        (j["user"].as_str(), j["source"].as_str()),
        (Some("alice"), Some("auth/ldap"))
    );
    // The directory's name for the account, not what was typed: one user
    // for limits, supersede and revocation.
    for typed in ["Alice", "ALICE", "alice "] {
        let (status, j) = login(&s, typed, &l.password).await;
        assert_eq!(status, 200, "{typed:?}: {j}");
        assert_eq!(j["user"], "alice", "{typed:?}");
    }
    for (user, password) in [
        ("alice", "wrong"),
        ("alice", ""),
        ("nobody", "whatever"),
        // DN injection: escaped, so it names no entry
        ("alice,ou=people", l.password.as_str()),
    ] {
        let (status, j) = login(&s, user, password).await;
        assert_eq!(status, 401, "{user:?}/{password:?}: {j}");
    }
}

#[tokio::test]
async fn search_then_bind_with_a_service_account() {
    let Some(l) = ldap() else { return };
    let s = server(&[
        ("SESSIOND_LDAP__URL", &l.url),
        ("SESSIOND_LDAP__SEARCH_BASE", "dc=example,dc=test"),
        ("SESSIOND_LDAP__BIND_DN", "cn=reader,dc=example,dc=test"),
        ("SESSIOND_LDAP_BIND_PASSWORD", &l.reader_password),
    ]);
    let (status, j) = login(&s, "alice", &l.password).await;
    assert_eq!(status, 200, "{j}");
    let (status, j) = login(&s, "ALICE", &l.password).await;
    assert_eq!((status, j["user"].as_str()), (200, Some("alice")), "{j}");
    // filter injection: `*` would match every entry if not escaped
    for (user, password) in [
        ("*", l.password.as_str()),
        ("alice", "wrong"),
        ("nobody", "x"),
    ] {
        let (status, j) = login(&s, user, password).await;
        assert_eq!(status, 401, "{user:?}: {j}");
    }
    // a wrong service password is an outage, not the user's fault
    let broken = server(&[
        ("SESSIOND_LDAP__URL", &l.url),
        ("SESSIOND_LDAP__SEARCH_BASE", "dc=example,dc=test"),
        ("SESSIOND_LDAP__BIND_DN", "cn=reader,dc=example,dc=test"),
        ("SESSIOND_LDAP_BIND_PASSWORD", "not-the-reader-password"),
    ]);
    let (status, j) = login(&broken, "alice", &l.password).await;
    assert_eq!(
        (status, j["error"].as_str()),
        (503, Some("auth_unavailable")),
        "{j}"
    );
}

#[tokio::test]
async fn starttls_and_ldaps_with_a_private_ca() {
    let Some(l) = ldap() else { return };
    let tls = server(&[
        ("SESSIOND_LDAP__URL", &l.url),
        ("SESSIOND_LDAP__STARTTLS", "true"),
        ("SESSIOND_LDAP__CA_FILE", &l.ca),
        ("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE),
    ]);
    assert_eq!(login(&tls, "alice", &l.password).await.0, 200);
    let ldaps = server(&[
        ("SESSIOND_LDAP__URL", &l.ldaps_url),
        ("SESSIOND_LDAP__CA_FILE", &l.ca),
        ("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE),
    ]);
    assert_eq!(login(&ldaps, "alice", &l.password).await.0, 200);
    // the server's certificate is not trusted without the CA: refused, 503
    let untrusted = server(&[
        ("SESSIOND_LDAP__URL", &l.ldaps_url),
        ("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE),
    ]);
    let (status, j) = login(&untrusted, "alice", &l.password).await;
    assert_eq!(status, 503, "{j}");
}

#[tokio::test]
async fn unreachable_ldap_server_is_503_and_bad_settings_stop_start_up() {
    let dead = common::free_port();
    let s = server(&[
        ("SESSIOND_LDAP__URL", &format!("ldap://127.0.0.1:{dead}")),
        ("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE),
    ]);
    let (status, j) = login(&s, "alice", "pw").await;
    assert_eq!(
        (status, j["error"].as_str()),
        (503, Some("auth_unavailable")),
        "{j}"
    );

    let refused = Server::try_start(
        Options::default()
            .env("SESSIOND_AUTH__MODULES", r#"["file", "ldap"]"#)
            .env("SESSIOND_LDAP__URL", "ldap://127.0.0.1:1"),
    );
    let err = refused.err().expect("no DN template and no search");
    assert!(err.contains("ldap: set user_dn_template"), "{err}");
}

/// Groups: `memberOf` on the user's entry (kept by slapd's memberof
/// overlay: direct memberships only), or a search for the group entries
/// that name the user, optionally followed up the group tree.
#[tokio::test]
async fn groups_from_member_of_a_search_and_nesting() {
    let Some(l) = ldap() else { return };
    let base = [
        ("SESSIOND_LDAP__URL", l.url.as_str()),
        ("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE),
    ];
    let groups_with = |extra: &'static [(&'static str, &'static str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        let s = server(&env);
        let password = l.password.clone();
        async move {
            let (status, j) = login(&s, "alice", &password).await;
            assert_eq!(status, 200, "{j}");
            j["groups"].clone()
        }
    };
    assert_eq!(
        groups_with(&[("SESSIOND_LDAP__GROUP_ATTRIBUTE", "memberOf")]).await,
        serde_json::json!(["dev"])
    );
    const SEARCH: (&str, &str) = (
        "SESSIOND_LDAP__GROUP_SEARCH_BASE",
        "ou=groups,dc=example,dc=test",
    );
    assert_eq!(
        groups_with(&[SEARCH]).await,
        serde_json::json!(["dev"]),
        "direct membership by default"
    );
    assert_eq!(
        groups_with(&[SEARCH, ("SESSIOND_LDAP__NESTED_GROUPS", "true")]).await,
        serde_json::json!(["dev", "engineering"]),
        "engineering contains dev"
    );
    // no group settings: no groups
    assert_eq!(groups_with(&[]).await, serde_json::json!([]));

    // search-then-bind, groups read with the search, and forward auth
    // passes them on
    let s = server(&[
        ("SESSIOND_LDAP__URL", &l.url),
        ("SESSIOND_LDAP__BIND_DN", "cn=reader,dc=example,dc=test"),
        ("SESSIOND_LDAP_BIND_PASSWORD", &l.reader_password),
        ("SESSIOND_LDAP__SEARCH_BASE", "ou=people,dc=example,dc=test"),
        (
            "SESSIOND_LDAP__GROUP_SEARCH_BASE",
            "ou=groups,dc=example,dc=test",
        ),
        ("SESSIOND_LDAP__NESTED_GROUPS", "true"),
        ("SESSIOND_BROWSER__COOKIE__SECURE", "false"),
    ]);
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "http://localhost"),
            ],
            format!("user=alice&password={}&module=ldap", l.password).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let cookie = r.cookie();
    let r = s.request("GET", "/auth", &[("Cookie", &cookie)], b"").await;
    assert_eq!(
        r.header("x-remote-groups"),
        Some("dev,engineering"),
        "{r:?}"
    );

    // a group setting that cannot work is refused at start
    let err = Server::try_start(
        Options::default()
            .env("SESSIOND_AUTH__MODULES", r#"["file", "ldap"]"#)
            .env("SESSIOND_LDAP__URL", &l.url)
            .env("SESSIOND_LDAP__USER_DN_TEMPLATE", TEMPLATE)
            .env("SESSIOND_LDAP__NESTED_GROUPS", "true"),
    )
    .err()
    .expect("refused");
    assert!(err.contains("ldap.nested_groups"), "{err}");
}
