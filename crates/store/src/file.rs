//! The embedded file store: one redb database file, crash-safe.
//!
//! Every operation that issues, revokes or replaces a session, or writes data,
//! keys or groups, commits with `Durability::Immediate` (fsync) before it
//! returns, so an acknowledged token survives `kill -9` and power loss.
//! Refreshing `last_access` and purging commit without fsync: losing them in a
//! crash only makes a session look a little older, or gets it purged again.
//! See docs/decisions/0002-file-store-redb.md for why redb.

use crate::ops::{self, role_key, user_key, Txn};
use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};
use crate::{Access, Store};
use crate::{SessionStore, StoreError, StoreResult};
use async_trait::async_trait;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use sessiond_core::session::{is_purgeable, SessionData, SessionRecord, UserState, Validity};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const KEYS: TableDefinition<&str, &str> = TableDefinition::new("keys");
const GROUP_KEYS: TableDefinition<&str, &str> = TableDefinition::new("group_keys");
const ROLES: TableDefinition<&str, &str> = TableDefinition::new("group_roles");
/// The per-user index: one empty entry per session, keyed `user \0 id-hex`,
/// so a user's sessions are one range read (names never hold a control
/// character). Written in the same transaction as the session itself.
const USER_INDEX: TableDefinition<&str, ()> = TableDefinition::new("user_sessions");

fn index_key(user: &str, id: &TokenHash) -> String {
    format!("{user}\0{}", id.to_hex())
}

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "sessions.redb";

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

// Reads shared by read and write transactions: one function per table,
// generic over redb's read-only and writable table types.

fn session_in(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &TokenHash,
) -> StoreResult<Option<SessionRecord>> {
    let value = t.get(id.0.as_slice()).map_err(unavailable)?;
    value.map(|v| decode("session", v.value())).transpose()
}

fn user_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    realm: &str,
    user: &str,
) -> StoreResult<UserState> {
    let value = t.get(user_key(realm, user).as_str()).map_err(unavailable)?;
    Ok(value
        .map(|v| decode("user", v.value()))
        .transpose()?
        .unwrap_or_default())
}

fn text_in(
    t: &impl ReadableTable<&'static str, &'static str>,
    key: &str,
) -> StoreResult<Option<String>> {
    let value = t.get(key).map_err(unavailable)?;
    Ok(value.map(|v| v.value().to_owned()))
}

fn role_in(
    t: &impl ReadableTable<&'static str, &'static str>,
    group: &str,
    realm: &str,
    user: &str,
) -> StoreResult<Option<GroupRole>> {
    Ok(text_in(t, &role_key(group, realm, user))?
        .as_deref()
        .and_then(GroupRole::parse))
}

/// Every record of `user` in any realm, through the per-user index.
fn sessions_of_user_in(
    index: &impl ReadableTable<&'static str, ()>,
    sessions: &impl ReadableTable<&'static [u8], &'static [u8]>,
    user: &str,
) -> StoreResult<Vec<(TokenHash, SessionRecord)>> {
    let from = format!("{user}\0");
    let to = format!("{user}\u{1}");
    let mut found = Vec::new();
    for entry in index
        .range::<&str>(from.as_str()..to.as_str())
        .map_err(unavailable)?
    {
        let (k, _) = entry.map_err(unavailable)?;
        let Some(id) = k.value().get(from.len()..).and_then(TokenHash::from_hex) else {
            continue;
        };
        // A record that cannot be read is left to whoever reads it by its
        // id (it reports the corruption): it must not stop the user's other
        // sessions from being listed or ended.
        if let Ok(Some(record)) = session_in(sessions, &id) {
            found.push((id, record));
        }
    }
    Ok(found)
}

/// Reads through a read transaction. Writes are not applied: they only note
/// that the operation must be run again inside a write transaction. Most
/// validations write nothing, so they never wait for the single writer.
struct Reading {
    txn: redb::ReadTransaction,
    wants_write: bool,
}

/// Reads and writes through one write transaction.
struct Writing<'a> {
    txn: &'a redb::WriteTransaction,
}

/// Opens a table of a read or write transaction (read-only or writable,
/// as the transaction allows), mapping redb's error to `Unavailable`.
macro_rules! open_table {
    ($txn:expr, $def:expr) => {
        $txn.open_table($def).map_err(unavailable)?
    };
}

impl Txn for Reading {
    fn session(&mut self, id: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        session_in(&open_table!(self.txn, SESSIONS), id)
    }
    fn put_session(&mut self, _: &TokenHash, _: &SessionRecord) -> StoreResult<()> {
        self.wants_write = true;
        Ok(())
    }
    fn delete_session(&mut self, _: &TokenHash) -> StoreResult<()> {
        self.wants_write = true;
        Ok(())
    }
    fn sessions_of_user(&mut self, user: &str) -> StoreResult<Vec<(TokenHash, SessionRecord)>> {
        let index = open_table!(self.txn, USER_INDEX);
        sessions_of_user_in(&index, &open_table!(self.txn, SESSIONS), user)
    }
    fn user(&mut self, realm: &str, user: &str) -> StoreResult<UserState> {
        user_in(&open_table!(self.txn, USERS), realm, user)
    }
    fn put_user(&mut self, _: &str, _: &str, _: UserState) -> StoreResult<()> {
        self.wants_write = true;
        Ok(())
    }
    fn key(&mut self, slot: &str) -> StoreResult<Option<String>> {
        text_in(&open_table!(self.txn, KEYS), slot)
    }
    fn put_key(&mut self, _: &str, _: &str) -> StoreResult<()> {
        self.wants_write = true;
        Ok(())
    }
    fn group_key(&mut self, group: &str) -> StoreResult<Option<String>> {
        text_in(&open_table!(self.txn, GROUP_KEYS), group)
    }
    fn put_group_key(&mut self, _: &str, _: &str) -> StoreResult<()> {
        self.wants_write = true;
        Ok(())
    }
    fn role(&mut self, group: &str, realm: &str, user: &str) -> StoreResult<Option<GroupRole>> {
        role_in(&open_table!(self.txn, ROLES), group, realm, user)
    }
    fn set_role(&mut self, _: &str, _: &str, _: &str, _: Option<GroupRole>) -> StoreResult<()> {
        self.wants_write = true;
        Ok(())
    }
}

impl Txn for Writing<'_> {
    fn session(&mut self, id: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        session_in(&open_table!(self.txn, SESSIONS), id)
    }
    fn put_session(&mut self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()> {
        let mut table = open_table!(self.txn, SESSIONS);
        let is_new = table
            .insert(id.0.as_slice(), encode(record).as_slice())
            .map_err(unavailable)?
            .is_none();
        if is_new {
            let mut index = open_table!(self.txn, USER_INDEX);
            index
                .insert(index_key(&record.identity.user, id).as_str(), ())
                .map_err(unavailable)?;
        }
        Ok(())
    }
    fn delete_session(&mut self, id: &TokenHash) -> StoreResult<()> {
        let mut table = open_table!(self.txn, SESSIONS);
        let old = table.remove(id.0.as_slice()).map_err(unavailable)?;
        // An undecodable record has no index entry to find; the entry of a
        // record that cannot be read is skipped by readers.
        if let Some(Ok(record)) = old.map(|v| decode::<SessionRecord>("session", v.value())) {
            let mut index = open_table!(self.txn, USER_INDEX);
            index
                .remove(index_key(&record.identity.user, id).as_str())
                .map_err(unavailable)?;
        }
        Ok(())
    }
    fn sessions_of_user(&mut self, user: &str) -> StoreResult<Vec<(TokenHash, SessionRecord)>> {
        let index = open_table!(self.txn, USER_INDEX);
        sessions_of_user_in(&index, &open_table!(self.txn, SESSIONS), user)
    }
    fn user(&mut self, realm: &str, user: &str) -> StoreResult<UserState> {
        user_in(&open_table!(self.txn, USERS), realm, user)
    }
    fn put_user(&mut self, realm: &str, user: &str, state: UserState) -> StoreResult<()> {
        let mut table = open_table!(self.txn, USERS);
        table
            .insert(user_key(realm, user).as_str(), encode(&state).as_slice())
            .map_err(unavailable)?;
        Ok(())
    }
    fn key(&mut self, slot: &str) -> StoreResult<Option<String>> {
        text_in(&open_table!(self.txn, KEYS), slot)
    }
    fn put_key(&mut self, slot: &str, key: &str) -> StoreResult<()> {
        let mut table = open_table!(self.txn, KEYS);
        table.insert(slot, key).map_err(unavailable)?;
        Ok(())
    }
    fn group_key(&mut self, group: &str) -> StoreResult<Option<String>> {
        text_in(&open_table!(self.txn, GROUP_KEYS), group)
    }
    fn put_group_key(&mut self, group: &str, key: &str) -> StoreResult<()> {
        let mut table = open_table!(self.txn, GROUP_KEYS);
        table.insert(group, key).map_err(unavailable)?;
        Ok(())
    }
    fn role(&mut self, group: &str, realm: &str, user: &str) -> StoreResult<Option<GroupRole>> {
        role_in(&open_table!(self.txn, ROLES), group, realm, user)
    }
    fn set_role(
        &mut self,
        group: &str,
        realm: &str,
        user: &str,
        role: Option<GroupRole>,
    ) -> StoreResult<()> {
        let mut table = open_table!(self.txn, ROLES);
        let k = role_key(group, realm, user);
        match role {
            Some(r) => table.insert(k.as_str(), r.as_str()).map(|_| ()),
            None => table.remove(k.as_str()).map(|_| ()),
        }
        .map_err(unavailable)
    }
}

struct Inner {
    db: Database,
    opts: StoreOptions,
    path: PathBuf,
}

impl Inner {
    /// Runs `op` in one write transaction and commits it.
    fn write<T>(
        &self,
        durable: bool,
        op: impl FnOnce(&mut dyn Txn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut txn = self.db.begin_write().map_err(unavailable)?;
        if !durable {
            txn.set_durability(Durability::None).map_err(unavailable)?;
        }
        let result = op(&mut Writing { txn: &txn })?;
        txn.commit().map_err(unavailable)?;
        Ok(result)
    }
}

/// Refuses `path` when its mode has any of the `forbidden` bits, saying what
/// the `problem` is and which `chmod` fixes it.
fn refuse_mode(path: &Path, forbidden: u32, problem: &str, fix: &str) -> StoreResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & forbidden != 0 {
        return Err(StoreError::Open(format!(
            "{} {problem} (mode {:o}); run `chmod {fix} {}` and start again",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// A crash-safe session store in one file (`<dir>/sessions.redb`).
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir`.
    ///
    /// A new directory is created 0700 and the database file 0600: the file
    /// holds `/gen_key` keys, group keys, user names, addresses and session
    /// data. A database file that others can read or write, or its group
    /// write, is refused with the `chmod` that fixes it, rather than served
    /// from; so is a directory others or the group may write (they could
    /// replace the file). An existing directory may otherwise keep its mode
    /// (an operator's `mkdir` gives 0755, which shows only the file's name).
    pub fn open(dir: &Path, opts: StoreOptions) -> StoreResult<FileStore> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                StoreError::Open(format!(
                    "cannot create data directory {}: {e}",
                    dir.display()
                ))
            })?;
        // Others who may write the directory may replace the database.
        refuse_mode(
            dir,
            0o022,
            "is writable by other users: anyone could replace the database",
            "700",
        )?;
        let path = dir.join(DB_FILE);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::Open(format!("{}: {e}", path.display()))),
        }
        // Its group may read it (a backup group); nobody else may use it.
        refuse_mode(
            &path,
            0o027,
            "is open to other users (others may use it or the group may write it): \
             it holds keys and session data",
            "600",
        )?;
        let db = Database::create(&path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        let txn = db
            .begin_write()
            .map_err(|e| StoreError::Open(e.to_string()))?;
        {
            let open = |e: redb::TableError| StoreError::Open(format!("{}: {e}", path.display()));
            txn.open_table(SESSIONS).map_err(open)?;
            txn.open_table(USERS).map_err(open)?;
            txn.open_table(KEYS).map_err(open)?;
            txn.open_table(GROUP_KEYS).map_err(open)?;
            txn.open_table(ROLES).map_err(open)?;
            let sessions = txn.open_table(SESSIONS).map_err(open)?;
            let mut index = txn.open_table(USER_INDEX).map_err(open)?;
            // A database from before the index existed: build it once.
            let indexing = |e: redb::StorageError| {
                StoreError::Open(format!("{}: building the user index: {e}", path.display()))
            };
            if index.is_empty().map_err(indexing)? && !sessions.is_empty().map_err(indexing)? {
                for entry in sessions.iter().map_err(indexing)? {
                    let (k, v) = entry.map_err(indexing)?;
                    let (Ok(id), Ok(record)) = (
                        <[u8; 32]>::try_from(k.value()),
                        decode::<SessionRecord>("session", v.value()),
                    ) else {
                        continue;
                    };
                    index
                        .insert(
                            index_key(&record.identity.user, &TokenHash(id)).as_str(),
                            (),
                        )
                        .map_err(indexing)?;
                }
            }
        }
        txn.commit().map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(FileStore {
            inner: Arc::new(Inner { db, opts, path }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a read-mostly operation: first in a read transaction on the
    /// calling task — a read from redb's cache takes a few microseconds, less
    /// than the hop to the blocking pool (~16 µs here) — and only if it needs
    /// to write (refresh last-access, delete an expired record) again in a
    /// write transaction on the blocking pool, where waiting for the writer
    /// lock or the disk cannot stall the async executor. See
    /// docs/decisions/0006-inline-file-store-reads.md.
    async fn read_mostly<T: Send + 'static>(
        &self,
        op: impl Fn(&Inner, &mut dyn Txn) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        {
            let inner = &*self.inner;
            let mut reading = Reading {
                txn: inner.db.begin_read().map_err(unavailable)?,
                wants_write: false,
            };
            let result = op(inner, &mut reading)?;
            if !reading.wants_write {
                return Ok(result);
            }
        }
        self.blocking(move |i| i.write(false, |t| op(i, t))).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

impl FileStore {
    /// This store with the abilities it offers: it enumerates users' sessions.
    pub fn into_store(self: std::sync::Arc<Self>) -> Store {
        let s = self;
        Store::new(s.clone()).with_users(s)
    }
}

#[async_trait]
impl SessionStore for FileStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|i| i.db.begin_read().map(|_| ()).map_err(unavailable))
            .await
    }

    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord> {
        self.blocking(move |i| i.write(true, |t| ops::create(t, &id, new, now)))
            .await
    }

    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        let realm = realm.to_owned();
        self.read_mostly(move |i, t| ops::validate(t, &id, &realm, now, &i.opts, access))
            .await
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let realm = realm.to_owned();
        self.blocking(move |i| i.write(true, |t| ops::revoke(t, &id, &realm, now, &i.opts)))
            .await
    }

    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let realm = realm.to_owned();
        self.blocking(move |i| i.write(true, |t| ops::replace(t, &old, &new, &realm, now, &i.opts)))
            .await
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        let realm = realm.to_owned();
        self.read_mostly(move |i, t| ops::read_data(t, &id, &realm, now, &i.opts))
            .await
    }

    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite> {
        let realm = realm.to_owned();
        self.blocking(move |i| {
            i.write(true, |t| {
                ops::write_data(t, &id, &realm, expected_version, data, now, &i.opts)
            })
        })
        .await
    }

    async fn purge(&self, now: Timestamp) -> StoreResult<u64> {
        self.blocking(move |i| {
            let retention = i.opts.superseded_retention;
            // Find candidates without blocking writers, then delete each after
            // checking it again inside the write transaction.
            let mut candidates = Vec::new();
            {
                let txn = i.db.begin_read().map_err(unavailable)?;
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                let users = txn.open_table(USERS).map_err(unavailable)?;
                let mut user_cache: HashMap<String, UserState> = HashMap::new();
                for entry in sessions.iter().map_err(unavailable)? {
                    let (k, v) = entry.map_err(unavailable)?;
                    let Ok(record) = decode::<SessionRecord>("session", v.value()) else {
                        continue;
                    };
                    let uk = user_key(&record.realm, &record.identity.user);
                    let user = match user_cache.get(&uk) {
                        Some(u) => *u,
                        None => {
                            let u = user_in(&users, &record.realm, &record.identity.user)?;
                            user_cache.insert(uk, u);
                            u
                        }
                    };
                    if is_purgeable(&record, &user, now, retention) {
                        let mut id = [0u8; 32];
                        id.copy_from_slice(k.value());
                        candidates.push(TokenHash(id));
                    }
                }
            }
            if candidates.is_empty() {
                return Ok(0);
            }
            i.write(false, |t| {
                let mut deleted = 0;
                for id in &candidates {
                    let Some(record) = t.session(id)? else {
                        continue;
                    };
                    let user = t.user(&record.realm, &record.identity.user)?;
                    if is_purgeable(&record, &user, now, retention) {
                        t.delete_session(id)?;
                        deleted += 1;
                    }
                }
                Ok(deleted)
            })
        })
        .await
    }

    async fn end_user_sessions(&self, user: &str, _now: Timestamp) -> StoreResult<Option<u64>> {
        let user = user.to_owned();
        self.blocking(move |i| i.write(true, |t| ops::end_user_sessions(t, &user)))
            .await
            .map(Some)
    }
}

#[async_trait]
impl crate::UserSessions for FileStore {
    async fn list_user_sessions(
        &self,
        realm: &str,
        user: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSession>> {
        let (realm, user) = (realm.to_owned(), user.to_owned());
        self.read_mostly(move |i, t| ops::list_user_sessions(t, &realm, &user, now, &i.opts))
            .await
    }

    async fn revoke_user_sessions(
        &self,
        realm: &str,
        user: &str,
        keep: Option<TokenHash>,
        _now: Timestamp,
    ) -> StoreResult<u64> {
        let (realm, user) = (realm.to_owned(), user.to_owned());
        self.blocking(move |i| {
            i.write(true, |t| {
                ops::revoke_user_sessions(t, &realm, &user, keep.as_ref())
            })
        })
        .await
    }
}

#[async_trait]
impl crate::TicketMarks for FileStore {
    async fn raise_ticket_not_before(
        &self,
        realm: &str,
        user: &str,
        at: Timestamp,
    ) -> StoreResult<Timestamp> {
        let (realm, user) = (realm.to_owned(), user.to_owned());
        self.blocking(move |i| {
            i.write(true, |t| ops::raise_ticket_not_before(t, &realm, &user, at))
        })
        .await
    }
}

#[async_trait]
impl crate::KeySlots for FileStore {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>> {
        let slot = slot.to_owned();
        self.read_mostly(move |_, t| t.key(&slot)).await
    }

    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()> {
        let (slot, key) = (slot.to_owned(), key.to_owned());
        self.blocking(move |i| i.write(true, |t| t.put_key(&slot, &key)))
            .await
    }
}

#[async_trait]
impl crate::Groups for FileStore {
    async fn create_group(
        &self,
        group: &str,
        realm: &str,
        user: &str,
        key: &str,
    ) -> StoreResult<bool> {
        let (group, realm, user, key) = (
            group.to_owned(),
            realm.to_owned(),
            user.to_owned(),
            key.to_owned(),
        );
        self.blocking(move |i| i.write(true, |t| ops::create_group(t, &group, &realm, &user, &key)))
            .await
    }

    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>> {
        let (group, realm, user) = (group.to_owned(), realm.to_owned(), user.to_owned());
        self.read_mostly(move |_, t| t.role(&group, &realm, &user))
            .await
    }

    async fn group_key(&self, group: &str) -> StoreResult<Option<String>> {
        let group = group.to_owned();
        self.read_mostly(move |_, t| t.group_key(&group)).await
    }

    async fn update_group(
        &self,
        group: &str,
        realm: &str,
        caller: &str,
        changes: &[GroupChange],
    ) -> StoreResult<bool> {
        let (group, realm, caller) = (group.to_owned(), realm.to_owned(), caller.to_owned());
        let changes = changes.to_vec();
        self.blocking(move |i| {
            i.write(true, |t| {
                ops::update_group(t, &group, &realm, &caller, &changes)
            })
        })
        .await
    }
}
