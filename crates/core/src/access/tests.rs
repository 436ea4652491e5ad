//! Rules: compilation errors, first match, each condition, and paths that
//! must not walk around a rule.

use super::*;
use proptest::prelude::*;

fn spec(policy: PolicyKind) -> RuleSpec {
    RuleSpec {
        policy,
        ..RuleSpec::default()
    }
}

fn target(host: &str, path: &str) -> Target<'static> {
    Target {
        host: Some(Box::leak(host.to_owned().into_boxed_str())),
        path: Box::leak(normalize_path(path).unwrap().into_boxed_str()),
        method: Some("GET"),
        client: Some("10.1.2.3".parse().unwrap()),
    }
}

fn alice() -> Who<'static> {
    Who {
        user: "alice",
        groups: Box::leak(vec!["dev".to_owned()].into_boxed_slice()),
        realm: "web",
        source: "auth/file",
    }
}

#[test]
fn first_match_wins_and_default_decides_the_rest() {
    let rules = Rules::compile(
        &[
            RuleSpec {
                name: Some("admin closed".into()),
                paths: vec!["/admin".into()],
                ..spec(PolicyKind::Deny)
            },
            RuleSpec {
                paths: vec!["/admin".into(), "/ops".into()],
                groups: vec!["dev".into()],
                ..spec(PolicyKind::Allow)
            },
            RuleSpec {
                paths: vec!["/health".into()],
                ..spec(PolicyKind::Public)
            },
        ],
        PolicyKind::Deny,
    )
    .unwrap();
    let d = rules.decide(&target("a.test", "/admin/x"));
    assert_eq!(d.label(), "rule 0 (admin closed)");
    assert!(
        d.policy.admits(&alice()).is_err(),
        "deny wins over a later allow"
    );
    let d = rules.decide(&target("a.test", "/ops"));
    assert_eq!(d.label(), "rule 1");
    assert!(d.policy.admits(&alice()).is_ok());
    assert_eq!(
        rules.decide(&target("a.test", "/health")).policy.kind(),
        PolicyKind::Public
    );
    let d = rules.decide(&target("a.test", "/elsewhere"));
    assert!(d.rule.is_none());
    assert_eq!(d.policy.kind(), PolicyKind::Deny);
}

#[test]
fn prefixes_are_segment_wise() {
    assert!(path_has_prefix("/app", "/app"));
    assert!(path_has_prefix("/app/x", "/app"));
    assert!(!path_has_prefix("/apple", "/app"));
    assert!(path_has_prefix("/app/x", "/app/"));
    assert!(!path_has_prefix("/app", "/app/"));
    assert!(path_has_prefix("/anything", "/"));
}

#[test]
fn hosts_exact_and_wildcard() {
    let rules = Rules::compile(
        &[RuleSpec {
            hosts: vec!["App.Example.com".into(), "*.apps.test".into()],
            ..spec(PolicyKind::Public)
        }],
        PolicyKind::Authenticated,
    )
    .unwrap();
    let public = |h: &str| rules.decide(&target(h, "/")).rule.is_some();
    assert!(public("app.example.com"));
    assert!(public("a.apps.test"));
    assert!(public("a.b.apps.test"));
    assert!(!public("apps.test"), "the wildcard needs a label");
    assert!(!public("evilapps.test"));
    assert!(!public("app.example.com.evil"));
    assert_eq!(
        normalize_host("App.Example.COM:8443").as_deref(),
        Some("app.example.com")
    );
    assert_eq!(
        normalize_host("app.example.com.").as_deref(),
        Some("app.example.com")
    );
    assert_eq!(normalize_host("[::1]:80").as_deref(), Some("::1"));
    assert_eq!(normalize_host("[::1]").as_deref(), Some("::1"));
    for bad in [
        "app:",
        "app:?",
        "app:8o",
        "a b",
        "user@app",
        "[::1]x",
        "[nope]",
        "",
        "app:123456",
    ] {
        assert_eq!(normalize_host(bad), None, "{bad:?}");
    }
}

#[test]
fn methods_networks_and_regex() {
    let rules = Rules::compile(
        &[RuleSpec {
            path_regex: Some("^/api/v[0-9]+/".into()),
            methods: vec!["get".into()],
            networks: vec!["10.0.0.0/8".into(), "::1".into()],
            ..spec(PolicyKind::Public)
        }],
        PolicyKind::Authenticated,
    )
    .unwrap();
    let mut t = target("h", "/api/v2/items");
    assert!(rules.decide(&t).rule.is_some());
    t.method = Some("POST");
    assert!(rules.decide(&t).rule.is_none());
    t.method = None;
    assert!(
        rules.decide(&t).rule.is_none(),
        "an unknown method matches no method rule"
    );
    t.method = Some("GET");
    t.client = Some("192.168.1.1".parse().unwrap());
    assert!(rules.decide(&t).rule.is_none());
    t.client = Some("::ffff:10.9.9.9".parse().unwrap());
    assert!(
        rules.decide(&t).rule.is_some(),
        "v4-mapped addresses are v4"
    );
    t.client = None;
    assert!(rules.decide(&t).rule.is_none());
    let t = target("h", "/api/vx/items");
    assert!(rules.decide(&t).rule.is_none());
}

#[test]
fn allow_subjects_realms_and_sources() {
    let compile = |s: RuleSpec| Rules::compile(&[s], PolicyKind::Deny).unwrap();
    let r = compile(RuleSpec {
        users: vec!["bob".into()],
        groups: vec!["ops".into()],
        ..spec(PolicyKind::Allow)
    });
    let p = &r.rules[0].policy;
    let why = p.admits(&alice()).unwrap_err();
    assert!(
        why.contains("alice is not one of users [bob] or groups [ops]"),
        "{why}"
    );
    let bob = Who {
        user: "bob",
        groups: &[],
        ..alice()
    };
    assert!(p.admits(&bob).is_ok());
    let ops = ["ops".to_owned()];
    let carol = Who {
        user: "carol",
        groups: &ops,
        ..alice()
    };
    assert!(p.admits(&carol).is_ok());

    let r = compile(RuleSpec {
        sources: vec!["kerberos".into()],
        realms: vec!["web".into()],
        ..spec(PolicyKind::Allow)
    });
    let p = &r.rules[0].policy;
    assert!(p.admits(&alice()).unwrap_err().contains("source"));
    assert!(p
        .admits(&Who {
            source: "negotiate",
            ..alice()
        })
        .is_ok());
    assert!(p
        .admits(&Who {
            source: "auth/krb5",
            ..alice()
        })
        .is_ok());
    assert!(p
        .admits(&Who {
            source: "negotiate",
            realm: "other",
            ..alice()
        })
        .unwrap_err()
        .contains("realm"));
    assert_eq!(
        p.to_string(),
        "allow in realms [web] from sources [negotiate, auth/krb5]"
    );
}

#[test]
fn invalid_rules_name_index_key_and_reason() {
    let bad = |s: RuleSpec| {
        Rules::compile(&[spec(PolicyKind::Public), s], PolicyKind::Authenticated)
            .err()
            .expect("refused")
    };
    let e = bad(RuleSpec {
        path_regex: Some("(".into()),
        ..spec(PolicyKind::Public)
    });
    assert_eq!((e.index, e.key), (1, "path_regex"));
    assert!(
        e.to_string().starts_with("access.rules[1].path_regex: "),
        "{e}"
    );
    assert_eq!(bad(spec(PolicyKind::Allow)).key, "policy");
    assert_eq!(
        bad(RuleSpec {
            groups: vec!["ops".into()],
            ..spec(PolicyKind::Deny)
        })
        .key,
        "policy"
    );
    for (key, s) in [
        (
            "hosts",
            RuleSpec {
                hosts: vec!["https://a".into()],
                ..spec(PolicyKind::Public)
            },
        ),
        (
            "hosts",
            RuleSpec {
                hosts: vec!["a:80".into()],
                ..spec(PolicyKind::Public)
            },
        ),
        (
            "paths",
            RuleSpec {
                paths: vec!["app".into()],
                ..spec(PolicyKind::Public)
            },
        ),
        (
            "paths",
            RuleSpec {
                paths: vec!["/a/../b".into()],
                ..spec(PolicyKind::Public)
            },
        ),
        (
            "methods",
            RuleSpec {
                methods: vec!["G T".into()],
                ..spec(PolicyKind::Public)
            },
        ),
        (
            "networks",
            RuleSpec {
                networks: vec!["10.0.0.0/33".into()],
                ..spec(PolicyKind::Public)
            },
        ),
        (
            "groups",
            RuleSpec {
                groups: vec!["a,b".into()],
                ..spec(PolicyKind::Allow)
            },
        ),
        (
            "users",
            RuleSpec {
                users: vec!["".into()],
                ..spec(PolicyKind::Allow)
            },
        ),
    ] {
        assert_eq!(bad(s).key, key);
    }
    assert_eq!(
        Rules::compile(&[], PolicyKind::Allow).err().unwrap().key,
        "default"
    );
}

#[test]
fn paths_are_normalised_as_the_proxy_routes_them() {
    for (raw, want) in [
        ("/", "/"),
        ("/a/b?x=/admin", "/a/b"),
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/%61dmin/x", "/admin/x"),
        ("//admin", "/admin"),
        ("/a/./b/", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/public%2F..%2Fadmin", "/admin"),
    ] {
        assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
    }
    assert_eq!(normalize_path("/.."), Err(PathError::AboveRoot));
    assert_eq!(normalize_path("/a%zz"), Err(PathError::BadEscape));
    assert_eq!(normalize_path("/a%0a"), Err(PathError::NotText));
    assert_eq!(normalize_path("/a%ff"), Err(PathError::NotText));
    assert_eq!(normalize_path("a"), Err(PathError::NotAbsolute));
    for ambiguous in [
        "/public/..;/admin",
        "/public/.;x/admin",
        "/a\\..\\admin",
        "/a%5c..%5cadmin",
        "/p/..%3b/admin",
    ] {
        assert_eq!(
            normalize_path(ambiguous),
            Err(PathError::Ambiguous),
            "{ambiguous}"
        );
    }
    assert!(
        normalize_path("/a;jsessionid=1/b").is_ok(),
        "path parameters elsewhere are fine"
    );
}

#[test]
fn reported_urls_are_read_strictly() {
    let ok = |u: &str| split_url(u).unwrap();
    assert_eq!(
        ok("http://App.Test:8080/a/../b?x"),
        (Some("app.test".into()), "/b".into())
    );
    assert_eq!(
        ok("https://app.test"),
        (Some("app.test".into()), "/".into())
    );
    assert_eq!(ok("/x/./y?q"), (None, "/x/y".into()));
    // the split that once read /admin as / (`Host: app:?` in nginx's $http_host)
    assert_eq!(
        split_url("http://app-a.localhost:?/admin/"),
        Err(UrlError::BadHost)
    );
    for bad in [
        "http://u@app/",
        "http://app#x/",
        "ftp://app/",
        "app/x",
        "http://a b/",
        "http://app:/x",
    ] {
        assert!(split_url(bad).is_err(), "{bad}");
    }
}

proptest! {
    /// Normalising is idempotent and the result never holds a dot segment
    /// or an empty one: nothing left for a second decoder to reinterpret
    /// except a literal `%` the first decoded.
    #[test]
    fn normalised_paths_are_canonical(segs in proptest::collection::vec("[a-c.%/2eE]{0,4}", 0..6)) {
        let raw = format!("/{}", segs.join("/"));
        if let Ok(n) = normalize_path(&raw) {
            prop_assert!(n.starts_with('/'));
            let inner = n.trim_end_matches('/');
            prop_assert!(!inner.split('/').skip(1).any(|s| s.is_empty() || s == "." || s == ".."), "{n}");
            if !n.contains('%') {
                prop_assert_eq!(normalize_path(&n), Ok(n.clone()));
            }
        }
    }

    /// A deny rule on a prefix catches every spelling of a path under it.
    #[test]
    fn a_prefix_rule_cannot_be_walked_around(prefix in "(/x)?/[a-c]{1,3}", detour in "[a-c]{1,3}", tail in "[a-c]{0,3}") {
        let rules = Rules::compile(&[RuleSpec { paths: vec!["/admin".into()], ..spec(PolicyKind::Deny) }], PolicyKind::Public).unwrap();
        for raw in [
            format!("/admin/{tail}"),
            format!("{prefix}/../../admin/{tail}"),
            format!("/{detour}/../admin/{tail}"),
            format!("/{detour}/%2e%2e/admin/{tail}"),
            format!("//admin/{tail}"),
            format!("/./admin/{tail}"),
            format!("/%61dmin/{tail}"),
        ] {
            if let Ok(path) = normalize_path(&raw) {
                let t = Target { host: None, path: &path, method: None, client: None };
                prop_assert_eq!(rules.decide(&t).policy.kind(), PolicyKind::Deny, "{} -> {}", raw, path);
            }
        }
    }
}
