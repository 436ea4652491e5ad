//! Redis Sentinel failover under traffic, against the real binary and a real
//! Sentinel set-up (a primary, a replica, three sentinels; started here by
//! `scripts/redis-sentinel.sh`, since this test kills a primary).
//!
//! While `/valid` and `/revoke` run without pause, the primary is killed
//! with SIGKILL. sessiond must answer only 503 in the gap (never a YES for a
//! revoked token, never a NO for a live one), answer again within 2 s of
//! the sentinels naming the new primary, and every revocation it answered
//! `OK` — before or after the failover — must still hold afterwards.

mod common;

use common::{login, Options, Server};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/redis-sentinel.sh"
);

/// A Sentinel set-up of this test's own, stopped when dropped.
struct Sentinels {
    dir: tempfile::TempDir,
    urls: String,
    master: String,
}

impl Sentinels {
    fn start() -> Option<Sentinels> {
        if !common::installed("redis-sentinel", "--version") {
            return common::missing("redis-sentinel is not installed");
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .args([SCRIPT, "start"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-sentinel.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let exports = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_owned()
        };
        Some(Sentinels {
            urls: var("SESSIOND_TEST_REDIS_SENTINEL"),
            master: var("SESSIOND_TEST_REDIS_SENTINEL_MASTER"),
            dir,
        })
    }

    /// The port of the server the first sentinel names primary.
    fn primary(&self) -> u16 {
        let first = self.urls.split(',').next().unwrap();
        let mut con = redis::Client::open(first)
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query(&mut con)
            .unwrap();
        addr[1].parse().unwrap()
    }

    fn path(&self, name: String) -> PathBuf {
        self.dir.path().join(name)
    }

    fn kill9(&self, port: u16) {
        let pid = std::fs::read_to_string(self.path(format!("redis-{port}.pid"))).unwrap();
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Starts a killed server again, as a replica of `primary` (as an
    /// operator would; the sentinels also would, some 10 s later).
    fn restart_as_replica(&self, port: u16, primary: u16) {
        let status = Command::new("bash")
            .arg(self.path(format!("node-{port}.sh")))
            .args(["--replicaof", "127.0.0.1", &primary.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([SCRIPT, "stop"])
            .arg(self.dir.path())
            .status();
    }
}

/// What the traffic saw, shared by its tasks.
#[derive(Default)]
struct Seen {
    /// Tokens never sent to `/revoke`: must answer YES (or 503).
    live: Vec<String>,
    /// Tokens whose revocation was answered `OK`: must answer NO (or 503).
    revoked: HashSet<String>,
    /// Revocations answered `OK` after the sentinels named the new primary.
    revoked_after: usize,
    first_unavailable: Option<Instant>,
    /// The first good answer after the first 503.
    first_good_after: Option<Instant>,
    answers: usize,
    unavailable: usize,
    slowest: Duration,
    wrong: Vec<String>,
}

const YES: &str = "YES\nalice\nauth/file\n\n";

async fn validate_forever(s: Arc<Server>, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>, n: usize) {
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i = i.wrapping_mul(31).wrapping_add(7);
        // Half the checks on live tokens, half on revoked ones.
        let (token, want) = {
            let seen = seen.lock().unwrap();
            let revoked: Vec<&String> = seen.revoked.iter().collect();
            if i.is_multiple_of(2) && !revoked.is_empty() {
                (revoked[i % revoked.len()].clone(), "NO\n")
            } else {
                (seen.live[i % seen.live.len()].clone(), YES)
            }
        };
        let asked = Instant::now();
        let r = s.get(&format!("/valid?realm=fo&token={token}")).await;
        let now = Instant::now();
        let mut seen = seen.lock().unwrap();
        seen.answers += 1;
        seen.slowest = seen.slowest.max(now - asked);
        match (r.status, r.text()) {
            (503, _) => {
                seen.unavailable += 1;
                seen.first_unavailable.get_or_insert(asked);
            }
            (200, text) if text == want => {
                if seen.first_unavailable.is_some() && seen.first_good_after.is_none() {
                    seen.first_good_after = Some(now);
                }
            }
            (status, text) => seen
                .wrong
                .push(format!("{token}: wanted {want:?}, got {status} {text:?}")),
        }
    }
}

/// One after the other (each runs its own Redis set, and the timings are
/// asserted): without the near cache, then with it — whose tracking
/// connection must follow the primary too, and never answer from memory
/// what the new primary would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_answers_503_in_the_gap_and_loses_no_revocation() {
    for cached in [false, true] {
        let Some(sentinels) = Sentinels::start() else {
            return;
        };
        failover(sentinels, cached).await;
    }
}

async fn failover(sentinels: Sentinels, cached: bool) {
    let s = Arc::new(Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_STORE__KIND", "redis-sentinel")
            .env("SESSIOND_STORE__URL", &sentinels.urls)
            .env("SESSIOND_STORE__SENTINEL_MASTER", &sentinels.master)
            .env("SESSIOND_STORE__PREFIX", "failover")
            .env("SESSIOND_STORE__CACHE__ENABLED", &cached.to_string())
            // many sessions of one user at once
            .env("SESSIOND_REALMS__FO__SUPERSEDE", "false"),
    ));
    assert!(
        s.stderr()
            .contains("redis sentinel: connected to the primary"),
        "{}",
        s.stderr()
    );
    let mut tokens = Vec::new();
    for _ in 0..100 {
        tokens.push(login(&s, "fo", "alice", "alice-pw").await);
    }
    let seen = Arc::new(Mutex::new(Seen {
        // 20 never revoked, 80 to revoke
        live: tokens.split_off(80),
        ..Seen::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let switched: Arc<Mutex<Option<Instant>>> = Arc::default();

    let mut tasks = Vec::new();
    for n in 0..3 {
        tasks.push(tokio::spawn(validate_forever(
            s.clone(),
            seen.clone(),
            stop.clone(),
            n,
        )));
    }
    // One revocation every 100 ms; each token is revoked once, whatever
    // the answer, so an unconfirmed (503) one is never checked either way.
    let revoker = {
        let (s, seen, stop, switched) = (s.clone(), seen.clone(), stop.clone(), switched.clone());
        tokio::spawn(async move {
            let mut unconfirmed = 0;
            while let Some(token) = tokens.pop() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = s.get(&format!("/revoke?realm=fo&token={token}")).await;
                let after = switched.lock().unwrap().is_some();
                {
                    let mut seen = seen.lock().unwrap();
                    match (r.status, r.text().as_str()) {
                        (200, "OK\n") => {
                            seen.revoked.insert(token);
                            seen.revoked_after += usize::from(after);
                        }
                        (503, _) => unconfirmed += 1,
                        (status, text) => seen
                            .wrong
                            .push(format!("revoke {token}: got {status} {text:?}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            unconfirmed
        })
    };

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old = sentinels.primary();
    let killed = Instant::now();
    sentinels.kill9(old);
    // The failover time: until the sentinels name another primary.
    loop {
        let now = sentinels.primary();
        if now != old {
            *switched.lock().unwrap() = Some(Instant::now());
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no failover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let switched_at = switched.lock().unwrap().unwrap();
    // Until a replica is back, no revocation can be acknowledged (they
    // answer 503); the old primary returns as one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sentinels.restart_as_replica(old, sentinels.primary());
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let done = {
            let seen = seen.lock().unwrap();
            seen.first_good_after.is_some() && seen.revoked_after >= 3
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let unconfirmed = revoker.await.unwrap();

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(seen.wrong.is_empty(), "wrong answers: {:#?}", seen.wrong);
    let first_503 = seen.first_unavailable.expect("the gap answered 503");
    let back = seen.first_good_after.expect("answers came back");
    let failover = switched_at - killed;
    let gap = back - first_503;
    eprintln!(
        "sentinel failover (near cache {cached}): {failover:?} from kill to new primary; sessiond gap (first 503 to first good answer) {gap:?}; \
         back {:?} after the switch; {} answers, {} of them 503; slowest {:?}; {} revocations OK, {} after the failover, {unconfirmed} unconfirmed (503)",
        back.saturating_duration_since(switched_at),
        seen.answers,
        seen.unavailable,
        seen.slowest,
        seen.revoked.len(),
        seen.revoked_after
    );
    assert!(
        back <= switched_at + Duration::from_secs(2),
        "answers again within 2 s of the new primary: back {:?} after it",
        back - switched_at
    );
    assert!(
        seen.slowest < Duration::from_secs(5),
        "no request hangs: {:?}",
        seen.slowest
    );
    assert!(
        seen.revoked_after >= 3,
        "revocations answered OK after the failover"
    );

    // Afterwards, every revocation answered OK still holds, and every
    // token never revoked still answers YES.
    for token in &seen.revoked {
        s.get(&format!("/valid?realm=fo&token={token}"))
            .await
            .assert_text(200, "NO\n");
    }
    for token in &seen.live {
        s.get(&format!("/valid?realm=fo&token={token}"))
            .await
            .assert_text(200, YES);
    }
    let log = s.stderr();
    assert!(
        log.contains("lost the primary") && log.matches("connected to the primary").count() >= 2,
        "the log tells the failover: {log}"
    );
}
