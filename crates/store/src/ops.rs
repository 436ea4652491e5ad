//! The store semantics, written once against [`Txn`].
//!
//! A store supplies a transaction (a lock on in-memory maps, a redb write
//! transaction, …) and these functions do the rest, so every store classifies,
//! supersedes, replaces and expires sessions identically.

use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};
use crate::Access;
use crate::StoreResult;
use sessiond_core::session::{
    classify, Classification, SessionData, SessionRecord, UserState, Validity,
};
use sessiond_core::{NewSession, Timestamp, TokenHash};

/// Key of a user's supersede state: `realm \0 user`. Realms and names never
/// contain control characters (checked at the API), so the key is unambiguous.
pub(crate) fn user_key(realm: &str, user: &str) -> String {
    format!("{realm}\0{user}")
}

/// Key of a group membership: `group \0 realm \0 user`.
pub(crate) fn role_key(group: &str, realm: &str, user: &str) -> String {
    format!("{group}\0{realm}\0{user}")
}

/// One atomic unit of work on a store. Implementations must make all writes of
/// one operation visible together or not at all.
pub(crate) trait Txn {
    fn session(&mut self, id: &TokenHash) -> StoreResult<Option<SessionRecord>>;
    fn put_session(&mut self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()>;
    fn delete_session(&mut self, id: &TokenHash) -> StoreResult<()>;
    /// Every stored record of `user` in any realm, whatever its state:
    /// through a per-user index, never a scan of all sessions (the "my
    /// sessions" page loads it on every visit).
    fn sessions_of_user(&mut self, user: &str) -> StoreResult<Vec<(TokenHash, SessionRecord)>>;
    /// Every stored record of `user` in `realm`, whatever its state.
    fn sessions_of(
        &mut self,
        realm: &str,
        user: &str,
    ) -> StoreResult<Vec<(TokenHash, SessionRecord)>> {
        let mut all = self.sessions_of_user(user)?;
        all.retain(|(_, r)| r.realm == realm);
        Ok(all)
    }
    fn user(&mut self, realm: &str, user: &str) -> StoreResult<UserState>;
    fn put_user(&mut self, realm: &str, user: &str, state: UserState) -> StoreResult<()>;
    fn key(&mut self, slot: &str) -> StoreResult<Option<String>>;
    fn put_key(&mut self, slot: &str, key: &str) -> StoreResult<()>;
    fn group_key(&mut self, group: &str) -> StoreResult<Option<String>>;
    fn put_group_key(&mut self, group: &str, key: &str) -> StoreResult<()>;
    fn role(&mut self, group: &str, realm: &str, user: &str) -> StoreResult<Option<GroupRole>>;
    fn set_role(
        &mut self,
        group: &str,
        realm: &str,
        user: &str,
        role: Option<GroupRole>,
    ) -> StoreResult<()>;
}

pub(crate) fn create(
    t: &mut dyn Txn,
    id: &TokenHash,
    new: NewSession,
    now: Timestamp,
) -> StoreResult<SessionRecord> {
    let mut user = t.user(&new.realm, &new.identity.user)?;
    let generation = user.next_login(new.policy.supersede, now);
    let realm = new.realm.clone();
    let name = new.identity.user.clone();
    let record = SessionRecord::issue(new, generation, now);
    if record.supersede {
        t.put_user(&realm, &name, user)?;
    }
    t.put_session(id, &record)?;
    Ok(record)
}

/// Looks a record up and classifies it, deleting it when it is gone.
fn lookup(
    t: &mut dyn Txn,
    id: &TokenHash,
    realm: &str,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<Option<(SessionRecord, Classification)>> {
    Ok(find(t, id, realm, now, opts)?.live())
}

/// [`lookup`], handing back a record that expired (for a check to report).
fn find(
    t: &mut dyn Txn,
    id: &TokenHash,
    realm: &str,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<crate::Found> {
    let Some(record) = t.session(id)? else {
        return Ok(crate::Found::Missing);
    };
    let user = t.user(&record.realm, &record.identity.user)?;
    match classify(&record, &user, realm, now, opts.superseded_retention) {
        Classification::OtherRealm => Ok(crate::Found::Missing),
        Classification::Gone => {
            t.delete_session(id)?;
            Ok(crate::Found::gone(record, &user, now))
        }
        c => Ok(crate::Found::Live(record, c)),
    }
}

/// Validates a session; with [`Access::Touch`], refreshes its last access when due.
pub(crate) fn validate(
    t: &mut dyn Txn,
    id: &TokenHash,
    realm: &str,
    now: Timestamp,
    opts: &StoreOptions,
    access: Access,
) -> StoreResult<Validity> {
    Ok(match find(t, id, realm, now, opts)? {
        crate::Found::Missing => Validity::Unknown,
        crate::Found::Expired(record) => Validity::Expired(record),
        crate::Found::Live(record, Classification::Superseded) => Validity::Superseded(record),
        crate::Found::Live(mut record, _) => {
            if access == Access::Touch && record.needs_touch(now, opts.touch_interval) {
                record.last_access = now;
                t.put_session(id, &record)?;
            }
            Validity::Current(record)
        }
    })
}

pub(crate) fn revoke(
    t: &mut dyn Txn,
    id: &TokenHash,
    realm: &str,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<Option<SessionRecord>> {
    let found = lookup(t, id, realm, now, opts)?;
    if found.is_some() {
        t.delete_session(id)?;
    }
    Ok(found.map(|(record, _)| record))
}

pub(crate) fn replace(
    t: &mut dyn Txn,
    old: &TokenHash,
    new: &TokenHash,
    realm: &str,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<Option<SessionRecord>> {
    match lookup(t, old, realm, now, opts)? {
        Some((mut record, Classification::Current)) => {
            record.last_access = now;
            t.put_session(new, &record)?;
            t.delete_session(old)?;
            Ok(Some(record))
        }
        _ => Ok(None),
    }
}

pub(crate) fn read_data(
    t: &mut dyn Txn,
    id: &TokenHash,
    realm: &str,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<Option<(SessionData, u64)>> {
    Ok(match lookup(t, id, realm, now, opts)? {
        Some((record, Classification::Current)) => Some((record.data, record.data_version)),
        _ => None,
    })
}

pub(crate) fn write_data(
    t: &mut dyn Txn,
    id: &TokenHash,
    realm: &str,
    expected_version: u64,
    data: SessionData,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<DataWrite> {
    let Some((mut record, Classification::Current)) = lookup(t, id, realm, now, opts)? else {
        return Ok(DataWrite::NotFound);
    };
    if record.data_version != expected_version {
        return Ok(DataWrite::Conflict {
            current_version: record.data_version,
        });
    }
    record.data = data;
    record.data_version += 1;
    record.last_access = now;
    t.put_session(id, &record)?;
    Ok(DataWrite::Written {
        version: record.data_version,
    })
}

pub(crate) fn create_group(
    t: &mut dyn Txn,
    group: &str,
    realm: &str,
    user: &str,
    key: &str,
) -> StoreResult<bool> {
    if t.group_key(group)?.is_some() {
        return Ok(false);
    }
    t.set_role(group, realm, user, Some(GroupRole::Admin))?;
    t.put_group_key(group, key)?;
    Ok(true)
}

pub(crate) fn update_group(
    t: &mut dyn Txn,
    group: &str,
    realm: &str,
    caller: &str,
    changes: &[GroupChange],
) -> StoreResult<bool> {
    if t.role(group, realm, caller)? != Some(GroupRole::Admin) {
        return Ok(false);
    }
    for change in changes {
        t.set_role(group, realm, &change.user, change.role)?;
    }
    Ok(true)
}

/// A user's live sessions, oldest first; dead ones found on the way are deleted.
pub(crate) fn list_user_sessions(
    t: &mut dyn Txn,
    realm: &str,
    user: &str,
    now: Timestamp,
    opts: &StoreOptions,
) -> StoreResult<Vec<UserSession>> {
    let state = t.user(realm, user)?;
    let mut live = Vec::new();
    for (id, record) in t.sessions_of(realm, user)? {
        match classify(&record, &state, realm, now, opts.superseded_retention) {
            Classification::Gone => t.delete_session(&id)?,
            Classification::OtherRealm => {}
            c => live.push(UserSession {
                id,
                record,
                superseded: c == Classification::Superseded,
            }),
        }
    }
    live.sort_by_key(|s| (s.record.created, s.record.generation, s.id.0));
    Ok(live)
}

/// Deletes every session of `user` in every realm; returns how many.
pub(crate) fn end_user_sessions(t: &mut dyn Txn, user: &str) -> StoreResult<u64> {
    let sessions = t.sessions_of_user(user)?;
    delete_all_but(t, sessions, None)
}

/// Deletes `sessions` except `keep`; returns how many were deleted.
fn delete_all_but(
    t: &mut dyn Txn,
    sessions: Vec<(TokenHash, SessionRecord)>,
    keep: Option<&TokenHash>,
) -> StoreResult<u64> {
    let mut removed = 0;
    for (id, _) in sessions {
        if keep != Some(&id) {
            t.delete_session(&id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The not-before time moved forward to `at`, read and written in one transaction.
pub(crate) fn raise_ticket_not_before(
    t: &mut dyn Txn,
    realm: &str,
    user: &str,
    at: Timestamp,
) -> StoreResult<Timestamp> {
    let slot = crate::not_before_slot(realm, user);
    let current = t
        .key(&slot)?
        .map(|v| crate::parse_not_before(&v))
        .transpose()?;
    let next = current.map_or(at, |c| c.max(at));
    if current != Some(next) {
        t.put_key(&slot, &next.0.to_string())?;
    }
    Ok(next)
}

pub(crate) fn revoke_user_sessions(
    t: &mut dyn Txn,
    realm: &str,
    user: &str,
    keep: Option<&TokenHash>,
) -> StoreResult<u64> {
    let sessions = t.sessions_of(realm, user)?;
    delete_all_but(t, sessions, keep)
}
