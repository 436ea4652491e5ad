//! The memory store against the file store under random operations: the
//! memory store keeps sessions in a compact layout of its own (slabs, names
//! by number, per-user entries dropped with the last session), and any
//! divergence from the plain record-per-key file store is a bug in it.

use proptest::prelude::*;
use sessiond_core::session::{SessionRecord, Validity};
use sessiond_core::{Identity, NewSession, RealmPolicy, Timestamp, Token};
use sessiond_store::{FileStore, MemoryStore, Store, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

const USERS: [&str; 3] = ["alice", "bob", "a-rather-long-user-name-beyond-24-bytes"];
const REALMS: [&str; 2] = ["rc", "web"];

#[derive(Debug, Clone)]
enum Op {
    Login {
        user: usize,
        realm: usize,
        supersede: bool,
        idle: bool,
        extras: bool,
    },
    Check(usize, usize),
    Peek(usize, usize),
    Revoke(usize, usize),
    Replace(usize, usize),
    WriteData(usize),
    EndUser(usize),
    RevokeUser(usize, usize, Option<usize>),
    List(usize, usize),
    Purge,
    Wait(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..2usize, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(user, realm, supersede, idle, extras)| Op::Login { user, realm, supersede, idle, extras }
        ),
        3 => (0..16usize, 0..2usize).prop_map(|(t, r)| Op::Check(t, r)),
        1 => (0..16usize, 0..2usize).prop_map(|(t, r)| Op::Peek(t, r)),
        1 => (0..16usize, 0..2usize).prop_map(|(t, r)| Op::Revoke(t, r)),
        1 => (0..16usize, 0..2usize).prop_map(|(t, r)| Op::Replace(t, r)),
        1 => (0..16usize).prop_map(Op::WriteData),
        1 => (0..3usize).prop_map(Op::EndUser),
        1 => (0..3usize, 0..2usize, proptest::option::of(0..16usize))
            .prop_map(|(u, r, k)| Op::RevokeUser(u, r, k)),
        1 => (0..3usize, 0..2usize).prop_map(|(u, r)| Op::List(u, r)),
        1 => Just(Op::Purge),
        2 => any::<u8>().prop_map(Op::Wait),
    ]
}

/// What both stores must agree on. A user's supersede generation is left
/// out: the memory store forgets a user's counter with their last session
/// (it then orders nothing), the file store keeps it.
fn comparable(r: &SessionRecord) -> SessionRecord {
    SessionRecord {
        generation: 0,
        ..r.clone()
    }
}

fn answer(v: Validity) -> String {
    match v {
        Validity::Current(r) => format!("current {:?}", comparable(&r)),
        Validity::Superseded(r) => format!("superseded {:?}", comparable(&r)),
        Validity::Expired(r) => format!("expired {:?}", comparable(&r)),
        Validity::Unknown => "unknown".into(),
    }
}

async fn apply(store: &Store, tokens: &[Token], fresh: &Token, op: &Op, now: Timestamp) -> String {
    let pick = |tokens: &[Token], i: usize| tokens.get(i % tokens.len().max(1)).cloned();
    match *op {
        Op::Login {
            user,
            realm,
            supersede,
            idle,
            extras,
        } => {
            let policy = RealmPolicy {
                supersede,
                idle_timeout: idle.then_some(Duration::from_secs(100)),
                max_lifetime: Some(Duration::from_secs(600)),
                ..RealmPolicy::default()
            };
            let mut identity = Identity::new(USERS[user], if extras { "auth/ldap" } else { "pam" });
            if extras {
                identity.uid = Some(1000 + user as u32);
                identity = identity.with_groups(["ops".to_owned()]);
            }
            let new = NewSession {
                realm: REALMS[realm].into(),
                identity,
                policy,
                credential_end: extras.then_some(Timestamp(now.0 + 900)),
                client_addr: extras.then(|| "2001:db8::1".parse().unwrap()),
                device: extras.then(|| "curl".into()),
                credentials: extras.then(|| "c2VhbGVk".into()),
            };
            let r = store.create(fresh.hash(), new, now).await.unwrap();
            format!("created {:?}", comparable(&r))
        }
        Op::Check(t, realm) | Op::Peek(t, realm) => {
            let Some(token) = pick(tokens, t) else {
                return String::new();
            };
            let v = if matches!(op, Op::Check(..)) {
                store.validate(token.hash(), REALMS[realm], now).await
            } else {
                store.peek(token.hash(), REALMS[realm], now).await
            };
            answer(v.unwrap())
        }
        Op::Revoke(t, realm) => {
            let Some(token) = pick(tokens, t) else {
                return String::new();
            };
            let r = store
                .revoke(token.hash(), REALMS[realm], now)
                .await
                .unwrap();
            format!("revoked {:?}", r.as_ref().map(comparable))
        }
        Op::Replace(t, realm) => {
            let Some(token) = pick(tokens, t) else {
                return String::new();
            };
            let r = store
                .replace(token.hash(), fresh.hash(), REALMS[realm], now)
                .await
                .unwrap();
            format!("replaced {:?}", r.as_ref().map(comparable))
        }
        Op::WriteData(t) => {
            let Some(token) = pick(tokens, t) else {
                return String::new();
            };
            let Some((mut data, version)) = store.read_data(token.hash(), "rc", now).await.unwrap()
            else {
                return "no data".into();
            };
            data.insert(format!("k{version}"), serde_json::json!(version));
            let w = store
                .write_data(token.hash(), "rc", version, data, now)
                .await
                .unwrap();
            format!("{w:?}")
        }
        Op::EndUser(u) => {
            format!(
                "ended {:?}",
                store.end_user_sessions(USERS[u], now).await.unwrap()
            )
        }
        Op::RevokeUser(u, realm, keep) => {
            let keep = keep.and_then(|k| pick(tokens, k)).map(|t| t.hash());
            let users = store.users.as_ref().unwrap();
            let n = users
                .revoke_user_sessions(REALMS[realm], USERS[u], keep, now)
                .await;
            format!("revoked {:?}", n.unwrap())
        }
        Op::List(u, realm) => {
            let users = store.users.as_ref().unwrap();
            let listed = users
                .list_user_sessions(REALMS[realm], USERS[u], now)
                .await
                .unwrap();
            let listed: Vec<_> = listed
                .iter()
                .map(|s| (s.id, comparable(&s.record), s.superseded))
                .collect();
            format!("{listed:?}")
        }
        Op::Purge => format!("purged {:?}", store.purge(now).await.unwrap()),
        Op::Wait(_) => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_answers_as_the_file_store(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let opts = StoreOptions {
                superseded_retention: Duration::from_secs(300),
                touch_interval: Duration::from_secs(10),
            };
            let dir = tempfile::tempdir().unwrap();
            let file = Arc::new(FileStore::open(dir.path(), opts.clone()).unwrap()).into_store();
            let memory = Arc::new(MemoryStore::new(opts));
            let mem = memory.clone().into_store();
            let mut tokens = Vec::new();
            let mut now = Timestamp(1_700_000_000);
            for op in &ops {
                if let Op::Wait(s) = op {
                    now = Timestamp(now.0 + i64::from(*s));
                }
                let fresh = Token::generate();
                let got = apply(&mem, &tokens, &fresh, op, now).await;
                let want = apply(&file, &tokens, &fresh, op, now).await;
                prop_assert_eq!(got, want, "after {:?}", op);
                if matches!(op, Op::Login { .. } | Op::Replace(..)) {
                    tokens.push(fresh);
                }
            }
            // ending everything leaves nothing behind: no user entry, no name
            for user in USERS {
                mem.end_user_sessions(user, now).await.unwrap();
            }
            prop_assert_eq!(memory.len(), 0);
            let dump = memory.dump();
            for left in ["alice", "bob", "\"rc\"", "\"web\"", "\"pam\"", "auth/ldap"] {
                prop_assert!(!dump.contains(left), "{} left behind: {}", left, dump);
            }
            Ok(())
        })?;
    }
}
