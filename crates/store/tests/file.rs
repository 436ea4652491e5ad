//! The conformance suite on the embedded file store, plus what only a file
//! store must show: sessions survive closing and reopening.

mod conformance;

use conformance::{login, Harness, RETENTION};
use sessiond_core::session::Validity;
use sessiond_core::{RealmPolicy, Timestamp, Token};
use sessiond_store::{FileStore, SessionStore, StoreOptions};
use std::sync::Arc;

fn options() -> StoreOptions {
    StoreOptions {
        superseded_retention: RETENTION,
        ..StoreOptions::default()
    }
}

async fn harness() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path(), options()).unwrap());
    let path = store.path().to_owned();
    Some(Harness {
        store,
        dump: Box::new(move || {
            let path = path.clone();
            Box::pin(async move { std::fs::read(path).unwrap() })
        }),
        guard: Box::new(dir),
        sweeps: true,
        enumerates: true,
    })
}

conformance_suite!(harness);

#[tokio::test]
async fn sessions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let t = Token::generate();
    {
        let store = FileStore::open(dir.path(), options()).unwrap();
        store
            .create(
                t.hash(),
                login("rc", "alice", RealmPolicy::default()),
                Timestamp(0),
            )
            .await
            .unwrap();
        store.put_key("slot", "key").await.unwrap();
    }
    let store = FileStore::open(dir.path(), options()).unwrap();
    assert!(matches!(
        store.validate(t.hash(), "rc", Timestamp(1)).await.unwrap(),
        Validity::Current(_)
    ));
    assert_eq!(store.get_key("slot").await.unwrap().as_deref(), Some("key"));
}

#[test]
fn unusable_directory_is_a_clear_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = FileStore::open(&file.path().join("sub"), options())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("cannot create data directory"),
        "{err}"
    );
}
