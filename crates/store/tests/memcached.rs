//! The conformance suite on memcached, over TCP (`SESSIOND_TEST_MEMCACHED`)
//! and over a UNIX socket (`SESSIOND_TEST_MEMCACHED_SOCKET`); `scripts/test.sh`
//! starts both servers. Each harness uses its own key prefix.

mod conformance;

use conformance::{login, service_url, Harness, RETENTION};
use sessiond_core::session::Validity;
use sessiond_core::RealmPolicy;
use sessiond_store::{MemcachedStore, SessionStore, StoreOptions};
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;

/// Every key under `prefix` and its value, found with `lru_crawler metadump`
/// (memcached's only way to list keys) and read back with `get`.
fn dump(address: &str, prefix: &str) -> String {
    fn talk<S: std::io::Read + Write>(stream: S, prefix: &str) -> String {
        let mut reader = BufReader::new(stream);
        reader
            .get_mut()
            .write_all(b"lru_crawler metadump all\r\n")
            .unwrap();
        let mut keys = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line.starts_with("END") {
                break;
            }
            if let Some(rest) = line.strip_prefix("key=") {
                let key = rest.split_whitespace().next().unwrap_or("");
                let key = percent_decode(key);
                if key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        let mut out = String::new();
        for key in keys {
            reader
                .get_mut()
                .write_all(format!("get {key}\r\n").as_bytes())
                .unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line.starts_with("END") {
                    break;
                }
                out.push_str(&line);
            }
        }
        out
    }
    if let Some(path) = address.strip_prefix("unix://") {
        talk(
            std::os::unix::net::UnixStream::connect(path).unwrap(),
            prefix,
        )
    } else {
        let hostport = address.trim_start_matches("memcache://");
        talk(std::net::TcpStream::connect(hostport).unwrap(), prefix)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn harness_for(address: String) -> Harness {
    let prefix = format!("sessiond-test-{}", sessiond_core::token::random_hex(6));
    let store = Arc::new(
        MemcachedStore::connect(
            &address,
            &prefix,
            StoreOptions {
                superseded_retention: RETENTION,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("connect to memcached"),
    );
    Harness {
        store: store.into_store(),
        dump: Box::new(move || {
            let (a, p) = (address.clone(), prefix.clone());
            Box::pin(async move {
                tokio::task::spawn_blocking(move || dump(&a, &p))
                    .await
                    .unwrap()
                    .into_bytes()
            })
        }),
        guard: Box::new(()),
        sweeps: false,
        enumerates: false,
    }
}

async fn tcp() -> Option<Harness> {
    Some(harness_for(service_url("SESSIOND_TEST_MEMCACHED", None)?).await)
}

async fn unix_socket() -> Option<Harness> {
    let path = service_url("SESSIOND_TEST_MEMCACHED_SOCKET", None)?;
    Some(harness_for(format!("unix://{path}")).await)
}

mod tcp {
    use super::*;
    conformance_suite!(tcp);
}

mod unix_socket {
    use super::*;
    conformance_suite!(unix_socket);
}

/// The suite through a near cache (memcached has no invalidations: the
/// cache keeps answers for `max_age`; this instance's own writes still
/// invalidate at once, which is all the suite can see).
async fn tcp_cached() -> Option<Harness> {
    let mut h = tcp().await?;
    let config = sessiond_store::NearCacheConfig {
        capacity: 1000,
        max_age: std::time::Duration::from_secs(1),
    };
    let (store, inv) = h
        .store
        .clone()
        .with_near_cache(config, &StoreOptions::default());
    inv.restored();
    h.store = store;
    Some(h)
}

mod near_cache {
    use super::*;
    conformance_suite!(tcp_cached);
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let err = MemcachedStore::connect("127.0.0.1:1", "p", StoreOptions::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("memcached"), "{err}");
}

/// A check is one `gets` (session, generation and epoch together) once the
/// instance knows whose session it is; an instance that never saw the
/// session learns that with one more round trip, the first time only.
#[tokio::test]
async fn a_check_is_one_round_trip() {
    let Some(address) = service_url("SESSIOND_TEST_MEMCACHED", None) else {
        return;
    };
    let prefix = format!("sessiond-test-{}", sessiond_core::token::random_hex(6));
    let open = || MemcachedStore::connect(&address, &prefix, StoreOptions::default());
    let (issuer, other) = (open().await.unwrap(), open().await.unwrap());
    let now = sessiond_core::Timestamp(1_700_000_000);
    let token = sessiond_core::Token::generate();
    issuer
        .create(
            token.hash(),
            login("rc", "alice", RealmPolicy::default()),
            now,
        )
        .await
        .unwrap();
    for (store, first, then) in [(&issuer, 1, 1), (&other, 2, 1)] {
        for expected in [first, then, then] {
            let before = store.commands_sent();
            let v = store.peek(token.hash(), "rc", now).await.unwrap();
            assert!(matches!(v, Validity::Current(_)), "{v:?}");
            assert_eq!(store.commands_sent() - before, expected);
        }
    }
    // a superseding login elsewhere is seen by the one round trip
    other
        .create(
            sessiond_core::Token::generate().hash(),
            login("rc", "alice", RealmPolicy::default()),
            now,
        )
        .await
        .unwrap();
    let before = issuer.commands_sent();
    let v = issuer.peek(token.hash(), "rc", now).await.unwrap();
    assert!(matches!(v, Validity::Superseded(_)), "{v:?}");
    assert_eq!(issuer.commands_sent() - before, 1);
}
