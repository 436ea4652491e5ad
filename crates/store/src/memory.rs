//! The in-memory store: volatile, like SessionKeyServer without `-d`, but
//! every operation runs under one lock, so no update is lost and no reader
//! sees half of a replace.

use crate::ops::{self, role_key, user_key, write_user_key, Txn};
use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};
use crate::{Access, Store};
use crate::{SessionStore, StoreResult};
use async_trait::async_trait;
use parking_lot::Mutex;
use sessiond_core::session::{is_purgeable, SessionData, SessionRecord, UserState, Validity};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use std::collections::{HashMap, HashSet};

/// Number of sub-maps the sessions are spread over (by the first byte of the
/// token hash, which is uniformly distributed).
const SHARDS: usize = 256;

/// The session records, in [`SHARDS`] hash maps rather than one, so that the
/// sweep can work through them one shard at a time and a growing map never
/// rehashes a million entries in one go while requests wait.
///
/// Records are boxed: at a million entries a table runs about half full, and
/// empty buckets of inline records would cost ~200 bytes per live session
/// (docs/performance.md).
#[derive(Debug)]
struct Sessions(Vec<HashMap<TokenHash, Box<SessionRecord>>>);

impl Default for Sessions {
    fn default() -> Self {
        Sessions((0..SHARDS).map(|_| HashMap::new()).collect())
    }
}

impl Sessions {
    fn shard(&mut self, id: &TokenHash) -> &mut HashMap<TokenHash, Box<SessionRecord>> {
        &mut self.0[usize::from(id.0[0]) % SHARDS]
    }

    fn len(&self) -> usize {
        self.0.iter().map(HashMap::len).sum()
    }
}

/// The ids of one user name's sessions: most users have one session, kept
/// inline; a set only for those with several. (A set per user cost ~380
/// bytes per session at a million one-session users.)
#[derive(Debug)]
enum UserIds {
    One(TokenHash),
    /// Boxed so the common case stays small in the index's table: the
    /// extra allocation is paid only by users with several sessions, and
    /// every one-session user saves 16 bytes of table slot.
    #[allow(clippy::box_collection)]
    Many(Box<HashSet<TokenHash>>),
}

/// Session ids keyed by a keyed hash of the user name rather than the name
/// itself (no second copy of every name). Two names that share a hash share
/// an entry; readers keep only the records whose user matches, so a
/// collision costs a few extra lookups, never a wrong answer.
#[derive(Debug, Default)]
struct UserIndex {
    hasher: std::collections::hash_map::RandomState,
    ids: HashMap<u64, UserIds>,
}

impl UserIndex {
    fn key(&self, user: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(user)
    }

    fn add(&mut self, user: &str, id: TokenHash) {
        let key = self.key(user);
        match self.ids.get_mut(&key) {
            None => {
                self.ids.insert(key, UserIds::One(id));
            }
            Some(UserIds::One(one)) if *one != id => {
                let first = *one;
                self.ids
                    .insert(key, UserIds::Many(Box::new(HashSet::from([first, id]))));
            }
            Some(UserIds::One(_)) => {}
            Some(UserIds::Many(set)) => {
                set.insert(id);
            }
        }
    }

    fn remove(&mut self, user: &str, id: &TokenHash) {
        let key = self.key(user);
        let now_empty = match self.ids.get_mut(&key) {
            Some(UserIds::One(one)) => one == id,
            Some(UserIds::Many(set)) => {
                set.remove(id);
                if set.len() == 1 {
                    let last = *set.iter().next().expect("one left");
                    self.ids.insert(key, UserIds::One(last));
                }
                false
            }
            None => false,
        };
        if now_empty {
            self.ids.remove(&key);
        }
    }

    /// Ids that may be `user`'s (callers check the records' user).
    fn candidates(&self, user: &str) -> Vec<TokenHash> {
        match self.ids.get(&self.key(user)) {
            Some(UserIds::One(id)) => vec![*id],
            Some(UserIds::Many(set)) => set.iter().copied().collect(),
            None => Vec::new(),
        }
    }
}

#[derive(Default, Debug)]
struct Maps {
    sessions: Sessions,
    /// Session ids by user name (all realms): listing or ending one user's
    /// sessions looks here instead of scanning every session under the lock.
    /// Kept in step by `put_session`, `delete_session` and `purge`.
    by_user: UserIndex,
    /// Keyed by [`user_key`].
    users: HashMap<String, UserState>,
    keys: HashMap<String, String>,
    group_keys: HashMap<String, String>,
    /// Keyed by [`role_key`].
    roles: HashMap<String, GroupRole>,
}

impl Txn for Maps {
    fn session(&mut self, id: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .sessions
            .shard(id)
            .get(id)
            .map(|r| SessionRecord::clone(r)))
    }
    fn put_session(&mut self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()> {
        let old = self
            .sessions
            .shard(id)
            .insert(*id, Box::new(record.clone()));
        if old.is_none() {
            self.by_user.add(&record.identity.user, *id);
        }
        Ok(())
    }
    fn delete_session(&mut self, id: &TokenHash) -> StoreResult<()> {
        if let Some(old) = self.sessions.shard(id).remove(id) {
            self.by_user.remove(&old.identity.user, id);
        }
        Ok(())
    }
    fn sessions_of_user(&mut self, user: &str) -> StoreResult<Vec<(TokenHash, SessionRecord)>> {
        Ok(self
            .by_user
            .candidates(user)
            .into_iter()
            .filter_map(|id| {
                let record = self.sessions.shard(&id).get(&id)?;
                (record.identity.user == user).then(|| (id, SessionRecord::clone(record)))
            })
            .collect())
    }
    fn user(&mut self, realm: &str, user: &str) -> StoreResult<UserState> {
        Ok(self
            .users
            .get(&user_key(realm, user))
            .copied()
            .unwrap_or_default())
    }
    fn put_user(&mut self, realm: &str, user: &str, state: UserState) -> StoreResult<()> {
        self.users.insert(user_key(realm, user), state);
        Ok(())
    }
    fn key(&mut self, slot: &str) -> StoreResult<Option<String>> {
        Ok(self.keys.get(slot).cloned())
    }
    fn put_key(&mut self, slot: &str, key: &str) -> StoreResult<()> {
        self.keys.insert(slot.to_owned(), key.to_owned());
        Ok(())
    }
    fn group_key(&mut self, group: &str) -> StoreResult<Option<String>> {
        Ok(self.group_keys.get(group).cloned())
    }
    fn put_group_key(&mut self, group: &str, key: &str) -> StoreResult<()> {
        self.group_keys.insert(group.to_owned(), key.to_owned());
        Ok(())
    }
    fn role(&mut self, group: &str, realm: &str, user: &str) -> StoreResult<Option<GroupRole>> {
        Ok(self.roles.get(&role_key(group, realm, user)).copied())
    }
    fn set_role(
        &mut self,
        group: &str,
        realm: &str,
        user: &str,
        role: Option<GroupRole>,
    ) -> StoreResult<()> {
        let k = role_key(group, realm, user);
        match role {
            Some(r) => self.roles.insert(k, r),
            None => self.roles.remove(&k),
        };
        Ok(())
    }
}

/// Sessions in a `HashMap` behind a mutex. Each operation holds the lock for
/// microseconds and never across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    maps: Mutex<Maps>,
    opts: StoreOptions,
}

impl MemoryStore {
    pub fn new(opts: StoreOptions) -> MemoryStore {
        MemoryStore {
            maps: Mutex::new(Maps::default()),
            opts,
        }
    }

    /// Number of stored sessions (current, superseded or not yet purged).
    pub fn len(&self) -> usize {
        self.maps.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything the store holds, as text: what an attacker reading the
    /// process memory's data structures would get. Used by the conformance
    /// test that checks no token is kept.
    pub fn dump(&self) -> String {
        format!("{:?}", *self.maps.lock())
    }
}

impl MemoryStore {
    /// This store with the abilities it offers: it enumerates users' sessions.
    pub fn into_store(self: std::sync::Arc<Self>) -> Store {
        let s = self;
        Store::new(s.clone()).with_users(s)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord> {
        ops::create(&mut *self.maps.lock(), &id, new, now)
    }

    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        ops::validate(&mut *self.maps.lock(), &id, realm, now, &self.opts, access)
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        ops::revoke(&mut *self.maps.lock(), &id, realm, now, &self.opts)
    }

    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        ops::replace(&mut *self.maps.lock(), &old, &new, realm, now, &self.opts)
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        ops::read_data(&mut *self.maps.lock(), &id, realm, now, &self.opts)
    }

    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite> {
        ops::write_data(
            &mut *self.maps.lock(),
            &id,
            realm,
            expected_version,
            data,
            now,
            &self.opts,
        )
    }

    /// Purges one shard at a time, so requests never wait long behind the
    /// sweep (about 1/256 of the sessions are examined per lock acquisition).
    async fn purge(&self, now: Timestamp) -> StoreResult<u64> {
        let retention = self.opts.superseded_retention;
        let mut removed = 0;
        let mut key = String::new();
        let mut purged = Vec::new();
        for shard in 0..SHARDS {
            {
                let mut maps = self.maps.lock();
                let Maps {
                    sessions, users, ..
                } = &mut *maps;
                sessions.0[shard].retain(|id, record| {
                    write_user_key(&mut key, &record.realm, &record.identity.user);
                    let user = users.get(key.as_str()).copied().unwrap_or_default();
                    let purge = is_purgeable(record, &user, now, retention);
                    if purge {
                        purged.push((std::mem::take(&mut record.identity.user), *id));
                    }
                    !purge
                });
                removed += purged.len() as u64;
                for (user, id) in purged.drain(..) {
                    maps.by_user.remove(&user, &id);
                }
                // hand the lock to a waiting request rather than re-taking it
                parking_lot::MutexGuard::unlock_fair(maps);
            }
            tokio::task::yield_now().await;
        }
        Ok(removed)
    }

    async fn end_user_sessions(&self, user: &str, _now: Timestamp) -> StoreResult<Option<u64>> {
        ops::end_user_sessions(&mut *self.maps.lock(), user).map(Some)
    }
}

#[async_trait]
impl crate::UserSessions for MemoryStore {
    async fn list_user_sessions(
        &self,
        realm: &str,
        user: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSession>> {
        ops::list_user_sessions(&mut *self.maps.lock(), realm, user, now, &self.opts)
    }

    async fn revoke_user_sessions(
        &self,
        realm: &str,
        user: &str,
        keep: Option<TokenHash>,
        _now: Timestamp,
    ) -> StoreResult<u64> {
        ops::revoke_user_sessions(&mut *self.maps.lock(), realm, user, keep.as_ref())
    }
}

#[async_trait]
impl crate::TicketMarks for MemoryStore {
    async fn raise_ticket_not_before(
        &self,
        realm: &str,
        user: &str,
        at: Timestamp,
    ) -> StoreResult<Timestamp> {
        ops::raise_ticket_not_before(&mut *self.maps.lock(), realm, user, at)
    }
}

#[async_trait]
impl crate::KeySlots for MemoryStore {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>> {
        self.maps.lock().key(slot)
    }

    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()> {
        self.maps.lock().put_key(slot, key)
    }
}

#[async_trait]
impl crate::Groups for MemoryStore {
    async fn create_group(
        &self,
        group: &str,
        realm: &str,
        user: &str,
        key: &str,
    ) -> StoreResult<bool> {
        ops::create_group(&mut *self.maps.lock(), group, realm, user, key)
    }

    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>> {
        self.maps.lock().role(group, realm, user)
    }

    async fn group_key(&self, group: &str) -> StoreResult<Option<String>> {
        self.maps.lock().group_key(group)
    }

    async fn update_group(
        &self,
        group: &str,
        realm: &str,
        caller: &str,
        changes: &[GroupChange],
    ) -> StoreResult<bool> {
        ops::update_group(&mut *self.maps.lock(), group, realm, caller, changes)
    }
}
