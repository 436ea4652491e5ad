//! Memory used per live session in the memory store.
//!
//! Inserts N sessions (default 1,000,000) through the public store API and
//! reports the growth of the process's resident set size divided by N. Two
//! shapes: every session a different user (worst case: one supersede counter
//! per session too), and 1,000 users sharing the sessions (supersede off).
//!
//! `cargo run --release -p sessiond-store --example memory_per_session [N]`

// The allocator the server runs with (crates/server/src/main.rs): bytes per
// session depend on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use sessiond_core::{Identity, NewSession, RealmPolicy, Timestamp, Token};
use sessiond_store::{MemoryStore, SessionStore, StoreOptions};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

async fn measure(n: u64, distinct_users: bool) -> f64 {
    let store = MemoryStore::new(StoreOptions::default());
    let policy = RealmPolicy {
        supersede: distinct_users,
        ..RealmPolicy::default()
    };
    let before = rss_bytes();
    for i in 0..n {
        let user = if distinct_users {
            format!("user{i:07}")
        } else {
            format!("user{:04}", i % 1000)
        };
        let new = NewSession {
            realm: "rcloud".into(),
            identity: Identity::new(user, "auth/pam"),
            policy: policy.clone(),
            credential_end: None,
            client_addr: Some("192.0.2.10".parse().unwrap()),
            device: None,
            credentials: None,
        };
        store
            .create(Token::generate().hash(), new, Timestamp(1_700_000_000))
            .await
            .unwrap();
    }
    let after = rss_bytes();
    assert_eq!(store.len() as u64, n);
    (after - before) as f64 / n as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    match args.get(2).map(String::as_str) {
        Some("distinct") => println!("{:.0}", measure(n, true).await),
        Some("shared") => println!("{:.0}", measure(n, false).await),
        _ => {
            // Each shape in a fresh process, so freed memory of one run that
            // the allocator keeps cannot hide the growth of the next.
            for (shape, label) in [("distinct", "one user each"), ("shared", "1000 users")] {
                let out = std::process::Command::new(std::env::current_exe().unwrap())
                    .args([n.to_string(), shape.to_owned()])
                    .output()
                    .expect("re-run self");
                let bytes = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                println!("memory store, {n} sessions, {label}: {bytes} bytes per session (RSS growth / sessions)");
            }
        }
    }
}
