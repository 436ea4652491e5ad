//! A real nginx in front of a protected back end, with `auth_request` to
//! sessiond, configured with the README's nginx block as written (ports
//! substituted): the browser's journey through it, without a browser.

mod common;

use common::{request_to, Options, Resp, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx from the README's config, serving on `front`, with a back end on
/// `back` that echoes the user nginx passed it.
pub struct Nginx {
    pub front: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(sessiond: &str) -> Option<Nginx> {
        if Command::new("nginx").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("SESSIOND_TEST_REQUIRE_SERVICES").is_none(),
                "nginx is not installed (scripts/test.sh installs it)"
            );
            eprintln!("skipped: nginx is not installed");
            return None;
        }
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        let block: String = readme
            .lines()
            .skip_while(|l| *l != "```nginx")
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            block.contains("auth_request"),
            "README nginx block not found"
        );
        let (front, back) = (free_port(), free_port());
        let server = block
            .replace("listen 80;", &format!("listen 127.0.0.1:{front};"))
            .replace("127.0.0.1:4431", sessiond)
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{back}"));
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        // workers may run as nobody
        let _ = Command::new("chmod").arg("777").arg(&tmp).status();
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
{server}
    # the protected application: shows who nginx says the user is
    server {{
        listen 127.0.0.1:{back};
        location / {{
            default_type text/plain;
            return 200 "hello $http_x_remote_user\n";
        }}
    }}
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
    fn drop(&mut self) {
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
    let Some(nginx) = Nginx::start(&s.addr) else {
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
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

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
