//! A real Caddy in front of a protected back end with `forward_auth` to
//! sessiond, configured with the README's Caddy block as written (address
//! and ports substituted).

mod common;

use common::{free_port, request_to, Options, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Caddy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_caddy(sessiond: &str, front: u16, back: u16) -> Option<Caddy> {
    if !common::installed("caddy", "version") {
        return common::missing("caddy is not installed (scripts/test.sh installs it)");
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .lines()
        .skip_while(|l| *l != "```caddy")
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        block.contains("forward_auth"),
        "README Caddy block not found"
    );
    let site = block
        .replace("app.example.com", &format!("http://localhost:{front}"))
        .replace("127.0.0.1:4431", sessiond)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{back}"));
    let dir = tempfile::tempdir().unwrap();
    let caddyfile = format!(
        "{{\n    admin off\n    auto_https off\n    storage file_system {}\n}}\n\n{site}\n\n\
         # the protected application: shows who Caddy says the user is\n\
         http://:{back} {{\n    bind 127.0.0.1\n    respond \"hello {{header.X-Remote-User}}{{header.X-Remote-Groups}}\"\n}}\n",
        dir.path().join("data").display()
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, caddyfile).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("caddy.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", front)).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", back)).is_err()
    {
        assert!(
            Instant::now() < deadline,
            "caddy did not start: {}",
            std::fs::read_to_string(dir.path().join("caddy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Caddy { child, _dir: dir })
}

#[tokio::test]
async fn caddy_forward_auth_journey() {
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_BROWSER__COOKIE__SECURE", "false"),
    );
    let (front, back) = (free_port(), free_port());
    let Some(_caddy) = start_caddy(&s.addr, front, back) else {
        return;
    };
    let addr = format!("127.0.0.1:{front}");
    let host = format!("localhost:{front}");
    let get = |target: &'static str, cookie: Option<String>| {
        let (addr, host) = (addr.clone(), host.clone());
        async move {
            let mut h = vec![("Host", host.as_str())];
            let c;
            if let Some(cookie) = cookie {
                c = cookie;
                h.push(("Cookie", c.as_str()));
            }
            request_to(&addr, "GET", target, &h, b"").await
        }
    };

    // not logged in: Caddy relays sessiond's redirect to the login page
    let r = get("/private", None).await;
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(
        location,
        format!("/login?next=http%3A%2F%2Flocalhost%3A{front}%2Fprivate"),
        "{r:?}"
    );
    let page = request_to(&addr, "GET", &location, &[("Host", &host)], b"").await;
    assert_eq!(page.status, 200, "{page:?}");

    // log in through Caddy
    let origin = format!("http://localhost:{front}");
    let body =
        format!("user=alice&password=alice-pw&next=http%3A%2F%2Flocalhost%3A{front}%2Fprivate");
    let r = request_to(
        &addr,
        "POST",
        "/session/login_password",
        &[
            ("Host", &host),
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(format!("http://localhost:{front}/private").as_str())
    );
    let cookie = r.cookie();
    let r = get("/private", Some(cookie.clone())).await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello alice"), "{r:?}");

    // a client's own X-Remote-User is replaced by sessiond's answer, and
    // its own X-Remote-Groups does not pass for a user without groups
    let r = request_to(
        &addr,
        "GET",
        "/private",
        &[
            ("Host", &host),
            ("Cookie", &cookie),
            ("X-Remote-User", "mallory"),
            ("X-Remote-Groups", "admins"),
        ],
        b"",
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello alice"), "{r:?}");
    let r = request_to(
        &addr,
        "GET",
        "/private",
        &[("Host", &host), ("X-Remote-User", "mallory")],
        b"",
    )
    .await;
    assert_eq!(r.status, 302, "{r:?}");

    // logged out: redirected again
    let r = request_to(
        &addr,
        "POST",
        "/session/logout",
        &[("Host", &host), ("Origin", &origin), ("Cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    let r = get("/private", Some(cookie)).await;
    assert_eq!(r.status, 302, "{r:?}");
}
