//! Real PAM. `scripts/test.sh` creates a throwaway PAM service and Unix user
//! and passes them in `SESSIOND_TEST_PAM_*`; with `SESSIOND_TEST_REQUIRE_PAM=1`
//! (as the script sets) a missing fixture is a failure, not a skip.

mod common;

use common::{Options, Server};

struct Fixture {
    service: String,
    /// A service whose stack refuses everyone.
    deny_service: String,
    /// A service whose check takes 3 s and then lets anyone in.
    slow_service: String,
    user: String,
    password: String,
    uid: String,
    gid: String,
    /// A supplementary group of the user.
    group: String,
    /// The name of the user's primary group.
    primary_group: String,
}

fn fixture() -> Option<Fixture> {
    let var = |k: &str| std::env::var(format!("SESSIOND_TEST_PAM_{k}")).ok();
    let found = (|| {
        let user = var("USER")?;
        let id = |flag: &str| {
            let out = std::process::Command::new("id")
                .args([flag, &user])
                .output()
                .ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        Some(Fixture {
            service: var("SERVICE")?,
            deny_service: var("DENY_SERVICE")?,
            slow_service: var("SLOW_SERVICE")?,
            password: var("PASSWORD")?,
            uid: id("-u")?,
            gid: id("-g")?,
            primary_group: id("-gn")?,
            group: var("GROUP")?,
            user,
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var("SESSIOND_TEST_REQUIRE_PAM").is_err(),
            "SESSIOND_TEST_REQUIRE_PAM is set but the PAM fixture variables are missing"
        );
        eprintln!("PAM fixture not set up (run scripts/test.sh): PAM tests not run");
    }
    found
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut opts = Options::default().args(args);
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    let s = Server::start(opts);
    assert!(
        std::fs::read_to_string(s.dir.join("stderr.log")).is_ok(),
        "server started"
    );
    s
}

#[tokio::test]
async fn pam_logins_with_uid_and_gid() {
    let Some(f) = fixture() else { return };
    let s = start(&["-pam-app", &f.service, "-default", "pam"], &[]);
    let ids = format!("uid={}\ngid={}\n", f.uid, f.gid);

    let r = s
        .get(&format!(
            "/auth_token?realm=rc&user={}&pwd={}",
            f.user, f.password
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}\n{}", s.stderr());
    let body = r.text();
    let token = body.lines().next().unwrap().to_owned();
    assert_eq!(&body[64..], format!("\n{}\nauth/pam\n{ids}", f.user));
    s.get(&format!("/valid?realm=rc&token={token}"))
        .await
        .assert_text(200, &format!("YES\n{}\nauth/pam\n{ids}\n", f.user));

    // module text kept verbatim, matched case-insensitively
    let r = s
        .get(&format!(
            "/auth_token?realm=rc&user={}&pwd={}&module=PAM",
            f.user, f.password
        ))
        .await;
    assert!(
        r.text()
            .ends_with(&format!("\n{}\nauth/PAM\n{ids}", f.user)),
        "{r:?}"
    );
    s.get(&format!("/valid?realm=rc&token={token}"))
        .await
        .assert_text(200, &format!("SUPERCEDED\n{}\nauth/pam\n{ids}\n", f.user));

    // legacy /pam_token records source `pam`
    let r = s
        .get(&format!(
            "/pam_token?realm=rc&user={}&pwd={}",
            f.user, f.password
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.text().ends_with(&format!("\n{}\npam\n{ids}", f.user)),
        "{r:?}"
    );

    s.get(&format!("/auth_token?realm=rc&user={}&pwd=wrong", f.user))
        .await
        .assert_bare(403);
    s.get("/auth_token?realm=rc&user=sessiond-no-such-user&pwd=x")
        .await
        .assert_bare(403);
    s.get(&format!("/pam_token?realm=rc&user={}&pwd=wrong", f.user))
        .await
        .assert_bare(403);
}

/// A PAM login's groups are the account's Unix groups (`getgrouplist`):
/// the primary group and the supplementary one the fixture added.
#[tokio::test]
async fn pam_logins_carry_the_unix_groups() {
    let Some(f) = fixture() else { return };
    let s = start(&["-pam-app", &f.service, "-default", "pam"], &[]);
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": f.user, "password": f.password}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let groups: Vec<String> = r.json()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect();
    let mut want = vec![f.primary_group.clone(), f.group.clone()];
    want.sort();
    assert_eq!(groups, want, "{r:?}");
}

#[tokio::test]
async fn realm_does_not_choose_the_pam_service_unless_configured() {
    let Some(f) = fixture() else { return };
    let login = |realm: &str| {
        format!(
            "/auth_token?realm={realm}&user={}&pwd={}",
            f.user, f.password
        )
    };

    // fixed service: the realm text is ignored, whatever it names
    let s = start(&["-pam-app", &f.service, "-default", "pam"], &[]);
    assert_eq!(s.get(&login(&f.deny_service)).await.status, 200);
    let s = start(&["-pam-app", &f.deny_service, "-default", "pam"], &[]);
    s.get(&login(&f.service)).await.assert_bare(403);

    // opt-in: the realm names the service, as in SessionKeyServer, but only
    // a listed one: an open choice would let `realm=su` (pam_rootok) in as
    // anyone while sessiond runs as root
    let err = Server::try_start(
        Options::default()
            .args(&["-default", "pam"])
            .env("SESSIOND_AUTH__PAM_SERVICE_FROM_REALM", "true"),
    )
    .err()
    .expect("an open choice of PAM service is refused at start");
    assert!(err.contains("auth.pam_services"), "{err}");
    let services = format!("[{:?}, {:?}]", f.service, f.deny_service);
    let s = start(
        &["-default", "pam"],
        &[
            ("SESSIOND_AUTH__PAM_SERVICE_FROM_REALM", "true"),
            ("SESSIOND_AUTH__PAM_SERVICES", &services),
        ],
    );
    assert_eq!(s.get(&login(&f.service)).await.status, 200);
    s.get(&login(&f.deny_service)).await.assert_bare(403);
    for unlisted in ["su", "sudo", "login", "..%2Fetc"] {
        s.get(&login(unlisted)).await.assert_bare(403);
    }
}

/// A login whose request timed out keeps its check slot until PAM returns:
/// PAM runs on a blocking thread that cannot be stopped, and a freed slot
/// would let a slow back end pile up unbounded work. With one slot, a
/// second login waits for the slow check and times out too; once the check
/// ends, logins go through again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_login_keeps_its_check_slot() {
    let Some(f) = fixture() else { return };
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .args(&["-pam-app", &f.slow_service])
            .env("SESSIOND_AUTH__MODULES", "[\"file\", \"pam\"]")
            .env("SESSIOND_AUTH__MAX_CONCURRENT_CHECKS", "1")
            .env("SESSIOND_SERVER__REQUEST_TIMEOUT", "1s"),
    );
    let started = std::time::Instant::now();
    let r = s
        .get(&format!(
            "/auth_token?realm=rc&user={}&pwd=x&module=pam",
            f.user
        ))
        .await;
    assert_eq!(r.status, 408, "{r:?}");
    let r = s.get("/auth_token?realm=rc&user=alice&pwd=alice-pw").await;
    assert_eq!(
        r.status, 408,
        "the slot is still held by the running PAM check: {r:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(2900));
    tokio::time::sleep(std::time::Duration::from_millis(3200).saturating_sub(started.elapsed()))
        .await;
    let r = s.get("/auth_token?realm=rc&user=alice&pwd=alice-pw").await;
    assert_eq!(r.status, 200, "free again once PAM returned: {r:?}");
}
