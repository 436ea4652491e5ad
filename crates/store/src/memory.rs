//! The in-memory store: volatile, like SessionKeyServer without `-d`, but
//! every operation runs under one lock, so no update is lost and no reader
//! sees half of a replace.
//!
//! Laid out for size: a million sessions of a million users take ~236 bytes
//! each (`examples/memory_per_session.rs`; a `HashMap` of records took 525).
//! Sessions sit dense in slabs and the hash tables hold 4-byte slab keys; a
//! session names its user, realm and source by number; what most sessions
//! leave empty (groups, data, device, credentials) is behind one pointer.
//! The rules stay in `ops.rs`: this file only converts between that layout
//! and [`SessionRecord`] at the [`Txn`] boundary, and
//! `tests/memory_model.rs` holds it to the file store's answers.

use crate::ops::{self, role_key, Txn};
use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};
use crate::{Access, Store, StoreError};
use crate::{SessionStore, StoreResult};
use async_trait::async_trait;
use hashbrown::HashTable;
use parking_lot::Mutex;
use sessiond_core::session::{is_purgeable, SessionData, SessionRecord, UserState, Validity};
use sessiond_core::{Identity, NewSession, Timestamp, TokenHash};
use slab::Slab;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

/// Number of shards the sessions are spread over (by the first byte of the
/// token hash, which is uniformly distributed), so that the sweep can work
/// through them one shard at a time and a growing table never rehashes a
/// million entries in one go while requests wait.
const SHARDS: usize = 256;

/// Bits of a [`SessionRef`] that name the slot within its shard: 2^24 slots
/// per shard, 2^32 sessions in all.
const SLOT_BITS: u32 = 24;

/// A stored session's place: its shard in the top 8 bits, its slab key in
/// the low 24. A user's index of sessions holds these rather than 32-byte
/// token hashes.
type SessionRef = u32;

/// The token hash's bits the session tables hash by. It is SHA-256 of a
/// random token the server made, so its bits are already uniform: no keyed
/// hasher is needed, and a client that picks the tokens it looks up cannot
/// lengthen any probe sequence (only stored entries do, and it cannot choose
/// those).
fn table_hash(id: &TokenHash) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&id.0[8..16]);
    u64::from_le_bytes(bytes)
}

/// Strings many sessions share — realm names and sources — kept once and
/// named by number. Counted, so that a string nothing uses any more is
/// dropped: sources come from configuration and from admin requests, and a
/// table that only grew would be a leak.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    names: Slab<(Arc<str>, usize)>,
}

impl Names {
    fn find(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The number of `name`, counting one more holder.
    fn hold(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            self.names[id as usize].1 += 1;
            return id;
        }
        let name: Arc<str> = name.into();
        // fewer distinct names than sessions, and sessions are counted in u32
        let id = self.names.insert((name.clone(), 1)) as u32;
        self.ids.insert(name, id);
        id
    }

    fn release(&mut self, id: u32) {
        let held = &mut self.names[id as usize].1;
        *held -= 1;
        if *held == 0 {
            let (name, _) = self.names.remove(id as usize);
            self.ids.remove(&name);
        }
    }

    fn get(&self, id: u32) -> &str {
        &self.names[id as usize].0
    }
}

/// Bits of [`Stored::flags`].
const SUPERSEDE: u8 = 1;
const HAS_EXPIRES: u8 = 2;
const HAS_IDLE: u8 = 4;
const HAS_UID: u8 = 8;
const HAS_GID: u8 = 16;

/// A session as this store keeps it: the [`SessionRecord`] it stands for
/// (see [`Maps::record`]) with the user, realm and source by number, the
/// optional numbers as flagged plain fields, and what most sessions leave
/// empty behind one pointer. 120 bytes against the record's ~280 plus three
/// string allocations (docs/performance.md, "Memory per session").
#[derive(Debug)]
struct Stored {
    id: TokenHash,
    /// Key in [`Users::entries`].
    user: u32,
    /// Numbers in [`Names`].
    realm: u32,
    source: u32,
    created: i64,
    last_access: i64,
    generation: u64,
    expires_at: i64,
    idle_timeout_secs: u64,
    uid: u32,
    gid: u32,
    client_addr: Option<IpAddr>,
    flags: u8,
    rest: Option<Box<Rest>>,
}

/// The parts of a record most sessions leave empty.
#[derive(Debug, Default, PartialEq)]
struct Rest {
    groups: Vec<String>,
    device: Option<String>,
    credentials: Option<String>,
    data: SessionData,
    data_version: u64,
    user_epoch: u64,
}

impl Stored {
    /// Copies everything of `r` but its user, realm and source (the keys a
    /// caller resolved) into this slot.
    fn set(&mut self, r: &SessionRecord) {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        self.created = r.created.0;
        self.last_access = r.last_access.0;
        self.generation = r.generation;
        self.expires_at = r.expires_at.map_or(0, |t| t.0);
        self.idle_timeout_secs = r.idle_timeout_secs.unwrap_or(0);
        self.uid = r.identity.uid.unwrap_or(0);
        self.gid = r.identity.gid.unwrap_or(0);
        self.client_addr = r.client_addr;
        self.flags = flag(r.supersede, SUPERSEDE)
            | flag(r.expires_at.is_some(), HAS_EXPIRES)
            | flag(r.idle_timeout_secs.is_some(), HAS_IDLE)
            | flag(r.identity.uid.is_some(), HAS_UID)
            | flag(r.identity.gid.is_some(), HAS_GID);
        let rest = Rest {
            groups: r.identity.groups.clone(),
            device: r.device.clone(),
            credentials: r.credentials.clone(),
            data: r.data.clone(),
            data_version: r.data_version,
            user_epoch: r.user_epoch,
        };
        self.rest = (rest != Rest::default()).then(|| Box::new(rest));
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    /// The record without its strings or its [`Rest`] beyond the user epoch:
    /// all that [`is_purgeable`] reads, for the sweep, which looks at every
    /// session and should not copy three strings of each to do it.
    fn skeleton(&self) -> SessionRecord {
        let mut r = self.with_strings(String::new(), Identity::new("", ""));
        r.user_epoch = self.rest.as_ref().map_or(0, |rest| rest.user_epoch);
        r
    }

    /// The record with the given realm and identity and none of [`Rest`].
    fn with_strings(&self, realm: String, identity: Identity) -> SessionRecord {
        SessionRecord {
            realm,
            identity,
            created: Timestamp(self.created),
            last_access: Timestamp(self.last_access),
            generation: self.generation,
            supersede: self.has(SUPERSEDE),
            expires_at: self.has(HAS_EXPIRES).then_some(Timestamp(self.expires_at)),
            idle_timeout_secs: self.has(HAS_IDLE).then_some(self.idle_timeout_secs),
            client_addr: self.client_addr,
            device: None,
            credentials: None,
            data: SessionData::new(),
            data_version: 0,
            user_epoch: 0,
        }
    }
}

/// One shard's sessions: dense in a slab, found through a table of 4-byte
/// slab keys. (A `HashMap<TokenHash, Record>` keeps a 32-byte key and the
/// record, or a pointer to it, in every bucket, and a table runs between
/// half and seven-eighths full.)
#[derive(Debug, Default)]
struct Shard {
    slots: Slab<Stored>,
    index: HashTable<u32>,
}

impl Shard {
    fn find(&self, id: &TokenHash) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(table_hash(id), |&k| slots[k as usize].id == *id)
            .map(|&k| k as usize)
    }

    fn insert(&mut self, stored: Stored) -> StoreResult<usize> {
        let hash = table_hash(&stored.id);
        if self.slots.len() >= 1 << SLOT_BITS {
            return Err(StoreError::Unavailable(
                "the memory store is full (2^32 sessions)".into(),
            ));
        }
        let slot = self.slots.insert(stored);
        let Shard { slots, index } = self;
        index.insert_unique(hash, slot as u32, |&k| table_hash(&slots[k as usize].id));
        Ok(slot)
    }

    fn remove(&mut self, slot: usize) -> Stored {
        let hash = table_hash(&self.slots[slot].id);
        if let Ok(entry) = self.index.find_entry(hash, |&k| k as usize == slot) {
            entry.remove();
        }
        self.slots.remove(slot)
    }
}

#[derive(Debug)]
struct Sessions(Vec<Shard>);

impl Default for Sessions {
    fn default() -> Self {
        Sessions((0..SHARDS).map(|_| Shard::default()).collect())
    }
}

impl Sessions {
    fn shard_of(id: &TokenHash) -> usize {
        usize::from(id.0[0]) % SHARDS
    }

    fn len(&self) -> usize {
        self.0.iter().map(|s| s.slots.len()).sum()
    }

    /// The reference to `slot` of `shard`.
    fn at(shard: usize, slot: usize) -> SessionRef {
        (shard as u32) << SLOT_BITS | slot as u32
    }

    fn get(&self, r: SessionRef) -> &Stored {
        &self.0[(r >> SLOT_BITS) as usize].slots[(r & ((1 << SLOT_BITS) - 1)) as usize]
    }
}

/// One user's supersede state in one realm ([`UserState`] without the
/// epoch, which this store never moves: it ends sessions by deleting them).
#[derive(Debug, Clone, Copy)]
struct RealmState {
    generation: u64,
    /// `i64::MIN` for none.
    superseded_at: i64,
    realm: u32,
}

/// The sessions of one user: most users have one, kept inline; a set only
/// for those with several (a set per user cost ~380 bytes per session at a
/// million one-session users).
#[derive(Debug)]
enum SessionRefs {
    None,
    One(SessionRef),
    /// Boxed so the common case stays small.
    #[allow(clippy::box_collection)]
    Many(Box<HashSet<SessionRef>>),
}

impl SessionRefs {
    fn add(&mut self, r: SessionRef) {
        match self {
            SessionRefs::None => *self = SessionRefs::One(r),
            SessionRefs::One(one) if *one != r => {
                *self = SessionRefs::Many(Box::new(HashSet::from([*one, r])));
            }
            SessionRefs::One(_) => {}
            SessionRefs::Many(set) => {
                set.insert(r);
            }
        }
    }

    /// Removes `r`; whether none is left.
    fn remove(&mut self, r: SessionRef) -> bool {
        match self {
            SessionRefs::One(one) if *one == r => *self = SessionRefs::None,
            SessionRefs::Many(set) => {
                set.remove(&r);
                if set.len() == 1 {
                    *self = SessionRefs::One(*set.iter().next().expect("one left"));
                }
            }
            _ => {}
        }
        matches!(self, SessionRefs::None)
    }

    fn refs(&self) -> Vec<SessionRef> {
        match self {
            SessionRefs::None => Vec::new(),
            SessionRefs::One(r) => vec![*r],
            SessionRefs::Many(set) => set.iter().copied().collect(),
        }
    }
}

/// A user name, the user's sessions (all realms) and supersede states (one
/// per realm, most users have one). Dropped with the user's last session:
/// a generation only orders sessions that exist.
#[derive(Debug)]
struct UserEntry {
    /// Up to 24 bytes inline: most names need no allocation of their own.
    name: compact_str::CompactString,
    sessions: SessionRefs,
    states: SmallVec<[RealmState; 1]>,
}

/// The users that have sessions, found by name through a keyed hash (names
/// come from clients and directories).
#[derive(Debug, Default)]
struct Users {
    hasher: std::collections::hash_map::RandomState,
    entries: Slab<UserEntry>,
    index: HashTable<u32>,
}

impl Users {
    fn find(&self, name: &str) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(name), |&k| {
                &*entries[k as usize].name == name
            })
            .copied()
    }

    fn find_or_add(&mut self, name: &str) -> u32 {
        if let Some(k) = self.find(name) {
            return k;
        }
        let k = self.entries.insert(UserEntry {
            name: name.into(),
            sessions: SessionRefs::None,
            states: SmallVec::new(),
        }) as u32;
        let Users {
            hasher,
            entries,
            index,
        } = self;
        index.insert_unique(hasher.hash_one(name), k, |&k| {
            hasher.hash_one(&*entries[k as usize].name)
        });
        k
    }

    fn remove(&mut self, k: u32, names: &mut Names) {
        let hash = self.hasher.hash_one(&*self.entries[k as usize].name);
        if let Ok(entry) = self.index.find_entry(hash, |&e| e == k) {
            entry.remove();
        }
        for state in self.entries.remove(k as usize).states {
            names.release(state.realm);
        }
    }

    fn state(&self, k: u32, realm: u32) -> UserState {
        self.entries[k as usize]
            .states
            .iter()
            .find(|s| s.realm == realm)
            .map_or_else(UserState::default, |s| UserState {
                generation: s.generation,
                superseded_at: (s.superseded_at != i64::MIN).then_some(Timestamp(s.superseded_at)),
                epoch: 0,
            })
    }
}

#[derive(Default, Debug)]
struct Maps {
    sessions: Sessions,
    users: Users,
    names: Names,
    keys: HashMap<String, String>,
    group_keys: HashMap<String, String>,
    /// Keyed by [`role_key`].
    roles: HashMap<String, GroupRole>,
}

impl Maps {
    /// The record a stored session stands for.
    fn record(&self, s: &Stored) -> SessionRecord {
        let mut identity = Identity::new(
            &*self.users.entries[s.user as usize].name,
            self.names.get(s.source),
        );
        identity.uid = s.has(HAS_UID).then_some(s.uid);
        identity.gid = s.has(HAS_GID).then_some(s.gid);
        let mut r = s.with_strings(self.names.get(s.realm).to_owned(), identity);
        if let Some(rest) = &s.rest {
            r.identity.groups.clone_from(&rest.groups);
            r.device.clone_from(&rest.device);
            r.credentials.clone_from(&rest.credentials);
            r.data.clone_from(&rest.data);
            r.data_version = rest.data_version;
            r.user_epoch = rest.user_epoch;
        }
        r
    }

    /// Deletes the session in `slot` of `shard`, with its user's entry when
    /// it was the user's last, and lets go of its names.
    fn remove_at(&mut self, shard: usize, slot: usize) {
        let gone = self.sessions.0[shard].remove(slot);
        if self.users.entries[gone.user as usize]
            .sessions
            .remove(Sessions::at(shard, slot))
        {
            self.users.remove(gone.user, &mut self.names);
        }
        self.names.release(gone.realm);
        self.names.release(gone.source);
    }
}

impl Txn for Maps {
    fn session(&mut self, id: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let shard = &self.sessions.0[Sessions::shard_of(id)];
        Ok(shard.find(id).map(|slot| self.record(&shard.slots[slot])))
    }
    fn put_session(&mut self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()> {
        let shard = Sessions::shard_of(id);
        if let Some(slot) = self.sessions.0[shard].find(id) {
            let s = &self.sessions.0[shard].slots[slot];
            let same = *self.users.entries[s.user as usize].name == *record.identity.user
                && self.names.get(s.realm) == record.realm
                && self.names.get(s.source) == record.identity.source;
            if same {
                // a touch or a data write: the common case, in place
                self.sessions.0[shard].slots[slot].set(record);
                return Ok(());
            }
            self.remove_at(shard, slot);
        }
        let user = self.users.find_or_add(&record.identity.user);
        let mut stored = Stored {
            id: *id,
            user,
            realm: self.names.hold(&record.realm),
            source: self.names.hold(&record.identity.source),
            created: 0,
            last_access: 0,
            generation: 0,
            expires_at: 0,
            idle_timeout_secs: 0,
            uid: 0,
            gid: 0,
            client_addr: None,
            flags: 0,
            rest: None,
        };
        stored.set(record);
        let (realm, source) = (stored.realm, stored.source);
        match self.sessions.0[shard].insert(stored) {
            Ok(slot) => {
                self.users.entries[user as usize]
                    .sessions
                    .add(Sessions::at(shard, slot));
                Ok(())
            }
            Err(e) => {
                self.names.release(realm);
                self.names.release(source);
                if matches!(
                    self.users.entries[user as usize].sessions,
                    SessionRefs::None
                ) {
                    self.users.remove(user, &mut self.names);
                }
                Err(e)
            }
        }
    }
    fn delete_session(&mut self, id: &TokenHash) -> StoreResult<()> {
        let shard = Sessions::shard_of(id);
        if let Some(slot) = self.sessions.0[shard].find(id) {
            self.remove_at(shard, slot);
        }
        Ok(())
    }
    fn sessions_of_user(&mut self, user: &str) -> StoreResult<Vec<(TokenHash, SessionRecord)>> {
        let Some(k) = self.users.find(user) else {
            return Ok(Vec::new());
        };
        Ok(self.users.entries[k as usize]
            .sessions
            .refs()
            .into_iter()
            .map(|r| {
                let s = self.sessions.get(r);
                (s.id, self.record(s))
            })
            .collect())
    }
    fn user(&mut self, realm: &str, user: &str) -> StoreResult<UserState> {
        Ok(match (self.users.find(user), self.names.find(realm)) {
            (Some(k), Some(realm)) => self.users.state(k, realm),
            _ => UserState::default(),
        })
    }
    fn put_user(&mut self, realm: &str, user: &str, state: UserState) -> StoreResult<()> {
        let k = self.users.find_or_add(user);
        let new = RealmState {
            generation: state.generation,
            superseded_at: state.superseded_at.map_or(i64::MIN, |t| t.0),
            realm: 0,
        };
        let known = self.names.find(realm);
        let states = &mut self.users.entries[k as usize].states;
        match states.iter_mut().find(|s| Some(s.realm) == known) {
            Some(s) => {
                *s = RealmState {
                    realm: s.realm,
                    ..new
                }
            }
            None => {
                let realm = self.names.hold(realm);
                self.users.entries[k as usize]
                    .states
                    .push(RealmState { realm, ..new });
            }
        }
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

/// Sessions in slabs behind one mutex. Each operation holds the lock for
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
        use std::fmt::Write;
        let maps = self.maps.lock();
        let mut out = String::new();
        for shard in &maps.sessions.0 {
            for (_, s) in &shard.slots {
                let _ = writeln!(out, "{:?} {:?} {:?}", s.id, maps.record(s), s);
            }
        }
        for (_, user) in &maps.users.entries {
            let _ = writeln!(out, "{user:?}");
        }
        let names: Vec<_> = maps.names.ids.keys().collect();
        let _ = write!(
            out,
            "{names:?} {:?} {:?} {:?}",
            maps.keys, maps.group_keys, maps.roles
        );
        out
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
        let mut dead = Vec::new();
        for shard in 0..SHARDS {
            {
                let mut maps = self.maps.lock();
                let Maps {
                    sessions, users, ..
                } = &*maps;
                dead.extend(sessions.0[shard].slots.iter().filter_map(|(slot, s)| {
                    let user = users.state(s.user, s.realm);
                    is_purgeable(&s.skeleton(), &user, now, retention).then_some(slot)
                }));
                removed += dead.len() as u64;
                for slot in dead.drain(..) {
                    maps.remove_at(shard, slot);
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
#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the bytes per session in docs/performance.md rest on. A
    /// regression here shows as memory, not as a failing answer.
    #[test]
    fn layout_stays_small() {
        assert!(std::mem::size_of::<Stored>() <= 120);
        assert!(std::mem::size_of::<UserEntry>() <= 72);
    }
}
