//! The near cache: checks answered from process memory in front of a shared
//! store, kept correct by the store's own invalidations (decision 0022).
//!
//! Only a `Current` answer is kept, with the stamp of the moment just before
//! the store was read. A cached answer is used only while:
//! - the store's invalidation channel is up ([`Invalidator::lost`] drops
//!   everything and sends every check to the store until it is back, so an
//!   outage still answers 503, never a stale YES);
//! - no invalidation of the session, or of its user, came after its stamp
//!   (an invalidation that arrives while a check is reading the store wins
//!   over that check's answer: it is never cached);
//! - it is younger than `max_age` (the whole bound for memcached, which has
//!   no channel; a safety net for the others);
//! - the record itself says it is still good now (idle and absolute ends
//!   are re-checked on every hit) and needs no touch (a due touch goes to
//!   the store, which moves the last access on).
//!
//! This instance's own writes invalidate at once; other instances' writes
//! arrive through the channel, within the propagation time
//! `bench/propagation.sh` measures.

use crate::types::{DataWrite, StoreOptions, UserSession};
use crate::{Access, SessionStore, Store, StoreResult, UserSessions};
use async_trait::async_trait;
use parking_lot::Mutex;
use sessiond_core::session::{SessionData, SessionRecord, Validity};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How big and how old the cache may get.
#[derive(Debug, Clone, Copy)]
pub struct NearCacheConfig {
    /// Sessions kept at most (least recently used go first).
    pub capacity: usize,
    /// The oldest answer ever given from the cache.
    pub max_age: Duration,
}

/// What an invalidation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mark {
    Session(TokenHash),
    /// Every session of the user, in every realm (a supersede, an end), by
    /// a keyed hash of the name: two users sharing one only invalidate each
    /// other's answers, and a hit looks its user up without allocating.
    User(u64),
}

struct Entry {
    record: SessionRecord,
    stamp: u64,
    fetched: Instant,
}

struct State {
    entries: quick_cache::sync::Cache<TokenHash, Arc<Entry>>,
    /// Stamps: taken before each store read, and by each invalidation.
    clock: AtomicU64,
    /// The last invalidation of each session or user, kept for `max_age`
    /// (older entries are unusable anyway).
    marks: Mutex<HashMap<Mark, (u64, Instant)>>,
    /// Entries stamped at or before this are unusable (the channel was lost).
    floor: AtomicU64,
    /// Whether the invalidation channel is up.
    live: AtomicBool,
    max_age: Duration,
    /// Pruning of `marks`, at most once per `max_age / 4`.
    pruned: Mutex<Instant>,
    users: std::collections::hash_map::RandomState,
    /// When the channel was last heard from, in ms since `started`, and how
    /// long a silence means it is lost (0: the channel sends no heartbeats).
    heard: AtomicU64,
    silence: AtomicU64,
    started: Instant,
    /// What the server's `/metrics` shows.
    hits: AtomicU64,
    misses: AtomicU64,
    losses: AtomicU64,
}

/// Counts since start, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearCacheStats {
    /// Checks answered from memory.
    pub hits: u64,
    /// Checks that went to the store.
    pub misses: u64,
    /// Times the invalidation channel was lost (the cache emptied).
    pub losses: u64,
    /// Whether cached answers are being used now.
    pub live: bool,
    /// Sessions held now.
    pub entries: usize,
}

impl State {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn user(&self, name: &str) -> Mark {
        use std::hash::BuildHasher;
        Mark::User(self.users.hash_one(name))
    }

    fn mark(&self, mark: Mark) {
        let stamp = self.tick();
        if let Mark::Session(id) = &mark {
            self.entries.remove(id);
        }
        let mut marks = self.marks.lock();
        // The time under the lock: later than the `fetched` of any entry
        // `keep` put in before this mark, so the mark outlives it (below).
        let now = Instant::now();
        marks.insert(mark, (stamp, now));
        let mut pruned = self.pruned.lock();
        if now.duration_since(*pruned) >= self.max_age / 4 {
            let max_age = self.max_age;
            marks.retain(|_, (_, at)| now.duration_since(*at) < max_age);
            *pruned = now;
        }
    }

    /// Whether an answer stamped `stamp` for `id` of `user` was overtaken.
    fn overtaken(&self, id: &TokenHash, user: &str, stamp: u64) -> bool {
        self.overtaken_in(&self.marks.lock(), id, user, stamp)
    }

    fn overtaken_in(
        &self,
        marks: &HashMap<Mark, (u64, Instant)>,
        id: &TokenHash,
        user: &str,
        stamp: u64,
    ) -> bool {
        if stamp <= self.floor.load(Ordering::Acquire) {
            return true;
        }
        let after = |m: &Mark| marks.get(m).is_some_and(|(s, _)| *s >= stamp);
        after(&Mark::Session(*id)) || after(&self.user(user))
    }

    /// Whether the channel is up and, if it beats, was heard from lately.
    fn live(&self) -> bool {
        let silence = self.silence.load(Ordering::Acquire);
        self.live.load(Ordering::Acquire)
            && (silence == 0
                || (self.started.elapsed().as_millis() as u64)
                    .saturating_sub(self.heard.load(Ordering::Acquire))
                    < silence)
    }

    fn hit(
        &self,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
        needs_touch: impl Fn(&SessionRecord) -> bool,
    ) -> Option<SessionRecord> {
        if !self.live() {
            return None;
        }
        let entry = self.entries.get(id)?;
        let usable = entry.fetched.elapsed() < self.max_age
            && entry.record.realm == realm
            && !entry.record.is_expired(now)
            && !needs_touch(&entry.record)
            && !self.overtaken(id, &entry.record.identity.user, entry.stamp);
        usable.then(|| entry.record.clone())
    }

    /// Keeps a `Current` answer read after `stamp` was taken, unless an
    /// invalidation came meanwhile or the channel is down.
    ///
    /// Checked and kept under the marks' lock: a mark that comes in between
    /// would otherwise find nothing to remove, and the answer it overtook
    /// could outlive it (marks are pruned `max_age` after they were made;
    /// an answer kept before a mark is unusable by then).
    fn keep(&self, id: TokenHash, record: &SessionRecord, stamp: u64) {
        let marks = self.marks.lock();
        if self.live() && !self.overtaken_in(&marks, &id, &record.identity.user, stamp) {
            self.entries.insert(
                id,
                Arc::new(Entry {
                    record: record.clone(),
                    stamp,
                    fetched: Instant::now(),
                }),
            );
        }
    }
}

/// What a store's invalidation channel calls: the cache side of it.
#[derive(Clone)]
pub struct Invalidator(Arc<State>);

impl Invalidator {
    /// The session changed or is gone.
    pub fn session(&self, id: &TokenHash) {
        self.0.mark(Mark::Session(*id));
    }

    /// Something about every session of `user` changed (a newer login, an end).
    pub fn user(&self, user: &str) {
        self.0.mark(self.0.user(user));
    }

    /// The channel is down: invalidations may be missed from now on, so
    /// nothing cached is used and nothing is cached until [`Self::restored`].
    pub fn lost(&self) {
        if self.0.live.swap(false, Ordering::AcqRel) {
            self.0.losses.fetch_add(1, Ordering::Relaxed);
        }
        let stamp = self.0.tick();
        self.0.floor.fetch_max(stamp, Ordering::AcqRel);
        self.0.entries.clear();
    }

    /// The channel is up again (listening before this call): caching resumes.
    pub fn restored(&self) {
        let stamp = self.0.tick();
        self.0.floor.fetch_max(stamp, Ordering::AcqRel);
        self.0.live.store(true, Ordering::Release);
    }

    /// Runs a store's invalidation channel for as long as the runtime:
    /// `follow` connects, calls [`Self::restored`] once it listens, feeds
    /// invalidations until its connection fails, and says why. Meanwhile,
    /// and until it listens again (retried every second), the cache is
    /// bypassed and emptied.
    pub fn spawn_follower<F, Fut>(self, store: &'static str, mut follow: F)
    where
        F: FnMut(Invalidator) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = String> + Send,
    {
        tokio::spawn(async move {
            loop {
                let why = follow(self.clone()).await;
                self.lost();
                tracing::warn!(store, error = %why, "near cache: invalidations lost; checks go to the store until they are back");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Everything may have changed (the store was flushed).
    pub fn all(&self) {
        let stamp = self.0.tick();
        self.0.floor.fetch_max(stamp, Ordering::AcqRel);
        self.0.entries.clear();
    }

    /// Whether cached answers are being used.
    pub fn is_live(&self) -> bool {
        self.0.live()
    }

    /// Counts since start.
    pub fn stats(&self) -> NearCacheStats {
        NearCacheStats {
            hits: self.0.hits.load(Ordering::Relaxed),
            misses: self.0.misses.load(Ordering::Relaxed),
            losses: self.0.losses.load(Ordering::Relaxed),
            live: self.0.live(),
            entries: self.0.entries.len(),
        }
    }

    /// The channel sends something at least every `every`: a silence of
    /// four times that counts as lost (a connection that died without a
    /// word, which the channel's reader may not notice for minutes).
    pub fn expect_heartbeat(&self, every: Duration) {
        self.heard();
        let limit = (every * 4).as_millis().max(1) as u64;
        self.0.silence.store(limit, Ordering::Release);
    }

    /// The channel said something (an invalidation or a heartbeat).
    pub fn heard(&self) {
        let ms = self.0.started.elapsed().as_millis() as u64;
        self.0.heard.fetch_max(ms, Ordering::AcqRel);
    }
}

/// A [`SessionStore`] (and its [`UserSessions`]) with a near cache in front.
struct Cached {
    inner: Store,
    state: Arc<State>,
    touch_interval: Duration,
}

impl Store {
    /// This store with a near cache in front of its checks. The returned
    /// [`Invalidator`] starts *lost*: the store's channel calls
    /// [`Invalidator::restored`] once it listens (a store without a channel,
    /// memcached, calls it at once and relies on `max_age`).
    pub fn with_near_cache(
        self,
        config: NearCacheConfig,
        opts: &StoreOptions,
    ) -> (Store, Invalidator) {
        let state = Arc::new(State {
            entries: quick_cache::sync::Cache::new(config.capacity.max(1)),
            clock: AtomicU64::new(0),
            marks: Mutex::new(HashMap::new()),
            floor: AtomicU64::new(0),
            live: AtomicBool::new(false),
            max_age: config.max_age,
            pruned: Mutex::new(Instant::now()),
            users: Default::default(),
            heard: AtomicU64::new(0),
            silence: AtomicU64::new(0),
            started: Instant::now(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            losses: AtomicU64::new(0),
        });
        let cached = Arc::new(Cached {
            inner: self.clone(),
            state: state.clone(),
            touch_interval: opts.touch_interval,
        });
        let mut store = self;
        store.near_cache = Some(Invalidator(state.clone()));
        store.sessions = cached.clone();
        if store.users.is_some() {
            store.users = Some(cached);
        }
        (store, Invalidator(state))
    }
}

impl Cached {
    fn invalidate_user(&self, user: &str) {
        self.state.mark(self.state.user(user));
    }
}

#[async_trait]
impl SessionStore for Cached {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }

    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord> {
        let user = new.identity.user.clone();
        let supersede = new.policy.supersede;
        let record = self.inner.create(id, new, now).await?;
        if supersede {
            // the user's older sessions here are superseded now
            self.invalidate_user(&user);
        }
        Ok(record)
    }

    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        let interval = self.touch_interval;
        let due = |r: &SessionRecord| access == Access::Touch && r.needs_touch(now, interval);
        if let Some(record) = self.state.hit(&id, realm, now, due) {
            self.state.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Validity::Current(record));
        }
        self.state.misses.fetch_add(1, Ordering::Relaxed);
        let stamp = self.state.tick();
        let answer = self.inner.check(id, realm, now, access).await?;
        match &answer {
            Validity::Current(record) => self.state.keep(id, record, stamp),
            // (no mark: an unknown token sprayed at the server must not
            // grow anything)
            _ => {
                self.state.entries.remove(&id);
            }
        }
        Ok(answer)
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let out = self.inner.revoke(id, realm, now).await;
        self.state.mark(Mark::Session(id));
        out
    }

    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let out = self.inner.replace(old, new, realm, now).await;
        self.state.mark(Mark::Session(old));
        out
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        self.inner.read_data(id, realm, now).await
    }

    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite> {
        let out = self
            .inner
            .write_data(id, realm, expected_version, data, now)
            .await;
        self.state.mark(Mark::Session(id));
        out
    }

    async fn purge(&self, now: Timestamp) -> StoreResult<u64> {
        self.inner.purge(now).await
    }

    async fn end_user_sessions(&self, user: &str, now: Timestamp) -> StoreResult<Option<u64>> {
        let out = self.inner.end_user_sessions(user, now).await;
        self.invalidate_user(user);
        out
    }
}

#[async_trait]
impl UserSessions for Cached {
    async fn list_user_sessions(
        &self,
        realm: &str,
        user: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSession>> {
        let users = self
            .inner
            .users
            .as_ref()
            .expect("wrapped only with the ability");
        users.list_user_sessions(realm, user, now).await
    }

    async fn revoke_user_sessions(
        &self,
        realm: &str,
        user: &str,
        keep: Option<TokenHash>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let users = self
            .inner
            .users
            .as_ref()
            .expect("wrapped only with the ability");
        let out = users.revoke_user_sessions(realm, user, keep, now).await;
        self.invalidate_user(user);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use sessiond_core::{Identity, RealmPolicy, Token};

    const NOW: Timestamp = Timestamp(1_700_000_000);

    /// A cached store over a memory store, and the memory store itself (what
    /// another instance writing to the shared store looks like from here).
    async fn setup(max_age: Duration) -> (Store, Store, Invalidator, Token) {
        let opts = StoreOptions::default();
        let shared = Arc::new(MemoryStore::new(opts.clone())).into_store();
        let (cached, inv) = shared.clone().with_near_cache(
            NearCacheConfig {
                capacity: 100,
                max_age,
            },
            &opts,
        );
        inv.restored();
        let token = Token::generate();
        let new = NewSession {
            realm: "rc".into(),
            identity: Identity::new("alice", "pam"),
            policy: RealmPolicy::default(),
            credential_end: None,
            client_addr: None,
            device: None,
            credentials: None,
        };
        cached.create(token.hash(), new, NOW).await.unwrap();
        (cached, shared, inv, token)
    }

    fn current(v: &Validity) -> bool {
        matches!(v, Validity::Current(_))
    }

    #[tokio::test]
    async fn answers_from_memory_until_invalidated() {
        let (cached, shared, inv, t) = setup(Duration::from_secs(60)).await;
        assert!(current(&cached.peek(t.hash(), "rc", NOW).await.unwrap()));
        // another instance revokes; no invalidation has arrived yet
        shared.revoke(t.hash(), "rc", NOW).await.unwrap();
        assert!(
            current(&cached.peek(t.hash(), "rc", NOW).await.unwrap()),
            "answered from the cache (this is the propagation window)"
        );
        inv.session(&t.hash());
        assert_eq!(
            cached.peek(t.hash(), "rc", NOW).await.unwrap(),
            Validity::Unknown
        );
    }

    #[tokio::test]
    async fn a_user_invalidation_reaches_every_session_of_the_user() {
        let (cached, shared, inv, t) = setup(Duration::from_secs(60)).await;
        assert!(current(&cached.peek(t.hash(), "rc", NOW).await.unwrap()));
        shared.end_user_sessions("alice", NOW).await.unwrap();
        inv.user("alice");
        assert_eq!(
            cached.peek(t.hash(), "rc", NOW).await.unwrap(),
            Validity::Unknown
        );
    }

    #[tokio::test]
    async fn a_lost_channel_sends_every_check_to_the_store() {
        let (cached, shared, inv, t) = setup(Duration::from_secs(60)).await;
        assert!(current(&cached.peek(t.hash(), "rc", NOW).await.unwrap()));
        inv.lost();
        shared.revoke(t.hash(), "rc", NOW).await.unwrap();
        assert_eq!(
            cached.peek(t.hash(), "rc", NOW).await.unwrap(),
            Validity::Unknown
        );
        assert!(!inv.is_live());
    }

    #[tokio::test]
    async fn an_invalidation_during_a_store_read_wins() {
        let (cached, shared, inv, t) = setup(Duration::from_secs(60)).await;
        let state = &inv.0;
        // a check took its stamp and read Current; the invalidation of that
        // session arrived before it could keep the answer
        let stamp = state.tick();
        let Validity::Current(record) = shared.peek(t.hash(), "rc", NOW).await.unwrap() else {
            panic!("current")
        };
        shared.revoke(t.hash(), "rc", NOW).await.unwrap();
        inv.session(&t.hash());
        state.keep(t.hash(), &record, stamp);
        assert_eq!(
            cached.peek(t.hash(), "rc", NOW).await.unwrap(),
            Validity::Unknown
        );
    }

    #[tokio::test]
    async fn a_silent_channel_counts_as_lost() {
        let (cached, shared, inv, t) = setup(Duration::from_secs(60)).await;
        inv.expect_heartbeat(Duration::from_millis(10));
        assert!(current(&cached.peek(t.hash(), "rc", NOW).await.unwrap()));
        shared.revoke(t.hash(), "rc", NOW).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!inv.is_live());
        assert_eq!(
            cached.peek(t.hash(), "rc", NOW).await.unwrap(),
            Validity::Unknown
        );
    }

    #[tokio::test]
    async fn answers_are_never_older_than_max_age() {
        let (cached, shared, _inv, t) = setup(Duration::from_millis(50)).await;
        assert!(current(&cached.peek(t.hash(), "rc", NOW).await.unwrap()));
        shared.revoke(t.hash(), "rc", NOW).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            cached.peek(t.hash(), "rc", NOW).await.unwrap(),
            Validity::Unknown
        );
    }

    #[tokio::test]
    async fn expiry_and_due_touches_go_to_the_store() {
        let (cached, shared, _inv, t) = setup(Duration::from_secs(60)).await;
        let Validity::Current(r) = cached.validate(t.hash(), "rc", NOW).await.unwrap() else {
            panic!("current")
        };
        assert_eq!(r.last_access, NOW);
        // a minute later a touch is due (touch_interval 60 s): the store moves it on
        let later = Timestamp(NOW.0 + 61);
        let Validity::Current(r) = cached.validate(t.hash(), "rc", later).await.unwrap() else {
            panic!("current")
        };
        assert_eq!(r.last_access, later);
        let Validity::Current(stored) = shared.peek(t.hash(), "rc", later).await.unwrap() else {
            panic!("current")
        };
        assert_eq!(stored.last_access, later, "the touch reached the store");
    }
}
