//! Browser sessions against the real binary: login form and JSON login,
//! cookie attributes, fixation, CSRF, open redirects, whoami, logout, forward
//! auth, the login page and the JS helper.

mod common;

use common::{Options, Resp, Server};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const SAME_ORIGIN: (&str, &str) = ("Origin", "http://localhost");
const XHR: (&str, &str) = ("X-Requested-With", "XMLHttpRequest");

fn server(extra: &[(&str, &str)]) -> Server {
    let mut o = Options::default()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .env("SESSIOND_BROWSER__COOKIE__SECURE", "false");
    for (k, v) in extra {
        o = o.env(k, v);
    }
    Server::start(o)
}

/// The `name=value` part of the response's Set-Cookie, and the whole header.
fn set_cookie(r: &Resp) -> (String, String) {
    let full = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {r:?}"))
        .to_owned();
    (full.split(';').next().unwrap().to_owned(), full)
}

async fn login(s: &Server, body: &str, headers: &[(&str, &str)]) -> Resp {
    let mut h = vec![FORM, SAME_ORIGIN];
    h.extend_from_slice(headers);
    s.request("POST", "/session/login_password", &h, body.as_bytes())
        .await
}

#[tokio::test]
async fn form_login_sets_a_fresh_cookie_and_redirects_to_next() {
    let s = server(&[]);
    let r = login(&s, "user=alice&password=alice-pw&next=%2Fapp%3Fx%3D1", &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/app?x=1"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (cookie, full) = set_cookie(&r);
    assert!(cookie.starts_with("sessiond="), "{full}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(full.contains(attr), "{attr} missing: {full}");
    }
    assert!(
        !full.contains("Max-Age"),
        "a browser-session cookie: {full}"
    );
    assert!(full.len() < 200, "the cookie holds the token only: {full}");
    assert!(
        !full.contains("Secure"),
        "configured off for loopback: {full}"
    );

    // whoami with the cookie
    let who = s
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    let j = who.json();
    assert_eq!(
        (j["user"].as_str(), j["realm"].as_str()),
        (Some("alice"), Some("web"))
    );
    assert_eq!(j["source"], "auth/file");
    let ends = j["expires_at"].as_i64().expect("browser sessions end");
    assert!(
        ends - j["created"].as_i64().unwrap() <= 30 * 60,
        "idle limit: {j}"
    );

    // a second login: a new session id (no fixation), and the first one
    // lives on (browser realms do not supersede: one user, many devices)
    let again = login(&s, "user=alice&password=alice-pw", &[("Cookie", &cookie)]).await;
    let (second, _) = set_cookie(&again);
    assert_ne!(second, cookie);
    assert_eq!(again.header("location"), Some("/"));
    for c in [&cookie, &second] {
        let r = s
            .request("GET", "/session/whoami", &[("Cookie", c)], b"")
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
}

#[tokio::test]
async fn secure_cookies_by_default_and_plain_http_only_on_loopback() {
    let s = Server::start(Options::default().user("alice", "alice-pw"));
    let r = login(&s, "user=alice&password=alice-pw", &[]).await;
    let (cookie, full) = set_cookie(&r);
    assert!(cookie.starts_with("__Host-sessiond="), "{full}");
    assert!(
        full.contains("Secure") && !full.contains("Domain"),
        "{full}"
    );

    let refused = Server::try_start(
        Options::default()
            .args(&["-l", "0.0.0.0"])
            .env("SESSIOND_BROWSER__COOKIE__SECURE", "false"),
    );
    let err = refused.err().expect("insecure cookies on a public address");
    assert!(err.contains("browser.cookie.secure = false"), "{err}");
}

#[tokio::test]
async fn json_login_failures_and_the_reason_header() {
    let s = server(&[]);
    let r = login(&s, "user=alice&password=alice-pw", &[XHR]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["user"], "alice");
    assert!(r.header("set-cookie").is_some());

    let bad = login(&s, "user=alice&password=nope", &[XHR]).await;
    assert_eq!(bad.status, 401, "{bad:?}");
    assert_eq!(bad.json()["error"], "authentication_failed");
    assert!(bad.header("set-cookie").is_none());

    // a form post that fails shows the page again, with the reason and next kept
    let bad = login(&s, "user=alice&password=nope&next=%2Fdeep", &[]).await;
    assert_eq!(bad.status, 401);
    let html = bad.text();
    assert!(html.contains("wrong user name or password"), "{html}");
    assert!(html.contains(r#"name="next" value="/deep""#), "{html}");

    let missing = login(&s, "user=alice", &[XHR]).await;
    assert_eq!(missing.status, 400, "{missing:?}");

    let anon = s.get("/session/whoami").await;
    assert_eq!(anon.status, 401);
    assert_eq!(anon.header("x-sessiond-reason"), Some("login-required"));
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_next_cannot_leave_the_site() {
    let s = server(&[(
        "SESSIOND_BROWSER__ALLOWED_ORIGINS",
        r#"["https://app.example.com"]"#,
    )]);
    let body = b"user=alice&password=alice-pw";
    for headers in [
        vec![FORM, ("Origin", "https://evil.example")],
        vec![FORM, ("Origin", "null")],
        vec![FORM, ("Referer", "https://evil.example/page")],
        vec![FORM, ("Sec-Fetch-Site", "cross-site")],
    ] {
        let r = s
            .request("POST", "/session/login_password", &headers, body)
            .await;
        assert_eq!(r.status, 403, "{headers:?}: {r:?}");
        assert!(r.text().contains("cross-site request refused"), "{r:?}");
        assert!(r.header("set-cookie").is_none());
    }
    // an allowed origin, a same-origin Referer, and a non-browser client pass
    for headers in [
        vec![FORM, ("Origin", "https://app.example.com")],
        vec![FORM, ("Referer", "http://localhost/login")],
        vec![FORM],
    ] {
        let r = s
            .request("POST", "/session/login_password", &headers, body)
            .await;
        assert_eq!(r.status, 303, "{headers:?}: {r:?}");
    }
    // logout is protected the same way
    let r = s
        .request(
            "POST",
            "/session/logout",
            &[("Origin", "https://evil.example")],
            b"",
        )
        .await;
    assert_eq!(r.status, 403);

    for (next, expected) in [
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("https://app.example.com/ok", "https://app.example.com/ok"),
        ("http://localhost/here", "http://localhost/here"),
        ("/here?a=b", "/here?a=b"),
    ] {
        let body = format!(
            "user=alice&password=alice-pw&next={}",
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        );
        let r = login(&s, &body, &[]).await;
        assert_eq!(r.header("location"), Some(expected), "next={next}");
    }
}

#[tokio::test]
async fn logout_ends_the_session_everywhere_and_clears_the_cookie() {
    let s = server(&[]);
    let (cookie, _) = set_cookie(&login(&s, "user=alice&password=alice-pw", &[]).await);
    let token = cookie.split_once('=').unwrap().1.to_owned();
    s.get(&format!("/valid?realm=web&token={token}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    let r = s
        .request(
            "POST",
            "/session/logout",
            &[SAME_ORIGIN, ("Cookie", &cookie)],
            b"",
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/login"));
    let (_, cleared) = set_cookie(&r);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    s.get(&format!("/valid?realm=web&token={token}"))
        .await
        .assert_text(200, "NO\n");
    let who = s
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(who.status, 401);
}

#[tokio::test]
async fn forward_auth_answers_identity_or_where_to_log_in() {
    let s = server(&[("SESSIOND_BROWSER__USER_HEADER", "Remote-User")]);
    let (cookie, _) = set_cookie(&login(&s, "user=alice&password=alice-pw", &[]).await);
    let ok = s.request("GET", "/auth", &[("Cookie", &cookie)], b"").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("remote-user"), Some("alice"));
    assert_eq!(ok.header("x-remote-realm"), Some("web"));
    assert_eq!(ok.header("x-auth-source"), Some("auth/file"));
    assert!(ok.body.is_empty());
    let mut names: Vec<&str> = ok.headers.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cache-control",
            "connection",
            "content-length",
            "date",
            "remote-user",
            "server",
            "x-auth-source",
            "x-remote-groups",
            "x-remote-realm",
            "x-request-id"
        ],
        "nothing else leaks"
    );

    let anon = s
        .request(
            "GET",
            "/auth",
            &[("X-Original-URL", "https://app.example.com/private?q=1")],
            b"",
        )
        .await;
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.header("x-sessiond-login"),
        Some("/login?next=https%3A%2F%2Fapp%2Eexample%2Ecom%2Fprivate%3Fq%3D1")
    );
    let traefik = s
        .request(
            "GET",
            "/auth?redirect=1",
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-Uri", "/private"),
            ],
            b"",
        )
        .await;
    assert_eq!(traefik.status, 302);
    assert_eq!(
        traefik.header("location"),
        Some("/login?next=https%3A%2F%2Fapp%2Eexample%2Ecom%2Fprivate")
    );
    // a token of another realm is not a session of this one
    let other = s
        .request("GET", "/auth?realm=intranet", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(other.status, 401);
}

#[tokio::test]
async fn remember_me_makes_a_persistent_cookie_with_its_own_limits() {
    let s = server(&[(
        "SESSIOND_BROWSER__REMEMBER_ME",
        r#"{idle_timeout="7d", max_lifetime="30d"}"#,
    )]);
    let page = s.get("/login").await.text();
    assert!(page.contains(r#"name="remember""#), "{page}");
    let r = login(&s, "user=alice&password=alice-pw&remember=1", &[]).await;
    let (cookie, full) = set_cookie(&r);
    let max_age: u64 = full
        .split(';')
        .find_map(|p| p.trim().strip_prefix("Max-Age="))
        .expect("a persistent cookie")
        .parse()
        .unwrap();
    assert!((30 * 86400 - 5..=30 * 86400).contains(&max_age), "{full}");
    let who = s
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await
        .json();
    let idle_end = who["expires_at"].as_i64().unwrap() - who["last_access"].as_i64().unwrap();
    assert_eq!(idle_end, 7 * 86400, "{who}");
    // without the box: a browser-session cookie
    let (_, plain) = set_cookie(&login(&s, "user=alice&password=alice-pw", &[]).await);
    assert!(!plain.contains("Max-Age"), "{plain}");
}

#[tokio::test]
async fn login_page_and_helper() {
    let s = server(&[]);
    let r = s
        .get("/login?next=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    let html = r.text();
    assert!(
        html.contains(r#"<form class="primary" method="post" action="/session/login_password">"#)
    );
    assert!(html.contains(r#"<label for="user">"#) && html.contains(r#"<label for="password">"#));
    assert!(
        !html.contains("<script"),
        "no script in the page, escaped next: {html}"
    );
    assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external assets"
    );
    assert!(
        !html.contains(r#"name="remember""#),
        "no remember-me unless configured"
    );

    let js = s.get("/static/sessiond.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.text().contains("x-sessiond-reason"));
}

#[tokio::test]
async fn my_sessions_page_lists_and_ends_sessions() {
    let s = server(&[]);
    let mut cookies = Vec::new();
    for device in ["Phone/1.0", "Laptop/2.0", "Tablet <3>"] {
        let r = login(
            &s,
            "user=alice&password=alice-pw",
            &[("User-Agent", device)],
        )
        .await;
        cookies.push(set_cookie(&r).0);
    }
    let (phone, laptop, tablet) = (&cookies[0], &cookies[1], &cookies[2]);
    let id_of = |cookie: &str| {
        sessiond_core::Token::from_client(cookie.split_once('=').unwrap().1)
            .hash()
            .to_hex()
    };

    // not logged in: to the login page, and back here afterwards
    let r = s.get("/session/sessions").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fsession%2Fsessions")
    );

    let page = s
        .request("GET", "/session/sessions", &[("Cookie", laptop)], b"")
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    let html = page.text();
    for shown in [
        "Phone/1.0",
        "Laptop/2.0",
        "Tablet &lt;3&gt;",
        "127.0.0.1",
        "this device",
        "End all other sessions (2)",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    assert_eq!(html.matches("this device").count(), 1);
    assert!(!html.contains(&laptop[9..]), "no token in the page");

    let json = s
        .request("GET", "/session/sessions", &[("Cookie", laptop), XHR], b"")
        .await
        .json();
    let list = json["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{json}");
    let mine: Vec<_> = list.iter().filter(|e| e["this_session"] == true).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["device"], "Laptop/2.0");

    // end the phone's session from the laptop
    let form = format!("id={}", id_of(phone));
    let r = s
        .request(
            "POST",
            "/session/sessions/end",
            &[FORM, SAME_ORIGIN, ("Cookie", laptop)],
            form.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/session/sessions"));
    let who = |c: &str| {
        let c = c.to_owned();
        let s = &s;
        async move {
            s.request("GET", "/session/whoami", &[("Cookie", &c)], b"")
                .await
                .status
        }
    };
    assert_eq!(who(phone).await, 401);
    assert_eq!(who(tablet).await, 200);

    // someone else's session id is not ours to end
    let bob = set_cookie(&login(&s, "user=bob&password=bob-pw", &[]).await).0;
    let form = format!("id={}", id_of(&bob));
    let r = s
        .request(
            "POST",
            "/session/sessions/end",
            &[FORM, SAME_ORIGIN, ("Cookie", laptop), XHR],
            form.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(who(&bob).await, 200);

    // a cross-site form cannot end sessions
    let r = s
        .request(
            "POST",
            "/session/sessions/end_others",
            &[("Origin", "https://evil.example"), ("Cookie", laptop)],
            b"",
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(who(tablet).await, 200);

    // all but this one
    let r = s
        .request(
            "POST",
            "/session/sessions/end_others",
            &[SAME_ORIGIN, ("Cookie", laptop), XHR],
            b"",
        )
        .await;
    assert_eq!(r.json()["ended"], 1, "{r:?}");
    assert_eq!(who(tablet).await, 401);
    assert_eq!(who(laptop).await, 200);
    assert_eq!(who(&bob).await, 200);
}

/// Background polling (`?passive=1`, `X-Sessiond-Passive: 1`) does not count
/// as activity: last access stays; a normal check moves it. (The expiry
/// consequences are in the store conformance suite, on a controlled clock.)
#[tokio::test]
async fn passive_checks_do_not_count_as_activity() {
    let s = server(&[
        ("SESSIOND_STORE__TOUCH_INTERVAL", "1s"),
        ("SESSIOND_REALMS__WEB__IDLE_TIMEOUT", "1h"),
        ("SESSIOND_REALMS__WEB__SUPERSEDE", "false"),
    ]);
    let (cookie, _) = set_cookie(&login(&s, "user=alice&password=alice-pw", &[]).await);
    let last_access = |target: &'static str, headers: Vec<(&'static str, String)>| {
        let s = &s;
        let cookie = cookie.clone();
        async move {
            let mut h: Vec<(&str, &str)> = vec![("Cookie", &cookie)];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            let r = s.request("GET", target, &h, b"").await;
            assert_eq!(r.status, 200, "{r:?}");
            s.request(
                "GET",
                "/session/whoami?passive=1",
                &[("Cookie", &cookie)],
                b"",
            )
            .await
            .json()["last_access"]
                .as_i64()
                .unwrap()
        }
    };
    let created = last_access("/session/whoami?passive=1", vec![]).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        last_access("/session/whoami?passive=1", vec![]).await,
        created
    );
    assert_eq!(last_access("/auth?passive=1", vec![]).await, created);
    assert_eq!(
        last_access("/auth", vec![("X-Sessiond-Passive", "1".into())]).await,
        created
    );
    assert!(
        last_access("/auth", vec![]).await >= created + 2,
        "an active check moves it"
    );
}

/// A realm's own cookie table: its name and SameSite; sessions of one realm
/// are not sessions of another.
#[tokio::test]
async fn cookie_attributes_per_realm() {
    let s = server(&[(
        "SESSIOND_REALMS__INTRANET__COOKIE",
        r#"{name="intra", secure=true, same_site="strict"}"#,
    )]);
    let r = login(&s, "user=alice&password=alice-pw&realm=intranet", &[]).await;
    let (cookie, full) = set_cookie(&r);
    assert!(cookie.starts_with("__Host-intra="), "{full}");
    assert!(
        full.contains("SameSite=Strict") && full.contains("Secure"),
        "{full}"
    );
    let who = s
        .request(
            "GET",
            "/session/whoami?realm=intranet",
            &[("Cookie", &cookie)],
            b"",
        )
        .await;
    assert_eq!(who.json()["realm"], "intranet", "{who:?}");
    // the default realm's cookie name is a different one
    let web = s
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(web.status, 401);
}
