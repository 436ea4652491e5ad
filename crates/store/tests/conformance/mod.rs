//! The store conformance suite: one set of behaviours every `SessionStore`
//! must show. A store's test file builds a [`Harness`] and invokes
//! [`conformance_suite!`], which turns each function here into a test.
//!
//! Time is passed explicitly (a controllable clock), never slept.

#![allow(dead_code)]

use sessiond_core::session::{SessionData, Validity};
use sessiond_core::{Identity, NewSession, RealmPolicy, Timestamp, Token};
use sessiond_store::{DataWrite, GroupChange, GroupRole, Store};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Retention the harnesses configure for superseded sessions.
pub const RETENTION: Duration = Duration::from_secs(3600);

pub type Dump = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> + Send + Sync>;

/// A store under test, a way to read its raw contents, and whatever must live
/// as long as the store (a temporary directory, a server process).
pub struct Harness {
    pub store: Store,
    pub dump: Dump,
    pub guard: Box<dyn std::any::Any + Send + Sync>,
    /// Whether `purge` deletes dead records itself (false where the backend
    /// expires them through TTLs, and the count cannot be known).
    pub sweeps: bool,
    /// Whether the store can enumerate a user's sessions: what its `Store`
    /// must declare (`user_sessions_list_and_revoke` checks it).
    pub enumerates: bool,
}

/// Polls `cond` every 5 ms until it holds or `limit` passed; whether it held.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while !cond() {
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Peeks at `id` in realm `rc` until the answer is `want`, for at most a
/// second (another instance's write reaching a near cache).
pub async fn peek_until(
    store: &Store,
    id: sessiond_core::TokenHash,
    now: Timestamp,
    want: fn(&Validity) -> bool,
) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if want(&store.peek(id, "rc", now).await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("not seen within 1 s")
}

/// Whether a test run must have every external service: set by
/// `scripts/test.sh`, so CI fails rather than skips when one is missing.
pub fn services_required() -> bool {
    std::env::var_os("SESSIOND_TEST_REQUIRE_SERVICES").is_some()
}

/// Skips (returns `None`) when `var` is unset and services are optional.
pub fn service_url(var: &str, default: Option<&str>) -> Option<String> {
    match (std::env::var(var), default) {
        (Ok(v), _) if !v.is_empty() => Some(v),
        (_, Some(d)) => Some(d.to_owned()),
        _ if services_required() => {
            panic!("{var} is not set, and SESSIOND_TEST_REQUIRE_SERVICES is")
        }
        _ => {
            eprintln!("skipped: {var} is not set (scripts/test.sh sets it)");
            None
        }
    }
}

#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@tests $make;
            create_then_validate, unknown_and_other_realm, new_login_supersedes,
            supersede_can_be_disabled, revoke_current_and_superseded, replace_moves_the_session,
            idle_timeout_slides, absolute_lifetime_is_final, credential_end_caps_expiry,
            superseded_retention_ends, purge_removes_only_dead_sessions, session_data_cas,
            concurrent_data_writes_lose_nothing, concurrent_logins_leave_one_current,
            concurrent_replace_has_one_winner, concurrent_mixed_traffic_keeps_records_whole,
            keys_and_groups, tokens_never_at_rest, user_sessions_list_and_revoke,
            peek_is_not_activity, ticket_not_before_only_moves_forward,
            touched_sessions_stay_reachable, ending_a_user_reaches_every_realm,
            racing_ticket_revocations_keep_the_latest, shared_failure_counts,
            racing_touches_never_shorten_a_session, expiry_is_reported_once);
    };
    (@tests $make:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(harness) = $make().await else { return };
                conformance::$name(&harness).await;
            }
        )*
    };
}

pub fn login(realm: &str, user: &str, policy: RealmPolicy) -> NewSession {
    NewSession {
        realm: realm.into(),
        // groups too: they are part of the record every store keeps
        identity: Identity::new(user, "auth/test").with_groups(["ops".into(), "dev".into()]),
        policy,
        credential_end: None,
        client_addr: Some("127.0.0.1".parse().unwrap()),
        device: Some("conformance test".into()),
        credentials: None,
    }
}

fn sks() -> RealmPolicy {
    RealmPolicy::default()
}

const T0: Timestamp = Timestamp(1_700_000_000);

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

async fn issue(h: &Harness, realm: &str, user: &str, policy: RealmPolicy, now: Timestamp) -> Token {
    let token = Token::generate();
    h.store
        .create(token.hash(), login(realm, user, policy), now)
        .await
        .unwrap();
    token
}

async fn state(h: &Harness, t: &Token, realm: &str, now: Timestamp) -> &'static str {
    match h.store.validate(t.hash(), realm, now).await.unwrap() {
        Validity::Current(_) => "current",
        Validity::Superseded(_) => "superseded",
        // as every caller answers it (expiry_is_reported_once tells them apart)
        Validity::Expired(_) | Validity::Unknown => "unknown",
    }
}

pub async fn create_then_validate(h: &Harness) {
    let t = issue(h, "rc", "alice", sks(), at(0)).await;
    match h.store.validate(t.hash(), "rc", at(1)).await.unwrap() {
        Validity::Current(r) => {
            assert_eq!(r.identity.user, "alice");
            assert_eq!(r.identity.source, "auth/test");
            assert_eq!(
                r.identity.groups,
                ["dev", "ops"],
                "groups kept with the session"
            );
            assert_eq!(r.realm, "rc");
            assert_eq!(r.created, at(0));
            assert_eq!(r.client_addr, Some("127.0.0.1".parse().unwrap()));
        }
        other => panic!("expected current, got {other:?}"),
    }
    h.store.ping().await.unwrap();
}

pub async fn unknown_and_other_realm(h: &Harness) {
    let t = issue(h, "rc", "alice", sks(), at(0)).await;
    assert_eq!(state(h, &Token::generate(), "rc", at(1)).await, "unknown");
    assert_eq!(
        state(h, &t, "RC", at(1)).await,
        "unknown",
        "realms are case-sensitive"
    );
    assert_eq!(state(h, &t, "", at(1)).await, "unknown");
    assert_eq!(
        state(h, &t, "rc", at(2)).await,
        "current",
        "asking in another realm keeps the record"
    );
    let e = issue(h, "", "alice", sks(), at(0)).await;
    assert_eq!(
        state(h, &e, "", at(1)).await,
        "current",
        "the empty realm is a realm"
    );
}

pub async fn new_login_supersedes(h: &Harness) {
    let a = issue(h, "rc", "alice", sks(), at(0)).await;
    let bob = issue(h, "rc", "bob", sks(), at(0)).await;
    let other_realm = issue(h, "other", "alice", sks(), at(0)).await;
    let b = issue(h, "rc", "alice", sks(), at(1)).await;
    assert_eq!(state(h, &a, "rc", at(2)).await, "superseded");
    assert_eq!(state(h, &b, "rc", at(2)).await, "current");
    assert_eq!(state(h, &bob, "rc", at(2)).await, "current");
    assert_eq!(state(h, &other_realm, "other", at(2)).await, "current");
    match h.store.validate(a.hash(), "rc", at(2)).await.unwrap() {
        Validity::Superseded(r) => assert_eq!(r.identity.user, "alice"),
        other => panic!("{other:?}"),
    }
}

pub async fn supersede_can_be_disabled(h: &Harness) {
    let policy = RealmPolicy {
        supersede: false,
        ..sks()
    };
    let a = issue(h, "web", "alice", policy.clone(), at(0)).await;
    let b = issue(h, "web", "alice", policy, at(1)).await;
    assert_eq!(state(h, &a, "web", at(2)).await, "current");
    assert_eq!(state(h, &b, "web", at(2)).await, "current");
}

pub async fn revoke_current_and_superseded(h: &Harness) {
    let a = issue(h, "rc", "alice", sks(), at(0)).await;
    let b = issue(h, "rc", "alice", sks(), at(1)).await;
    let c = issue(h, "rc", "alice", sks(), at(2)).await;
    // revoking a superseded token deletes only that token
    let r = h.store.revoke(b.hash(), "rc", at(3)).await.unwrap();
    assert_eq!(r.unwrap().identity.user, "alice");
    assert_eq!(state(h, &b, "rc", at(3)).await, "unknown");
    assert_eq!(state(h, &c, "rc", at(3)).await, "current");
    // revoking the current token leaves older ones superseded, never current
    assert!(h
        .store
        .revoke(c.hash(), "rc", at(4))
        .await
        .unwrap()
        .is_some());
    assert_eq!(state(h, &c, "rc", at(4)).await, "unknown");
    assert_eq!(state(h, &a, "rc", at(4)).await, "superseded");
    assert!(
        h.store
            .revoke(c.hash(), "rc", at(5))
            .await
            .unwrap()
            .is_none(),
        "second revoke"
    );
    assert!(
        h.store
            .revoke(a.hash(), "other", at(5))
            .await
            .unwrap()
            .is_none(),
        "wrong realm"
    );
    assert_eq!(state(h, &a, "rc", at(5)).await, "superseded");
}

pub async fn replace_moves_the_session(h: &Harness) {
    let a = issue(h, "rc", "alice", sks(), at(0)).await;
    let b = issue(h, "rc", "alice", sks(), at(1)).await;
    let n = Token::generate();
    let rec = h
        .store
        .replace(b.hash(), n.hash(), "rc", at(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.identity.user, "alice");
    assert_eq!(
        rec.identity.groups,
        ["dev", "ops"],
        "a replaced session keeps its groups"
    );
    assert_eq!(state(h, &n, "rc", at(3)).await, "current");
    assert_eq!(
        state(h, &b, "rc", at(3)).await,
        "unknown",
        "the old token is gone, not superseded"
    );
    assert_eq!(state(h, &a, "rc", at(3)).await, "superseded");
    let m = Token::generate();
    assert!(
        h.store
            .replace(a.hash(), m.hash(), "rc", at(4))
            .await
            .unwrap()
            .is_none(),
        "superseded"
    );
    assert!(
        h.store
            .replace(b.hash(), m.hash(), "rc", at(4))
            .await
            .unwrap()
            .is_none(),
        "unknown"
    );
    assert!(
        h.store
            .replace(n.hash(), m.hash(), "RC", at(4))
            .await
            .unwrap()
            .is_none(),
        "wrong realm"
    );
    assert_eq!(state(h, &m, "rc", at(4)).await, "unknown");
}

pub async fn idle_timeout_slides(h: &Harness) {
    let policy = RealmPolicy {
        idle_timeout: Some(Duration::from_secs(100)),
        ..sks()
    };
    let t = issue(h, "web", "alice", policy, at(0)).await;
    assert_eq!(state(h, &t, "web", at(60)).await, "current");
    assert_eq!(
        state(h, &t, "web", at(150)).await,
        "current",
        "activity at 60 extended it"
    );
    assert_eq!(state(h, &t, "web", at(249)).await, "current");
    assert_eq!(
        state(h, &t, "web", at(350)).await,
        "unknown",
        "idle for 101 s"
    );
    assert_eq!(state(h, &t, "web", at(351)).await, "unknown");
    assert!(
        h.store
            .revoke(t.hash(), "web", at(352))
            .await
            .unwrap()
            .is_none(),
        "deleted"
    );
}

pub async fn absolute_lifetime_is_final(h: &Harness) {
    let policy = RealmPolicy {
        idle_timeout: Some(Duration::from_secs(50)),
        max_lifetime: Some(Duration::from_secs(100)),
        ..sks()
    };
    let t = issue(h, "web", "alice", policy, at(0)).await;
    for s in [30, 60, 90, 99] {
        assert_eq!(state(h, &t, "web", at(s)).await, "current", "at {s}");
    }
    assert_eq!(state(h, &t, "web", at(100)).await, "unknown");
}

pub async fn credential_end_caps_expiry(h: &Harness) {
    let mut new = login(
        "krb",
        "alice",
        RealmPolicy {
            max_lifetime: Some(Duration::from_secs(36_000)),
            ..sks()
        },
    );
    new.credential_end = Some(at(1000));
    let t = Token::generate();
    let rec = h.store.create(t.hash(), new, at(0)).await.unwrap();
    assert_eq!(rec.expires_at, Some(at(700)), "ticket end minus 5 minutes");
    assert_eq!(state(h, &t, "krb", at(699)).await, "current");
    assert_eq!(state(h, &t, "krb", at(700)).await, "unknown");
}

pub async fn superseded_retention_ends(h: &Harness) {
    let a = issue(h, "rc", "alice", sks(), at(0)).await;
    let _b = issue(h, "rc", "alice", sks(), at(10)).await;
    let last = RETENTION.as_secs() as i64 + 9;
    assert_eq!(state(h, &a, "rc", at(last)).await, "superseded");
    assert_eq!(state(h, &a, "rc", at(last + 1)).await, "unknown");
}

pub async fn purge_removes_only_dead_sessions(h: &Harness) {
    let short = RealmPolicy {
        max_lifetime: Some(Duration::from_secs(10)),
        ..sks()
    };
    let expired = issue(h, "p", "u1", short, at(0)).await;
    let superseded = issue(h, "p", "u2", sks(), at(0)).await;
    let current = issue(h, "p", "u2", sks(), at(1)).await;
    let forever = issue(h, "p", "u3", sks(), at(0)).await;
    let removed = h.store.purge(at(20)).await.unwrap();
    if h.sweeps {
        assert_eq!(removed, 1, "only the expired one");
    }
    assert_eq!(state(h, &superseded, "p", at(21)).await, "superseded");
    let removed = h
        .store
        .purge(at(RETENTION.as_secs() as i64 + 2))
        .await
        .unwrap();
    if h.sweeps {
        assert_eq!(removed, 1, "now the superseded one too");
    }
    let later = at(RETENTION.as_secs() as i64 + 3);
    assert_eq!(state(h, &expired, "p", later).await, "unknown");
    assert_eq!(state(h, &superseded, "p", later).await, "unknown");
    assert_eq!(state(h, &current, "p", later).await, "current");
    assert_eq!(state(h, &forever, "p", later).await, "current");
}

pub async fn session_data_cas(h: &Harness) {
    let t = issue(h, "rc", "alice", sks(), at(0)).await;
    let (data, v) = h
        .store
        .read_data(t.hash(), "rc", at(1))
        .await
        .unwrap()
        .unwrap();
    assert!(data.is_empty());
    assert_eq!(v, 0);
    let mut d = SessionData::new();
    d.insert("theme".into(), serde_json::json!({"dark": true}));
    let w = h
        .store
        .write_data(t.hash(), "rc", 0, d.clone(), at(2))
        .await
        .unwrap();
    assert_eq!(w, DataWrite::Written { version: 1 });
    let w = h
        .store
        .write_data(t.hash(), "rc", 0, SessionData::new(), at(3))
        .await
        .unwrap();
    assert_eq!(w, DataWrite::Conflict { current_version: 1 });
    let (data, v) = h
        .store
        .read_data(t.hash(), "rc", at(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((data, v), (d.clone(), 1));
    // data moves with replace
    let n = Token::generate();
    h.store
        .replace(t.hash(), n.hash(), "rc", at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        h.store
            .read_data(n.hash(), "rc", at(6))
            .await
            .unwrap()
            .unwrap()
            .0,
        d
    );
    // superseded and unknown sessions have no data
    let _newer = issue(h, "rc", "alice", sks(), at(7)).await;
    assert!(h
        .store
        .read_data(n.hash(), "rc", at(8))
        .await
        .unwrap()
        .is_none());
    let w = h
        .store
        .write_data(n.hash(), "rc", 1, SessionData::new(), at(8))
        .await
        .unwrap();
    assert_eq!(w, DataWrite::NotFound);
    let w = h
        .store
        .write_data(t.hash(), "rc", 1, SessionData::new(), at(8))
        .await
        .unwrap();
    assert_eq!(w, DataWrite::NotFound);
}

pub async fn concurrent_data_writes_lose_nothing(h: &Harness) {
    let t = issue(h, "rc", "alice", sks(), at(0)).await;
    let writers = 24;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let store = h.store.clone();
        let id = t.hash();
        tasks.push(tokio::spawn(async move {
            loop {
                let (mut data, v) = store.read_data(id, "rc", at(1)).await.unwrap().unwrap();
                data.insert(format!("k{i}"), serde_json::json!(i));
                match store.write_data(id, "rc", v, data, at(1)).await.unwrap() {
                    DataWrite::Written { .. } => break,
                    DataWrite::Conflict { .. } => tokio::task::yield_now().await,
                    DataWrite::NotFound => panic!("session vanished"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (data, v) = h
        .store
        .read_data(t.hash(), "rc", at(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data.len(), writers, "every writer's key is present");
    assert_eq!(v, writers as u64);
}

pub async fn concurrent_logins_leave_one_current(h: &Harness) {
    let n = 100;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let t = Token::generate();
            store
                .create(t.hash(), login("rc", "alice", sks()), at(0))
                .await
                .unwrap();
            t
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    let mut current = 0;
    let mut superseded = 0;
    for t in &tokens {
        match state(h, t, "rc", at(1)).await {
            "current" => current += 1,
            "superseded" => superseded += 1,
            s => panic!("lost record: {s}"),
        }
    }
    assert_eq!((current, superseded), (1, n - 1));
}

pub async fn concurrent_replace_has_one_winner(h: &Harness) {
    let t = issue(h, "rc", "alice", sks(), at(0)).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = h.store.clone();
        let old = t.hash();
        tasks.push(tokio::spawn(async move {
            let n = Token::generate();
            store
                .replace(old, n.hash(), "rc", at(1))
                .await
                .unwrap()
                .map(|_| n)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(n) = task.await.unwrap() {
            winners.push(n);
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(state(h, &winners[0], "rc", at(2)).await, "current");
}

/// Many users each run login → replace → validate → login → revoke, all at
/// once, mixed with validations; afterwards every record is whole and in the
/// state its user's history implies.
pub async fn concurrent_mixed_traffic_keeps_records_whole(h: &Harness) {
    let users = 40;
    let mut tasks = Vec::new();
    for u in 0..users {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("user{u}");
            let t1 = Token::generate();
            store
                .create(t1.hash(), login("mix", &user, sks()), at(0))
                .await
                .unwrap();
            let t2 = Token::generate();
            store
                .replace(t1.hash(), t2.hash(), "mix", at(1))
                .await
                .unwrap()
                .expect("replace");
            for _ in 0..5 {
                match store.validate(t2.hash(), "mix", at(2)).await.unwrap() {
                    Validity::Current(r) => assert_eq!(r.identity.user, user, "torn record"),
                    other => panic!("{other:?}"),
                }
            }
            let t3 = Token::generate();
            store
                .create(t3.hash(), login("mix", &user, sks()), at(3))
                .await
                .unwrap();
            let t4 = Token::generate();
            store
                .create(t4.hash(), login("mix", &user, sks()), at(4))
                .await
                .unwrap();
            assert!(store
                .revoke(t4.hash(), "mix", at(5))
                .await
                .unwrap()
                .is_some());
            (user, t1, t2, t3, t4)
        }));
    }
    for task in tasks {
        let (user, t1, t2, t3, t4) = task.await.unwrap();
        assert_eq!(state(h, &t1, "mix", at(6)).await, "unknown", "{user} t1");
        assert_eq!(state(h, &t2, "mix", at(6)).await, "superseded", "{user} t2");
        assert_eq!(state(h, &t3, "mix", at(6)).await, "superseded", "{user} t3");
        assert_eq!(state(h, &t4, "mix", at(6)).await, "unknown", "{user} t4");
        match h.store.validate(t3.hash(), "mix", at(6)).await.unwrap() {
            Validity::Superseded(r) => assert_eq!(r.identity.user, user),
            other => panic!("{other:?}"),
        }
    }
}

pub async fn keys_and_groups(h: &Harness) {
    let (k, g) = (&h.store.keys, &h.store.groups);
    assert_eq!(k.get_key("alice\nauth/test\n").await.unwrap(), None);
    k.put_key("alice\nauth/test\n", "k1").await.unwrap();
    assert_eq!(
        k.get_key("alice\nauth/test\n").await.unwrap().as_deref(),
        Some("k1")
    );
    k.put_key("alice\nauth/test\n", "k2").await.unwrap();
    assert_eq!(
        k.get_key("alice\nauth/test\n").await.unwrap().as_deref(),
        Some("k2")
    );

    assert!(g.create_group("g", "rc", "alice", "gk").await.unwrap());
    assert!(
        !g.create_group("g", "other", "bob", "gk2").await.unwrap(),
        "names are global"
    );
    assert_eq!(g.group_key("g").await.unwrap().as_deref(), Some("gk"));
    assert_eq!(
        g.group_role("g", "rc", "alice").await.unwrap(),
        Some(GroupRole::Admin)
    );
    assert_eq!(g.group_role("g", "other", "alice").await.unwrap(), None);
    let changes = [
        GroupChange {
            user: "bob".into(),
            role: Some(GroupRole::Member),
        },
        GroupChange {
            user: "carol".into(),
            role: Some(GroupRole::Admin),
        },
    ];
    assert!(g.update_group("g", "rc", "alice", &changes).await.unwrap());
    assert!(
        !g.update_group("g", "rc", "bob", &changes).await.unwrap(),
        "members cannot modify"
    );
    assert_eq!(
        g.group_role("g", "rc", "bob").await.unwrap(),
        Some(GroupRole::Member)
    );
    let remove = [GroupChange {
        user: "bob".into(),
        role: None,
    }];
    assert!(g.update_group("g", "rc", "carol", &remove).await.unwrap());
    assert_eq!(g.group_role("g", "rc", "bob").await.unwrap(), None);
    assert_eq!(g.group_key("nope").await.unwrap(), None);
}

pub async fn tokens_never_at_rest(h: &Harness) {
    let mut tokens = HashSet::new();
    for i in 0..20 {
        let t = issue(h, "rc", &format!("u{i}"), sks(), at(0)).await;
        let n = Token::generate();
        if i % 2 == 0 {
            h.store
                .replace(t.hash(), n.hash(), "rc", at(1))
                .await
                .unwrap()
                .unwrap();
            tokens.insert(n.expose().to_owned());
        }
        tokens.insert(t.expose().to_owned());
    }
    let dump = (h.dump)().await;
    assert!(!dump.is_empty());
    let text = String::from_utf8_lossy(&dump).to_lowercase();
    assert!(
        text.contains("u19"),
        "the dump does show the store's contents"
    );
    for t in &tokens {
        assert!(!text.contains(t.as_str()), "a raw token is stored");
        assert!(!text.contains(&t[..16]), "part of a raw token is stored");
    }
}

pub async fn user_sessions_list_and_revoke(h: &Harness) {
    let browser = RealmPolicy {
        supersede: false,
        ..sks()
    };
    let a = issue(h, "web", "alice", browser.clone(), at(0)).await;
    let b = issue(h, "web", "alice", browser.clone(), at(1)).await;
    let c = issue(h, "web", "alice", browser.clone(), at(2)).await;
    let bob = issue(h, "web", "bob", browser.clone(), at(0)).await;
    let elsewhere = issue(h, "rc", "alice", sks(), at(0)).await;
    assert_eq!(
        h.store.users.is_some(),
        h.enumerates,
        "the store declares what it can do"
    );
    let Some(users) = &h.store.users else {
        return;
    };
    let listed = users
        .list_user_sessions("web", "alice", at(3))
        .await
        .unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![a.hash(), b.hash(), c.hash()]);
    assert!(listed
        .iter()
        .all(|s| !s.superseded && s.record.identity.user == "alice"));
    assert_eq!(listed[1].record.created, at(1));

    let removed = users
        .revoke_user_sessions("web", "alice", Some(b.hash()), at(4))
        .await
        .unwrap();
    assert_eq!(removed, 2, "all but the kept one");
    assert_eq!(state(h, &a, "web", at(5)).await, "unknown");
    assert_eq!(state(h, &c, "web", at(5)).await, "unknown");
    assert_eq!(state(h, &b, "web", at(5)).await, "current");
    assert_eq!(state(h, &bob, "web", at(5)).await, "current");
    assert_eq!(state(h, &elsewhere, "rc", at(5)).await, "current");
    let listed = users
        .list_user_sessions("web", "alice", at(6))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // a replaced session is listed under its new id
    let moved = Token::generate();
    h.store
        .replace(b.hash(), moved.hash(), "web", at(7))
        .await
        .unwrap()
        .unwrap();
    let listed = users
        .list_user_sessions("web", "alice", at(8))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![moved.hash()]
    );

    assert_eq!(
        users
            .revoke_user_sessions("web", "alice", None, at(9))
            .await
            .unwrap(),
        1
    );
    assert_eq!(state(h, &moved, "web", at(10)).await, "unknown");
    assert!(users
        .list_user_sessions("web", "alice", at(10))
        .await
        .unwrap()
        .is_empty());

    // superseded sessions are listed, and marked
    let old = issue(h, "rc", "carol", sks(), at(0)).await;
    let new = issue(h, "rc", "carol", sks(), at(1)).await;
    let listed = users
        .list_user_sessions("rc", "carol", at(2))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].id, listed[0].superseded), (old.hash(), true));
    assert_eq!((listed[1].id, listed[1].superseded), (new.hash(), false));
}

/// A check that does not count as activity (background polling) leaves the
/// idle end where it was; a normal validation moves it.
pub async fn peek_is_not_activity(h: &Harness) {
    let idle = RealmPolicy {
        idle_timeout: Some(Duration::from_secs(100)),
        ..sks()
    };
    let polled = issue(h, "web", "alice", idle.clone(), at(0)).await;
    let used = issue(h, "web", "bob", idle, at(0)).await;
    for t in [60, 90] {
        assert!(matches!(
            h.store.peek(polled.hash(), "web", at(t)).await.unwrap(),
            Validity::Current(_)
        ));
        assert_eq!(state(h, &used, "web", at(t)).await, "current");
    }
    assert!(matches!(
        h.store.peek(polled.hash(), "web", at(101)).await.unwrap(),
        Validity::Expired(_)
    ));
    assert_eq!(state(h, &polled, "web", at(101)).await, "unknown");
    assert_eq!(state(h, &used, "web", at(150)).await, "current");
}

pub async fn ticket_not_before_only_moves_forward(h: &Harness) {
    let s = &h.store.tickets;
    assert_eq!(s.ticket_not_before("web", "nb-user").await.unwrap(), None);
    assert_eq!(
        s.raise_ticket_not_before("web", "nb-user", at(100))
            .await
            .unwrap(),
        at(100)
    );
    assert_eq!(
        s.raise_ticket_not_before("web", "nb-user", at(50))
            .await
            .unwrap(),
        at(100),
        "an earlier time does not undo a revocation"
    );
    assert_eq!(
        s.ticket_not_before("web", "nb-user").await.unwrap(),
        Some(at(100))
    );
    assert_eq!(s.ticket_not_before("other", "nb-user").await.unwrap(), None);
    assert_eq!(s.ticket_not_before("web", "nb-user2").await.unwrap(), None);
    // Kept apart from SessionKeyServer's key slots.
    assert_eq!(h.store.keys.get_key("nb-user").await.unwrap(), None);
}

/// A session kept alive past its *first* idle end must still be found by
/// everything that ends sessions: a new login in a superseding realm, the
/// user's list, ending one, ending all but the current one, ending all.
/// (The Redis index once scored sessions by their end as computed at login,
/// and the next login dropped them from it.)
pub async fn touched_sessions_stay_reachable(h: &Harness) {
    let idle = |supersede| RealmPolicy {
        idle_timeout: Some(Duration::from_secs(100)),
        supersede,
        ..sks()
    };
    let keep_busy = |t: Token| async move {
        for s in [60, 120, 180] {
            assert_eq!(state(h, &t, "web", at(s)).await, "current", "busy at {s}");
        }
        t
    };

    // supersede
    let old = keep_busy(issue(h, "web", "sup", idle(true), at(0)).await).await;
    let new = issue(h, "web", "sup", idle(true), at(190)).await;
    assert_eq!(state(h, &old, "web", at(191)).await, "superseded");
    assert_eq!(state(h, &new, "web", at(191)).await, "current");

    // ending everything of the user
    let busy = keep_busy(issue(h, "web", "all", idle(false), at(0)).await).await;
    let _fresh = issue(h, "web", "all", idle(false), at(190)).await;
    h.store.end_user_sessions("all", at(191)).await.unwrap();
    assert_eq!(state(h, &busy, "web", at(192)).await, "unknown");

    let Some(users) = &h.store.users else {
        return;
    };
    let a = keep_busy(issue(h, "web", "alice", idle(false), at(0)).await).await;
    let b = keep_busy(issue(h, "web", "alice", idle(false), at(0)).await).await;
    let c = issue(h, "web", "alice", idle(false), at(190)).await;
    let listed: Vec<_> = users
        .list_user_sessions("web", "alice", at(191))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed.len(), 3, "the busy sessions are listed");
    assert!(listed.contains(&a.hash()) && listed.contains(&b.hash()));
    assert!(h
        .store
        .revoke(a.hash(), "web", at(192))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        users
            .revoke_user_sessions("web", "alice", Some(c.hash()), at(193))
            .await
            .unwrap(),
        1,
        "all but the current one"
    );
    assert_eq!(state(h, &b, "web", at(194)).await, "unknown");
    assert_eq!(state(h, &c, "web", at(194)).await, "current");
    let d = keep_busy(issue(h, "web", "dave", idle(false), at(0)).await).await;
    let _ = issue(h, "web", "dave", idle(false), at(190)).await;
    assert_eq!(
        users
            .revoke_user_sessions("web", "dave", None, at(191))
            .await
            .unwrap(),
        2,
        "revoke-all counts the busy session"
    );
    assert_eq!(state(h, &d, "web", at(192)).await, "unknown");
}

/// A password change or a deleted account ends every session of the user,
/// in every realm, on every store; other users' sessions and the user's
/// later logins are untouched.
pub async fn ending_a_user_reaches_every_realm(h: &Harness) {
    let browser = RealmPolicy {
        supersede: false,
        ..sks()
    };
    let web1 = issue(h, "web", "erin", browser.clone(), at(0)).await;
    let web2 = issue(h, "web", "erin", browser.clone(), at(1)).await;
    let rc = issue(h, "rc", "erin", sks(), at(2)).await;
    let other_user = issue(h, "web", "frank", browser.clone(), at(2)).await;
    let ended = h.store.end_user_sessions("erin", at(3)).await.unwrap();
    if h.enumerates {
        assert_eq!(ended, Some(3));
    }
    for (t, realm) in [(&web1, "web"), (&web2, "web"), (&rc, "rc")] {
        assert_eq!(state(h, t, realm, at(4)).await, "unknown");
    }
    assert_eq!(state(h, &other_user, "web", at(4)).await, "current");
    let again = issue(h, "web", "erin", browser, at(5)).await;
    assert_eq!(
        state(h, &again, "web", at(6)).await,
        "current",
        "a new login works"
    );
    let again_rc = issue(h, "rc", "erin", sks(), at(6)).await;
    assert_eq!(state(h, &again_rc, "rc", at(7)).await, "current");
    // A second end reaches the new sessions too.
    h.store.end_user_sessions("erin", at(8)).await.unwrap();
    assert_eq!(state(h, &again, "web", at(9)).await, "unknown");
    assert_eq!(state(h, &again_rc, "rc", at(9)).await, "unknown");
}

/// Many revocations at once, each with its own time: the latest wins
/// whatever the order they land in (a read-then-write could move it back).
pub async fn racing_ticket_revocations_keep_the_latest(h: &Harness) {
    for round in 0..8 {
        let user = format!("racer{round}");
        let mut tasks = Vec::new();
        for i in 1..=24 {
            let store = h.store.tickets.clone();
            let user = user.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .raise_ticket_not_before("web", &user, at(i))
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap() >= at(1));
        }
        assert_eq!(
            h.store
                .tickets
                .ticket_not_before("web", &user)
                .await
                .unwrap(),
            Some(at(24)),
            "round {round}"
        );
    }
}

/// Stores shared by several instances count failed logins for all of them,
/// atomically: 24 failures at once count 24.
pub async fn shared_failure_counts(h: &Harness) {
    use sessiond_core::limiter::Backoff;
    let Some(counters) = h.store.failures.clone() else {
        assert!(
            matches!(h.store.kind(), "memory" | "file"),
            "a shared store keeps failure counts"
        );
        return;
    };
    let backoff = Backoff {
        free_failures: 3,
        window: Duration::from_secs(300),
    };
    let key = "u\u{1f}web\u{1f}alice";
    assert_eq!(counters.failures(key).await.unwrap(), None);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            counters
                .record_failure(key, &backoff, at(10))
                .await
                .unwrap()
                .count
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=24).collect::<Vec<u32>>(),
        "each failure counted once"
    );
    let f = counters.failures(key).await.unwrap().unwrap();
    assert_eq!((f.count, f.last), (24, at(10)));
    assert!(backoff.wait(f, at(10)).is_some());
    // After the window without failures, the count starts over.
    let f = counters
        .record_failure(key, &backoff, at(10 + 300))
        .await
        .unwrap();
    assert_eq!(f.count, 1);
    counters.clear_failures(key).await.unwrap();
    assert_eq!(counters.failures(key).await.unwrap(), None);
    assert_eq!(counters.failures("a\u{1f}192.0.2.1").await.unwrap(), None);
}

/// Checks racing at different times each refresh the idle end; whatever
/// order their writes land in, the session lasts from the latest, also for
/// the sweep (PostgreSQL once wrote each touch's end as it was, so a slower
/// touch could pull the stored end back, and the sweep deleted a live
/// session).
pub async fn racing_touches_never_shorten_a_session(h: &Harness) {
    let idle = RealmPolicy {
        idle_timeout: Some(Duration::from_secs(100)),
        ..sks()
    };
    for round in 0..4 {
        let user = format!("toucher{round}");
        let t = issue(h, "web", &user, idle.clone(), at(0)).await;
        let mut tasks = Vec::new();
        for i in (10..=33).rev() {
            let (store, id) = (h.store.clone(), t.hash());
            tasks.push(tokio::spawn(async move {
                store.validate(id, "web", at(i)).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // The latest check was at 33. Last access is written at most every
        // tenth of the idle time, so it is at least 24 and the session lasts
        // at least until 124 — for checks and for the sweep alike.
        h.store.purge(at(123)).await.unwrap();
        assert_eq!(
            state(h, &t, "web", at(123)).await,
            "current",
            "round {round}: the sweep kept it"
        );
    }
}

/// A check that finds a session past its end says so once (the server
/// records it as an audit event), then the token is simply unknown. A
/// session that ended otherwise — superseded past the retention, or ended
/// with its user — is not reported as expired.
pub async fn expiry_is_reported_once(h: &Harness) {
    let idle = RealmPolicy {
        idle_timeout: Some(Duration::from_secs(100)),
        supersede: false,
        ..sks()
    };
    let t = issue(h, "web", "alice", idle, at(0)).await;
    match h.store.validate(t.hash(), "web", at(101)).await.unwrap() {
        Validity::Expired(r) => {
            assert_eq!(r.identity.user, "alice");
            assert_eq!(r.identity.source, "auth/test");
        }
        other => panic!("expired on sight: {other:?}"),
    }
    assert!(matches!(
        h.store.validate(t.hash(), "web", at(102)).await.unwrap(),
        Validity::Unknown
    ));

    let old = issue(h, "rc", "carol", sks(), at(0)).await;
    issue(h, "rc", "carol", sks(), at(1)).await;
    let later = Timestamp(at(1).0 + RETENTION.as_secs() as i64 + 1);
    assert!(matches!(
        h.store.validate(old.hash(), "rc", later).await.unwrap(),
        Validity::Unknown
    ));
}
