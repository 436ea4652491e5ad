//! A real nginx in front of a protected back end, with `auth_request` to
//! sessiond, configured with the README's nginx block as written (ports
//! substituted): the browser's journey through it, without a browser.

mod common;

use common::{free_port, request_to, Options, Resp, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx from the README's config, serving on `front`, with a back end on
/// `back` that echoes the user nginx passed it.
pub struct Nginx {
    pub front: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The README's nginx server block, as written.
fn readme_server_block() -> String {
    let block = common::readme_block(
        "## In front of an application (nginx, Traefik, Caddy)",
        "nginx",
    );
    assert!(
        block.contains("auth_request"),
        "README nginx block not found"
    );
    block
}

/// One application behind the proxy: its host name (`None`: any), and the
/// `location` blocks of its back end (`{www}` = a directory of files)
/// before the default one, which answers `{label}hello <user>`.
pub struct ProxiedApp<'a> {
    pub host: Option<&'a str>,
    pub label: &'a str,
    pub back_locations: &'a str,
}

impl Nginx {
    /// The back end answers `hello <user>` everywhere unless `back_locations`
    /// (nginx `location` blocks, `{www}` = a directory of files) say otherwise.
    pub fn start(sessiond: &str, back_locations: &str, files: &[(&str, &str)]) -> Option<Nginx> {
        Self::start_apps(
            sessiond,
            &[ProxiedApp {
                host: None,
                label: "",
                back_locations,
            }],
            files,
        )
    }

    /// nginx with the README's server block once per application (with
    /// `server_name` added when the app has a host), each in front of a
    /// back end of its own; on 127.0.0.1 and ::1 (browsers resolve
    /// `*.localhost` to either).
    pub fn start_apps(
        sessiond: &str,
        apps: &[ProxiedApp],
        files: &[(&str, &str)],
    ) -> Option<Nginx> {
        if !common::installed("nginx", "-v") {
            return common::missing("nginx is not installed (scripts/test.sh installs it)");
        }
        let block = readme_server_block();
        let front = free_port();
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        // workers may run as nobody
        let _ = Command::new("chmod").arg("777").arg(&tmp).status();
        let www = dir.path().join("www");
        for (path, content) in files {
            let file = www.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        let _ = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(dir.path())
            .status();
        let v6 = std::net::TcpListener::bind(("::1", front)).is_ok();
        let mut servers = String::new();
        for app in apps {
            let back = free_port();
            let mut listen = format!("listen 127.0.0.1:{front};");
            if v6 {
                listen.push_str(&format!(" listen [::1]:{front};"));
            }
            if let Some(host) = app.host {
                listen.push_str(&format!(" server_name {host};"));
            }
            let server = block
                .replace("listen 80;", &listen)
                .replace("127.0.0.1:4431", sessiond)
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{back}"))
                // one upstream block per configuration
                .replace(
                    "upstream sessiond {",
                    &format!("upstream sessiond{back} {{"),
                )
                .replace("http://sessiond", &format!("http://sessiond{back}"));
            let back_locations = app
                .back_locations
                .replace("{www}", &www.display().to_string());
            servers.push_str(&format!(
                r#"{server}
    # the protected application: shows who nginx says the user is
    server {{
        listen 127.0.0.1:{back};
{back_locations}
        location / {{
            default_type text/plain;
            return 200 "{label}hello $http_x_remote_user\n";
        }}
    }}
"#,
                label = app.label
            ));
        }
        let d = dir.path().display();
        let conf = format!(
            r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
{servers}
}}
"#,
            t = tmp.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let check = Command::new("nginx")
            .args(["-t", "-q", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", front)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx {
            front: format!("127.0.0.1:{front}"),
            child,
            _dir: dir,
        })
    }

    pub async fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        request_to(&self.front, method, target, headers, body).await
    }
}

impl Drop for Nginx {
    /// SIGTERM, not SIGKILL: the master then stops its workers, which a
    /// killed master would leave running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn nginx_auth_request_journey() {
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_BROWSER__COOKIE__SECURE", "false")
            .env("SESSIOND_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#),
    );
    let Some(nginx) = Nginx::start(&s.addr, "", &[]) else {
        return;
    };

    // not logged in: sent to the login page, with the way back
    let r = nginx
        .request("GET", "/private/page?x=1&y=2", &[], b"")
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(
        location, "/login?next=http%3A%2F%2Flocalhost%2Fprivate%2Fpage%3Fx%3D1%26y%3D2",
        "{r:?}"
    );
    let page = nginx.request("GET", &location, &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains(r#"name="next" value="http://localhost/private/page?x=1&amp;y=2""#),
        "{}",
        page.text()
    );

    // a spoofed identity header does not get through
    let r = nginx
        .request("GET", "/private/page", &[("X-Remote-User", "mallory")], b"")
        .await;
    assert_eq!(r.status, 302, "{r:?}");

    // log in through nginx, as the page's form does
    let r = nginx
        .request(
            "POST",
            "/session/login_password",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "http://localhost"),
            ],
            b"user=alice&password=alice-pw&next=http%3A%2F%2Flocalhost%2Fprivate%2Fpage%3Fx%3D1%26y%3D2",
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("http://localhost/private/page?x=1&y=2")
    );
    let cookie = r.cookie();

    // the application now sees alice, whatever the client claims
    let r = nginx
        .request(
            "GET",
            "/private/page?x=1&y=2",
            &[("Cookie", &cookie), ("X-Remote-User", "mallory")],
            b"",
        )
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "hello alice\n"),
        "{r:?}"
    );

    // the session records the browser's address, from the trusted proxy
    let who = nginx
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(who.json()["user"], "alice", "{who:?}");

    // log out: blocked again
    let r = nginx
        .request(
            "POST",
            "/session/logout",
            &[("Cookie", &cookie), ("Origin", "http://localhost")],
            b"",
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let r = nginx
        .request("GET", "/private/page", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(r.status, 302, "{r:?}");
}

/// The protected application's page: loads sessiond.js and, when a request
/// finds the session ended, logs in again as a login dialog would.
const APP_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>protected app</title>
<script src="/static/sessiond.js"></script></head>
<body><h1 id="hello">protected app</h1>
<script>
window.logins = 0;
sessiond.onLoginRequired = function () {
  window.logins += 1;
  return sessiond.login("alice", "alice-pw").then(function () { return true; });
};
</script></body></html>
"#;

/// chromedriver on a free port, for one test.
struct ChromeDriver {
    url: String,
    child: Child,
}

impl ChromeDriver {
    fn start() -> Option<ChromeDriver> {
        Self::start_with_env(&[])
    }

    /// chromedriver, and the Chromium it starts, with `env` added (a
    /// Kerberos credential cache and configuration).
    fn start_with_env(env: &[(&str, &str)]) -> Option<ChromeDriver> {
        if !common::installed("chromedriver", "--version") {
            return common::missing(
                "chromedriver is not installed (scripts/test.sh installs chromium-driver)",
            );
        }
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(ChromeDriver {
            url: format!("http://127.0.0.1:{port}"),
            child,
        })
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session through `driver`, with `args` added; its
/// profile directory lives as long as the returned guard.
async fn chromium(driver: &ChromeDriver, args: &[&str]) -> (fantoccini::Client, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    if args
        .iter()
        .any(|a| a.starts_with("--auth-server-allowlist"))
    {
        // Chromium on Linux loads GSSAPI only in a profile that has seen a
        // Negotiate challenge before (its Local State remembers it; a new
        // profile answers the first challenge as if Negotiate did not
        // exist). The test's fresh profile is one that has.
        std::fs::write(
            profile.path().join("Local State"),
            r#"{"net": {"received_http_auth_negotiate_headers": true}}"#,
        )
        .unwrap();
    }
    let mut all = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1000,800".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": "/usr/bin/chromium", "args": all}),
    );
    let c =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("chromedriver session");
    (c, profile)
}

/// Where screenshots go: `target/tmp/browser-screenshots/`.
fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until the browser is at `path`. The deadline is generous because
/// CI runs two browsers beside the rest of the suite on two cores; on
/// failure the page's text and a screenshot say where the browser got stuck.
async fn wait_for_path(c: &fantoccini::Client, path: &str) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = c.current_url().await.unwrap();
        if url.path() == path {
            return url;
        }
        if Instant::now() >= deadline {
            let text = match c.find(fantoccini::Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(e) => format!("(no body: {e})"),
            };
            if let Ok(png) = c.screenshot().await {
                let _ = std::fs::write(screenshot_dir().join("stuck.png"), &png);
            }
            panic!("still at {url}, expected {path}; the page says: {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real headless Chromium through nginx: protected page → login page →
/// log in → the page; the session is revoked behind its back, and the JS
/// helper's fetch gets 401, logs in again and retries; log out → blocked.
/// The cookie is the default one: `__Host-`, `Secure` (Chromium treats
/// http://localhost as a secure context).
#[tokio::test]
async fn chromium_through_nginx() {
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#),
    );
    let back = r#"
        location = /private/app.html { root {www}; }
        location /private/api { default_type text/plain; return 200 "hello $http_x_remote_user"; }
"#;
    let Some(nginx) = Nginx::start(&s.addr, back, &[("private/app.html", APP_PAGE)]) else {
        return;
    };
    let Some(driver) = ChromeDriver::start() else {
        return;
    };
    // a profile directory of the test's own, removed afterwards (else
    // Chromium leaves one in /tmp per run)
    let (c, _profile) = chromium(&driver, &[]).await;
    let port = nginx.front.rsplit(':').next().unwrap().to_owned();
    let base = format!("http://localhost:{port}");

    // the protected page sends the browser to the login page
    c.goto(&format!("{base}/private/app.html")).await.unwrap();
    let at = wait_for_path(&c, "/login").await;
    assert!(
        at.query().unwrap_or("").contains("next="),
        "the way back is kept: {at}"
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join("login.png"), &png).unwrap();

    // log in with the form, no script involved
    use fantoccini::Locator;
    fill_login(&c, "alice", "alice-pw").await;
    wait_for_path(&c, "/private/app.html").await;
    let title = c
        .find(Locator::Id("hello"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, "protected app");

    let cookie = c
        .get_named_cookie("__Host-sessiond")
        .await
        .expect("the session cookie, with its safe defaults");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    let token = cookie.value().to_owned();

    let fetch_api = r#"
        const done = arguments[arguments.length - 1];
        sessiond.fetch("/private/api")
          .then(r => r.text().then(t => done({status: r.status, text: t, logins: window.logins})))
          .catch(e => done({error: String(e)}));
    "#;
    let r = c.execute_async(fetch_api, vec![]).await.unwrap();
    assert_eq!(r["text"], "hello alice", "{r}");
    assert_eq!(r["logins"], 0, "{r}");

    // the session ends behind the page's back (another tab logged out, an admin)
    s.get(&format!("/revoke?realm=web&token={token}"))
        .await
        .assert_text(200, "OK\n");
    let r = c.execute_async(fetch_api, vec![]).await.unwrap();
    assert_eq!(r["status"], 200, "401, then login, then the retry: {r}");
    assert_eq!(r["text"], "hello alice", "{r}");
    assert_eq!(r["logins"], 1, "{r}");
    let renewed = c.get_named_cookie("__Host-sessiond").await.unwrap();
    assert_ne!(
        renewed.value(),
        token,
        "a new session id after the new login"
    );

    // "my sessions": the session from the form login was revoked, the one
    // from the helper's login is this one
    c.goto(&format!("{base}/session/sessions")).await.unwrap();
    wait_for_path(&c, "/session/sessions").await;
    let table = c
        .find(Locator::Css("table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(table.contains("this device"), "{table}");
    assert!(
        table.contains("Chrome 156 on Linux")
            || (table.contains("Chrome ") && table.contains(" on Linux")),
        "the device as people name it: {table}"
    );
    assert!(table.contains("just now"), "times relative too: {table}");
    let who = c
        .find(Locator::Css(".who"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(who.contains("Signed in as alice"), "{who}");
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join("sessions.png"), &png).unwrap();
    c.back().await.unwrap();
    wait_for_path(&c, "/private/app.html").await;

    // log out through the helper: the protected page is closed again
    let out = c
        .execute_async(
            "const done = arguments[0]; sessiond.logout().then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(out, 200, "{out}");
    c.goto(&format!("{base}/private/app.html")).await.unwrap();
    wait_for_path(&c, "/login").await;
    c.close().await.unwrap();
}

/// The text of the page's body.
#[cfg(feature = "kerberos")]
async fn body_text(c: &fantoccini::Client) -> String {
    // Empty while a navigation replaces the page (the element can go stale
    // between finding it and reading it); the caller polls.
    match c.find(fantoccini::Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's body contains `text`.
#[cfg(feature = "kerberos")]
async fn wait_for_text(c: &fantoccini::Client, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = body_text(c).await;
        if body.contains(text) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "at {}: {body:?} does not contain {text:?}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs in with the form of the page the browser is on.
async fn fill_login(c: &fantoccini::Client, user: &str, password: &str) {
    use fantoccini::Locator;
    for (field, text) in [("user", user), ("password", password)] {
        c.find(Locator::Id(field))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Two applications behind one nginx (the README's server block, once per
/// host) and the README's access rules; in a real headless Chromium:
///
/// * alice holds a Kerberos ticket (a real `kinit` against the test KDC)
///   and Chromium may use it for `*.localhost`: she opens app A and is let
///   in without the login page ever showing (SPNEGO on `/login`), the
///   session cookie then carries her later requests (no second Negotiate);
///   app A's `/admin` is closed by a `deny` rule that comes before the
///   `allow`; on app B (group `ops` only) she gets the "not allowed" page;
///   `/healthz` needs no session;
/// * bob's browser has no ticket: the same `/login` shows him the form (the
///   401's body), he logs in with his password, reaches app B and gets the
///   "not allowed" page on app A.
#[cfg(feature = "kerberos")]
#[tokio::test]
async fn kerberos_single_sign_on_and_access_rules_in_chromium() {
    let (Ok(krb_dir), Ok(password)) = (
        std::env::var("KRB_TEST_DIR"),
        std::env::var("KRB_TEST_PASSWORD"),
    ) else {
        common::missing::<()>(
            "the test Kerberos realm is not running (KRB_TEST_* unset; scripts/krb5-realm.sh)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap().keep();
    let cfg = common::readme_access_config(&dir);
    let s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default()
            .user_in("bob", "bob-pw", "ops")
            .args(&["-c", cfg.to_str().unwrap()])
            .env("SESSIOND_KERBEROS__NEGOTIATE", "true")
            .env(
                "SESSIOND_KERBEROS__KEYTAB",
                &format!("{krb_dir}/http.keytab"),
            )
            .env(
                "SESSIOND_SERVER__TRUSTED_PROXIES",
                r#"["127.0.0.1", "::1"]"#,
            )
            .env("SESSIOND_BROWSER__COOKIE__SECURE", "false")
    });
    let back = r#"
        location = /healthz { default_type text/plain; return 200 "ok\n"; }
        location = /groups { default_type text/plain; return 200 "groups $http_x_remote_groups\n"; }
"#;
    let apps = [
        ProxiedApp {
            host: Some("app-a.localhost"),
            label: "app A: ",
            back_locations: back,
        },
        ProxiedApp {
            host: Some("app-b.localhost"),
            label: "app B: ",
            back_locations: back,
        },
    ];
    let Some(nginx) = Nginx::start_apps(&s.addr, &apps, &[]) else {
        return;
    };
    let port = nginx.front.rsplit(':').next().unwrap().to_owned();
    let a = format!("http://app-a.localhost:{port}");
    let b = format!("http://app-b.localhost:{port}");
    let krb5_conf = format!("{krb_dir}/krb5.conf");
    // Chromium asks for HTTP/<host> (no port, no CNAME lookup) for the
    // allow-listed hosts, from the credential cache its environment names
    let kerberos_args = [
        "--auth-server-allowlist=*.localhost",
        "--disable-auth-negotiate-cname-lookup",
    ];
    let negotiations = || s.stderr().matches("Negotiate accepted").count();

    // --- alice: a Kerberos ticket, no password anywhere -------------------
    let ccache_dir = tempfile::tempdir().unwrap();
    let ccache = common::kinit(ccache_dir.path(), "alice", &password);
    let Some(driver) =
        ChromeDriver::start_with_env(&[("KRB5CCNAME", &ccache), ("KRB5_CONFIG", &krb5_conf)])
    else {
        return;
    };
    let (c, _profile) = chromium(&driver, &kerberos_args).await;
    c.goto(&format!("{a}/")).await.unwrap();
    let text = wait_for_text(&c, "app A: hello alice").await;
    assert_eq!(text.trim(), "app A: hello alice");
    let at = c.current_url().await.unwrap();
    assert_eq!(
        (at.host_str(), at.path()),
        (Some("app-a.localhost"), "/"),
        "back on the page, no login form on the way"
    );
    assert_eq!(negotiations(), 1, "{}", s.stderr());
    assert!(
        !s.stderr().contains("login rejected"),
        "no password login happened: {}",
        s.stderr()
    );
    let cookie = c
        .get_named_cookie("sessiond")
        .await
        .expect("a session cookie from the Kerberos login");
    assert_eq!(cookie.http_only(), Some(true));
    // the cookie carries the next requests: no second Kerberos exchange
    c.goto(&format!("{a}/groups")).await.unwrap();
    wait_for_text(&c, "groups dev").await;
    c.refresh().await.unwrap();
    wait_for_text(&c, "groups dev").await;
    assert_eq!(
        negotiations(),
        1,
        "the cookie, not a ticket, on later requests"
    );
    // public: no session needed (none is checked)
    c.goto(&format!("{b}/healthz")).await.unwrap();
    wait_for_text(&c, "ok").await;
    // a deny rule before app A's allow: closed even to alice
    c.goto(&format!("{a}/admin/")).await.unwrap();
    let text = wait_for_text(&c, "Not allowed").await;
    assert!(text.contains("This page is closed"), "{text}");
    // app B admits only ops: signed in by Kerberos there too, then refused
    c.goto(&format!("{b}/")).await.unwrap();
    let text = wait_for_text(&c, "Not allowed").await;
    assert!(text.contains("You are signed in as alice"), "{text}");
    assert_eq!(negotiations(), 2, "a session of its own on app B's host");
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join("not-allowed-alice.png"), &png).unwrap();
    c.close().await.unwrap();
    drop(driver);

    // --- bob: no Kerberos ticket, so the login form -----------------------
    let Some(driver) = ChromeDriver::start_with_env(&[
        ("KRB5CCNAME", "FILE:/nonexistent/ccache"),
        ("KRB5_CONFIG", &krb5_conf),
    ]) else {
        return;
    };
    let (c, _profile) = chromium(&driver, &kerberos_args).await;
    c.goto(&format!("{b}/")).await.unwrap();
    wait_for_path(&c, "/login").await;
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join("login-fallback.png"), &png).unwrap();
    fill_login(&c, "bob", "bob-pw").await;
    wait_for_text(&c, "app B: hello bob").await;
    c.goto(&format!("{b}/groups")).await.unwrap();
    wait_for_text(&c, "groups ops").await;
    c.goto(&format!("{a}/")).await.unwrap();
    wait_for_path(&c, "/login").await;
    fill_login(&c, "bob", "bob-pw").await;
    let text = wait_for_text(&c, "Not allowed").await;
    assert!(text.contains("You are signed in as bob"), "{text}");
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join("not-allowed-bob.png"), &png).unwrap();
    // the page's way out: sign out, and the app asks for a login again
    c.find(fantoccini::Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, "/login").await;
    c.close().await.unwrap();
}

/// The README's nginx block and access rules, two applications by host:
/// requests shaped to make nginx route one host while sessiond checks
/// another, or one path while the rules see another, do not get through.
#[tokio::test]
async fn access_rules_through_nginx_cannot_be_talked_around() {
    let dir = tempfile::tempdir().unwrap().keep();
    let cfg = common::readme_access_config(&dir);
    let s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default()
            .user_in("alice", "alice-pw", "dev")
            .user_in("bob", "bob-pw", "ops")
            .args(&["-c", cfg.to_str().unwrap()])
            .env(
                "SESSIOND_SERVER__TRUSTED_PROXIES",
                r#"["127.0.0.1", "::1"]"#,
            )
            .env("SESSIOND_BROWSER__COOKIE__SECURE", "false")
    });
    let apps = [
        ProxiedApp {
            host: Some("app-a.localhost"),
            label: "app A: ",
            back_locations: "",
        },
        ProxiedApp {
            host: Some("app-b.localhost"),
            label: "app B: ",
            back_locations: "",
        },
    ];
    let Some(nginx) = Nginx::start_apps(&s.addr, &apps, &[]) else {
        return;
    };
    let port = nginx.front.rsplit(':').next().unwrap().to_owned();
    let (a, b) = (
        format!("app-a.localhost:{port}"),
        format!("app-b.localhost:{port}"),
    );
    let login = |host: String, user: &'static str| {
        let nginx = &nginx;
        async move {
            let r = nginx
                .request(
                    "POST",
                    "/session/login_password",
                    &[
                        ("Host", &host),
                        ("Origin", &format!("http://{host}")),
                        ("Content-Type", "application/x-www-form-urlencoded"),
                    ],
                    format!("user={user}&password={user}-pw").as_bytes(),
                )
                .await;
            assert_eq!(r.status, 303, "{r:?}");
            r.cookie()
        }
    };
    let bob = login(b.clone(), "bob").await;
    let alice = login(a.clone(), "alice").await;
    let get = |target: &'static str, headers: Vec<(&'static str, String)>| {
        let nginx = &nginx;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            nginx.request("GET", target, &h, b"").await
        }
    };
    // the plain cases
    let r = get("/", vec![("Host", b.clone()), ("Cookie", bob.clone())]).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "app B: hello bob\n"),
        "{r:?}"
    );
    let r = get("/", vec![("Host", a.clone()), ("Cookie", alice.clone())]).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "app A: hello alice\n"),
        "{r:?}"
    );
    let r = get("/", vec![("Host", a.clone()), ("Cookie", bob.clone())]).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.text().contains("Not allowed"), "sessiond's page: {r:?}");
    let r = get(
        "/admin/",
        vec![("Host", a.clone()), ("Cookie", alice.clone())],
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");

    // nginx routes an absolute request line by its host; the rules must
    // not check the Host header's instead (bob is allowed on B, not A)
    let absolute: &'static str = Box::leak(format!("http://{a}/").into_boxed_str());
    let r = get(absolute, vec![("Host", b.clone()), ("Cookie", bob.clone())]).await;
    assert_ne!(r.status, 200, "{r:?}");
    assert!(!r.text().contains("app A"), "{r:?}");
    // a client's own X-Forwarded-Uri naming a path the rules admit
    let r = get(
        "/admin/",
        vec![
            ("Host", a.clone()),
            ("Cookie", alice.clone()),
            ("X-Forwarded-Uri", "/".into()),
        ],
    )
    .await;
    assert_ne!(r.status, 200, "{r:?}");
    // a Host whose port nginx ignores but a lenient parser would cut at
    let r = get(
        "/admin/",
        vec![
            ("Host", "app-a.localhost:?".into()),
            ("Cookie", alice.clone()),
        ],
    )
    .await;
    assert_ne!(r.status, 200, "{r:?}");
    // a path nginx routes under one prefix and Tomcat reads as another
    let r = get(
        "/x/..;/admin/",
        vec![("Host", a.clone()), ("Cookie", alice.clone())],
    )
    .await;
    assert_ne!(r.status, 200, "{r:?}");
    // and the client's own identity headers never reach the application
    let r = get(
        "/",
        vec![
            ("Host", a.clone()),
            ("Cookie", alice.clone()),
            ("X-Remote-User", "mallory".into()),
            ("X-Remote-Groups", "ops".into()),
        ],
    )
    .await;
    assert_eq!(r.text(), "app A: hello alice\n", "{r:?}");
}
