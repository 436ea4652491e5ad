//! systemd integration against the real binary: the `sd_notify` messages a
//! service manager sees (READY, RELOADING on SIGHUP, STOPPING, watchdog
//! pings), socket activation through `systemd-socket-activate`, and the
//! packaged unit files checked by `systemd-analyze verify`.

mod common;

use common::{free_port, request_to, Options, Server, BIN};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Messages sent to the notify socket until one contains `want` (or the
/// deadline), all of them.
fn read_until(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.contains(want)) {
        assert!(Instant::now() < deadline, "no {want:?} among {seen:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[tokio::test]
async fn tells_the_service_manager_ready_reloading_stopping_and_pings_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // systemd names the watched process in WATCHDOG_PID: a shell that
    // execs sessiond has sessiond's pid
    let mut s = Server::start(
        Options::default()
            .env("NOTIFY_SOCKET", path.to_str().unwrap())
            .env("WATCHDOG_USEC", "400000")
            .env("SESSIOND_TEST_EXEC_WRAPPER", "watchdog"),
    );
    let mut seen = Vec::new();
    read_until(&sock, "READY=1", &mut seen);
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(
        ready.contains(&format!("STATUS=listening on http://{}", s.addr)),
        "{ready}"
    );
    // the watchdog at half the interval
    read_until(&sock, "WATCHDOG=1", &mut seen);
    // SIGHUP: RELOADING, then READY again, and the server goes on
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    read_until(&sock, "RELOADING=1", &mut seen);
    seen.clear();
    read_until(&sock, "READY=1", &mut seen);
    s.get("/healthz").await.assert_text(200, "ok\n");
    // SIGTERM: STOPPING
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    read_until(&sock, "STOPPING=1", &mut seen);
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// `systemd-socket-activate` holds the port and passes the socket (fd 3,
/// `LISTEN_FDS=1`): sessiond serves on it, whatever `server.bind` says.
#[tokio::test]
async fn serves_on_a_socket_systemd_passes() {
    if !common::installed("systemd-socket-activate", "--version") {
        common::missing::<()>(
            "systemd-socket-activate is not installed (scripts/test.sh installs systemd)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), "alice", "alice-pw");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new("systemd-socket-activate")
        .args(["-l", &addr, BIN, "serve", "-p", "1", "--password-file"])
        .arg(dir.path().join("passwd"))
        .current_dir(dir.path())
        .env("SESSIOND_LOG", "warn")
        .env("SESSIOND_AUDIT__SINK", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // the first connection starts sessiond, which answers on the passed socket
    // (port 1 in its own flags would need root: it is not used)
    let r = request_to(&addr, "GET", "/healthz", &[], b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"), "{r:?}");
    let r = request_to(
        &addr,
        "GET",
        "/auth_token?realm=rc&user=alice&pwd=alice-pw",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The unit files in `packaging/systemd/` as `systemd-analyze verify` sees
/// them (with the binary's path of this build).
#[test]
fn the_unit_files_verify() {
    if !common::installed("systemd-analyze", "--version") {
        common::missing::<()>(
            "systemd-analyze is not installed (scripts/test.sh installs systemd)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/systemd");
    let service = std::fs::read_to_string(format!("{units}/sessiond.service"))
        .unwrap()
        .replace("/usr/bin/sessiond", BIN);
    assert!(service.contains("Type=notify") && service.contains("NoNewPrivileges=yes"));
    std::fs::write(dir.path().join("sessiond.service"), service).unwrap();
    std::fs::copy(
        format!("{units}/sessiond.socket"),
        dir.path().join("sessiond.socket"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("sessiond.socket"))
        .arg(dir.path().join("sessiond.service"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The man page and completions come from the command-line definition, and
/// everything the Debian package lists exists (or is what `generate` writes).
#[test]
fn man_page_completions_and_package_assets() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["generate", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let man = std::fs::read_to_string(dir.path().join("sessiond.1")).unwrap();
    assert!(
        man.contains(".TH sessiond 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    for sub in ["check\\-access", "reload", "serve", "user"] {
        assert!(man.contains(sub), "the man page names {sub}");
    }
    let bash = std::fs::read_to_string(dir.path().join("completions/sessiond.bash")).unwrap();
    assert!(bash.contains("check-access") && bash.contains("--groups"));
    assert!(dir.path().join("completions/_sessiond").exists());
    assert!(dir.path().join("completions/sessiond.fish").exists());

    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap(),
    )
    .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    for asset in deb["assets"].as_array().unwrap() {
        let source = asset[0].as_str().unwrap();
        if source.contains("target/") {
            continue; // built by packaging/build-deb.sh
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
        assert!(path.exists(), "package asset {source} is missing");
    }
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(deb["maintainer-scripts"].as_str().unwrap());
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system"),
        "a system user on install"
    );
    // the packaged configuration is one sessiond accepts
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(scripts.join("sessiond.toml"))
        .env_remove("SESSIOND_AUDIT__SINK")
        .env_remove("SESSIOND_AUDIT__PATH")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("# configuration is valid"),
        "{out:?}"
    );
}
