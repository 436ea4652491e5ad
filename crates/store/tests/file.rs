//! The conformance suite on the embedded file store, plus what only a file
//! store must show: sessions survive closing and reopening.

mod conformance;

use conformance::{login, Harness, RETENTION};
use sessiond_core::session::Validity;
use sessiond_core::{RealmPolicy, Timestamp, Token};
use sessiond_store::{FileStore, KeySlots, SessionStore, StoreOptions, UserSessions};
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
        store: store.into_store(),
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

/// A store in `dir` holding one session of alice in realm `rc` and a key
/// slot, closed again; the session's token.
async fn stored_alice(dir: &std::path::Path) -> Token {
    let t = Token::generate();
    let store = FileStore::open(dir, options()).unwrap();
    store
        .create(
            t.hash(),
            login("rc", "alice", RealmPolicy::default()),
            Timestamp(0),
        )
        .await
        .unwrap();
    store.put_key("slot", "key").await.unwrap();
    t
}

#[tokio::test]
async fn sessions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let t = stored_alice(dir.path()).await;
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

/// The database holds keys and session data: created private, and refused
/// when others can read it.
#[test]
fn data_directory_and_file_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let store = FileStore::open(&dir, options()).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(store.path()), 0o600);
    let db = store.path().to_owned();
    drop(store);

    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = FileStore::open(&dir, options()).err().unwrap().to_string();
    assert!(
        err.contains("open to other users") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();

    for (mode, why) in [
        (0o602, "writable by others"),
        (0o660, "writable by the group"),
    ] {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(mode)).unwrap();
        assert!(FileStore::open(&dir, options()).is_err(), "{why}");
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    FileStore::open(&dir, options()).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = FileStore::open(&dir, options()).err().unwrap().to_string();
    assert!(err.contains("writable by other users"), "{err}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    FileStore::open(&dir, options()).unwrap();
}

/// A database written before the per-user index existed gets one on open.
#[tokio::test]
async fn the_user_index_is_built_for_an_older_database() {
    let dir = tempfile::tempdir().unwrap();
    let t = stored_alice(dir.path()).await;
    {
        // Empty the index as an older version would have left it.
        let db = redb::Database::create(dir.path().join(sessiond_store::file::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<&str, ()>::new("user_sessions"))
            .unwrap();
        txn.commit().unwrap();
    }
    let store = FileStore::open(dir.path(), options()).unwrap();
    let listed = store
        .list_user_sessions("rc", "alice", Timestamp(1))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, t.hash());
}
