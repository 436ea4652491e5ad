//! Time to list one user's sessions (the "my sessions" page's store call)
//! with many sessions of other users in the store, for the memory and file
//! stores: once a scan of every session under the lock or the write
//! transaction, now a per-user index.
//!
//! `cargo run --release -p sessiond-store --example list_user_sessions [OTHERS]`
//!
//! Inserts OTHERS (default 100,000) sessions of other users and 5 of
//! `alice`, then lists alice's sessions 200 times and prints the median and
//! the 99th percentile. The file store is filled in batches through the
//! public API (each create is a durable commit, so filling takes a while).

use sessiond_core::{Identity, NewSession, RealmPolicy, Timestamp, Token};
use sessiond_store::{FileStore, MemoryStore, SessionStore, StoreOptions, UserSessions};
use std::time::{Duration, Instant};

fn login(user: &str) -> NewSession {
    NewSession {
        realm: "web".into(),
        identity: Identity::new(user, "auth/file"),
        policy: RealmPolicy {
            supersede: false,
            ..RealmPolicy::default()
        },
        credential_end: None,
        client_addr: Some("192.0.2.1".parse().unwrap()),
        device: Some("bench".into()),
        credentials: None,
    }
}

async fn fill(store: &dyn SessionStore, others: u64) {
    let now = Timestamp(1_700_000_000);
    for i in 0..others {
        store
            .create(Token::generate().hash(), login(&format!("user{i:07}")), now)
            .await
            .unwrap();
    }
    for _ in 0..5 {
        store
            .create(Token::generate().hash(), login("alice"), now)
            .await
            .unwrap();
    }
}

async fn time_listing(name: &str, store: &dyn UserSessions) {
    let now = Timestamp(1_700_000_100);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let listed = store.list_user_sessions("web", "alice", now).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(listed.len(), 5);
    }
    times.sort();
    println!(
        "{name}: list alice's 5 sessions among the others: median {:.3} ms, p99 {:.3} ms",
        times[100].as_secs_f64() * 1000.0,
        times[197].as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let others: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of sessions"))
        .unwrap_or(100_000);
    let memory = MemoryStore::new(StoreOptions::default());
    fill(&memory, others).await;
    time_listing(&format!("memory store, {others} other sessions"), &memory).await;

    // On tmpfs when there is one: a durable commit per create would make
    // filling take minutes on a disk, and the listing reads from redb's
    // cache either way.
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    };
    let file = FileStore::open(dir.path(), StoreOptions::default()).unwrap();
    let started = Instant::now();
    fill(&file, others).await;
    eprintln!(
        "(file store filled in {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    time_listing(&format!("file store, {others} other sessions"), &file).await;
}
