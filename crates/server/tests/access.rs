//! Who may reach what, against the real binary: groups in every view of a
//! session, access rules on `GET /auth` (first match, public, deny, allow,
//! 403 page or JSON, paths that try to walk around a rule), the per-location
//! parameters, `check-access`, invalid rules refused at start, and the
//! README's "Who may reach what" section run as written.

mod common;

use common::{Options, Resp, Server, BIN};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const SAME_ORIGIN: (&str, &str) = ("Origin", "http://localhost");

use common::{readme_access_config, readme_block};

/// A server with the README's rules and alice (dev), bob (ops).
fn server(extra: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    let cfg = readme_access_config(&dir);
    let mut o = Options {
        dir: Some(dir),
        ..Options::default()
    }
    .user_in("alice", "alice-pw", "dev")
    .user_in("bob", "bob-pw", "ops,web-admins")
    .user("carol", "carol-pw")
    .env("SESSIOND_BROWSER__COOKIE__SECURE", "false")
    .args(&["-c", cfg.to_str().unwrap()]);
    for (k, v) in extra {
        o = o.env(k, v);
    }
    Server::start(o)
}

async fn login(s: &Server, user: &str) -> String {
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[FORM, SAME_ORIGIN],
            format!("user={user}&password={user}-pw").as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    r.cookie()
}

async fn auth(s: &Server, cookie: Option<&str>, url: &str, extra: &[(&str, &str)]) -> Resp {
    let mut h = vec![("X-Original-URL", url)];
    if let Some(c) = cookie {
        h.push(("Cookie", c));
    }
    h.extend_from_slice(extra);
    s.request("GET", "/auth", &h, b"").await
}

#[tokio::test]
async fn groups_show_in_whoami_validate_and_headers() {
    let s = server(&[]);
    let cookie = login(&s, "bob").await;
    let who = s
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(
        who.json()["groups"],
        serde_json::json!(["ops", "web-admins"]),
        "{who:?}"
    );
    let r = auth(&s, Some(&cookie), "http://app-b.localhost/x", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-remote-user"), Some("bob"));
    assert_eq!(r.header("x-remote-groups"), Some("ops,web-admins"));
    assert_eq!(r.header("x-sessiond-rule"), Some("app B"));

    // /v1: the same groups; the text protocol does not change
    let login = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "api", "user": "alice", "password": "alice-pw"}),
        )
        .await;
    let token = login.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(login.json()["groups"], serde_json::json!(["dev"]));
    let v = s
        .post_json(
            "/v1/validate",
            serde_json::json!({"realm": "api", "token": token}),
        )
        .await;
    assert_eq!(
        v.json()["session"]["groups"],
        serde_json::json!(["dev"]),
        "{v:?}"
    );
    s.get(&format!("/valid?realm=api&token={token}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    // a user without groups: an empty header, which a proxy's
    // `proxy_set_header X-Remote-Groups $groups` turns into no header, so a
    // client's own X-Remote-Groups never passes
    let carol = login_as(&s, "carol").await;
    let r = s
        .request(
            "GET",
            "/auth",
            &[
                ("Cookie", &carol),
                ("X-Original-URL", "http://app-b.localhost/"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 403, "default deny for carol's groups: {r:?}");
}

async fn login_as(s: &Server, user: &str) -> String {
    login(s, user).await
}

#[tokio::test]
async fn rules_decide_first_match_public_deny_allow() {
    let s = server(&[]);
    let alice = login(&s, "alice").await;
    let bob = login(&s, "bob").await;
    // alice (dev) reaches app A, not app B; bob the reverse
    assert_eq!(
        auth(&s, Some(&alice), "http://app-a.localhost/", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        auth(&s, Some(&alice), "http://app-b.localhost/", &[])
            .await
            .status,
        403
    );
    assert_eq!(
        auth(&s, Some(&bob), "http://app-b.localhost/x?y=1", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        auth(&s, Some(&bob), "http://app-a.localhost/", &[])
            .await
            .status,
        403
    );
    // a deny rule wins over the later allow, for everyone, session or not
    let r = auth(&s, Some(&alice), "http://app-a.localhost/admin/users", &[]).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-sessiond-rule"), Some("app A admin"));
    assert_eq!(
        auth(&s, None, "http://app-a.localhost/admin", &[])
            .await
            .status,
        403
    );
    // but /administrator is not under /admin
    assert_eq!(
        auth(
            &s,
            Some(&alice),
            "http://app-a.localhost/administrator",
            &[]
        )
        .await
        .status,
        200
    );
    // public: no session needed, and no identity passed on even with one
    let r = auth(&s, None, "http://app-b.localhost/healthz", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-remote-user"), None);
    // no session where one is needed: 401 and the login hint, as before
    let r = auth(&s, None, "http://app-a.localhost/page", &[]).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.header("x-sessiond-login").unwrap().contains("next="),
        "{r:?}"
    );
    // the default: a host no rule names is closed
    let r = auth(&s, Some(&alice), "http://other.localhost/", &[]).await;
    assert_eq!(
        (r.status, r.header("x-sessiond-rule")),
        (403, Some("default"))
    );
    // Traefik and Caddy's headers instead of X-Original-URL, host from them
    let r = s
        .request(
            "GET",
            "/auth",
            &[
                ("Cookie", &bob),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app-b.localhost"),
                ("X-Forwarded-Uri", "/reports"),
                ("X-Forwarded-Method", "POST"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// The path the proxy routes is the path rules see: dot segments, doubled
/// slashes and %-escapes cannot carry a request past a deny rule or into
/// a public one.
#[tokio::test]
async fn paths_cannot_walk_around_rules() {
    let s = server(&[]);
    let alice = login(&s, "alice").await;
    for url in [
        "http://app-a.localhost/x/../admin/",
        "http://app-a.localhost/%61dmin",
        "http://app-a.localhost//admin",
        "http://app-a.localhost/./admin",
        "http://app-a.localhost/x/%2e%2e/admin",
        "http://APP-A.localhost:8443/admin",
    ] {
        let r = auth(&s, Some(&alice), url, &[]).await;
        assert_eq!(r.status, 403, "{url}: {r:?}");
    }
    // a public path is public only as routed: healthz/../ is the root
    let r = auth(&s, None, "http://app-a.localhost/healthz/../secret", &[]).await;
    assert_eq!(r.status, 401, "{r:?}");
    for url in ["http://app-a.localhost/..", "http://app-a.localhost/a%zz"] {
        let r = auth(&s, Some(&alice), url, &[]).await;
        assert_eq!(r.status, 400, "{url}: {r:?}");
        assert!(r.text().contains("X-Original-URL: the path"), "{r:?}");
    }
    // ambiguous segments some back ends read as `..`, and URLs that cannot
    // be read strictly (`Host: app:?` once made nginx report /admin as /)
    for url in [
        "http://app-a.localhost/x/..;/admin/",
        "http://app-a.localhost/x\\..\\admin",
        "http://app-a.localhost:?/admin/",
        "http://evil@app-a.localhost/admin/",
    ] {
        let r = auth(&s, Some(&alice), url, &[]).await;
        assert_eq!(r.status, 400, "{url}: {r:?}");
    }
    // the two families of forwarded headers must agree: each proxy sets one
    // and passes the other from the client
    for (extra, what) in [
        (("X-Forwarded-Uri", "/"), "X-Forwarded-Uri"),
        (("X-Forwarded-Host", "app-b.localhost"), "X-Forwarded-Host"),
    ] {
        let r = auth(&s, Some(&alice), "http://app-a.localhost/admin/", &[extra]).await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(
            r.text().contains(what) && r.text().contains("disagree"),
            "{r:?}"
        );
    }
    let r = auth(
        &s,
        Some(&alice),
        "http://app-a.localhost/x",
        &[
            ("X-Original-Method", "DELETE"),
            ("X-Forwarded-Method", "GET"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    // agreeing families are fine (a proxy that sets both)
    let r = auth(
        &s,
        Some(&alice),
        "http://app-a.localhost:8080/x",
        &[
            ("X-Forwarded-Uri", "/x"),
            ("X-Forwarded-Host", "app-a.localhost"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    // with rules, a proxy that passes no URL gets a clear 400
    let r = s.request("GET", "/auth", &[("Cookie", &alice)], b"").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text().contains("X-Original-URL"), "{r:?}");
}

#[tokio::test]
async fn refusals_are_403_pages_for_browsers_and_json_for_scripts() {
    let s = server(&[]);
    let alice = login(&s, "alice").await;
    let page = auth(
        &s,
        Some(&alice),
        "http://app-b.localhost/",
        &[("Accept", "text/html,application/xhtml+xml")],
    )
    .await;
    assert_eq!(page.status, 403);
    assert_eq!(page.header("x-sessiond-reason"), Some("not_allowed"));
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{page:?}"
    );
    let html = page.text();
    assert!(html.contains("<h1>Not allowed</h1>"), "{html}");
    assert!(
        html.contains("signed in as <strong>alice</strong>"),
        "{html}"
    );
    assert!(
        html.contains(r#"action="/session/logout""#),
        "a way to switch accounts: {html}"
    );
    assert!(
        !html.contains("app B"),
        "rule names are for operators: {html}"
    );
    let xhr = auth(
        &s,
        Some(&alice),
        "http://app-b.localhost/",
        &[("X-Requested-With", "XMLHttpRequest")],
    )
    .await;
    assert_eq!(xhr.status, 403);
    assert_eq!(xhr.json()["error"], "not_allowed");
    assert_eq!(xhr.json()["message"], "alice may not open this page");
    // the refusal is logged with the rule and the reason
    assert!(
        s.stderr().contains("alice is not one of groups [ops]"),
        "{}",
        s.stderr()
    );
}

#[tokio::test]
async fn per_location_parameters_narrow_further() {
    let s = server(&[]);
    let alice = login(&s, "alice").await;
    let bob = login(&s, "bob").await;
    let go = |query: &'static str, cookie: &str| {
        let cookie = cookie.to_owned();
        let s = &s;
        async move {
            s.request(
                "GET",
                &format!("/auth?{query}"),
                &[
                    ("Cookie", &cookie),
                    ("X-Original-URL", "http://app-a.localhost/"),
                ],
                b"",
            )
            .await
        }
    };
    assert_eq!(go("allowed_groups=dev", &alice).await.status, 200);
    assert_eq!(go("allowed_groups=qa,admins", &alice).await.status, 403);
    assert_eq!(
        go("allowed_groups=qa&allowed_users=alice", &alice)
            .await
            .status,
        200
    );
    // the rules still apply: bob may not reach app A whatever the location says
    assert_eq!(go("allowed_users=bob", &bob).await.status, 403);
    let bad = go("allowed_groups=a%0Ab", &alice).await;
    assert_eq!(bad.status, 400, "{bad:?}");
}

#[tokio::test]
async fn tickets_carry_groups_as_tokens() {
    let dir = tempfile::tempdir().unwrap().keep();
    let secret = "0123456789abcdef0123456789abcdef";
    std::fs::write(dir.join("secrets"), format!("{secret}\n")).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[browser.cookie]\nsecure = false\n\
             [realms.web.ticket]\nsecrets_file = {:?}\ncookie_secure = false\nwith_session = false\n\
             [[access.rules]]\nhosts = [\"ops.localhost\"]\npolicy = \"allow\"\ngroups = [\"ops\"]\n",
            dir.join("secrets")
        ),
    )
    .unwrap();
    let s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default()
            .user_in("bob", "bob-pw", "ops")
            .user_in("alice", "alice-pw", "dev")
            .args(&["-c", cfg.to_str().unwrap()])
    });
    let ticket_of = |r: &Resp| {
        r.header_all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("auth_tkt="))
            .unwrap_or_else(|| panic!("{r:?}"))
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[FORM, SAME_ORIGIN],
            b"user=bob&password=bob-pw",
        )
        .await;
    let bob = ticket_of(&r);
    // the ticket names the groups as tokens, which mod_auth_tkt checks too
    let out = std::process::Command::new(BIN)
        .args(["ticket", "verify", "--realm", "web", "-c"])
        .arg(&cfg)
        .arg(bob.split_once('=').unwrap().1.trim_matches('"'))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(r#""tokens":["ops"]"#), "{shown} {out:?}");
    let r = auth(&s, Some(&bob), "http://ops.localhost/", &[]).await;
    assert_eq!(
        (r.status, r.header("x-remote-groups")),
        (200, Some("ops")),
        "{r:?}"
    );
    assert_eq!(r.header("x-auth-source"), Some("ticket"));
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[FORM, SAME_ORIGIN],
            b"user=alice&password=alice-pw",
        )
        .await;
    let alice = ticket_of(&r);
    assert_eq!(
        auth(&s, Some(&alice), "http://ops.localhost/", &[])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn invalid_rules_stop_the_start_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (rules, expect) in [
        (
            "[[access.rules]]\npath_regex = \"(\"\npolicy = \"public\"",
            "access.rules[0].path_regex: regex parse error",
        ),
        (
            "[[access.rules]]\npolicy = \"public\"\n[[access.rules]]\npolicy = \"allow\"",
            "access.rules[1].policy: allow needs users, groups",
        ),
        (
            "[[access.rules]]\nnetworks = [\"10.0.0.0/40\"]\npolicy = \"deny\"",
            "access.rules[0].networks",
        ),
        (
            "[[access.rules]]\nhosts = [\"http://x\"]\npolicy = \"deny\"",
            "access.rules[0].hosts",
        ),
        ("[[access.rules]]\npolicy = \"maybe\"", "access.rules"),
        ("[access]\ndefault = \"allow\"", "access.rules[0].default"),
    ] {
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, rules).unwrap();
        let err = Server::try_start(Options::default().args(&["-c", cfg.to_str().unwrap()]))
            .err()
            .unwrap_or_else(|| panic!("started with {rules:?}"));
        assert!(err.contains(expect), "{rules:?}: {err}");
        assert!(err.contains("bad.toml"), "the file is named: {err}");
    }
}

#[tokio::test]
async fn check_access_says_which_rule_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = readme_access_config(dir.path());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .arg("check-access")
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = run(&[
        "--user",
        "alice",
        "--groups",
        "dev",
        "http://app-b.localhost/x",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("decided by rule 3 (app B): host app-b.localhost"),
        "{text}"
    );
    assert!(text.contains("policy: allow groups [ops]"), "{text}");
    assert!(
        text.contains("REFUSED: alice gets 403: alice is not one of groups [ops] (groups: [dev])"),
        "{text}"
    );
    let (code, text) = run(&[
        "--user",
        "alice",
        "--groups",
        "dev",
        "http://app-a.localhost/x",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ALLOWED"), "{text}");
    let (code, text) = run(&["http://app-a.localhost/healthz"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("rule 0 (health checks)") && text.contains("public"),
        "{text}"
    );
    let (code, text) = run(&["--user", "alice", "http://nowhere.localhost/"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the default policy"), "{text}");
    let (code, text) = run(&["http://app-a.localhost/a/../admin"]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("path /admin") && text.contains("app A admin"),
        "{text}"
    );
}

/// The README's "Who may reach what" commands, as written.
#[tokio::test]
async fn readme_access_section_works_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    readme_access_config(tmp.path());
    let port = common::free_port().to_string();
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{}",
        readme_block("## Who may reach what", "sh")
            .replace("./target/release/sessiond", BIN)
            .replace("4431", &port)
    );
    let stdout = common::run_bash(&script, tmp.path(), &[("SESSIOND_LOG", "warn")]);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.contains("is listening on"))
        .collect();
    assert_eq!(
        lines,
        [
            "added user alice to access-passwd",
            "added user bob to access-passwd",
            "GET http://app-b.localhost/ (host app-b.localhost, path /)",
            "decided by rule 3 (app B): host app-b.localhost",
            "policy: allow groups [ops]",
            "ALLOWED: bob is let in",
            "200",
            "403",
            "403",
            "200",
        ],
        "{stdout}"
    );
}
