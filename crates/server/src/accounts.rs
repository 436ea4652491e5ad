//! Ending everything a user holds — sessions in every realm, tickets in every
//! ticket realm — and the password-file watcher that does it when a `file`
//! user's password changes or the user is deleted.
//!
//! One function, [`end_user`], serves the admin endpoint
//! (`DELETE /v1/users/{user}/sessions`) and the watcher, so "this account is
//! closed" means the same thing wherever it is said.

use crate::app::App;
use crate::clock::now;
use sessiond_store::{KeySlots, StoreResult};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What [`end_user`] ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ended {
    /// Sessions deleted, or `None` where the store ends them without
    /// counting (memcached: the user's session epoch moved on).
    pub sessions: Option<u64>,
    /// Ticket realms whose tickets of the user are now refused.
    pub ticket_realms: Vec<String>,
}

/// Ends every session of `user` in every realm and refuses the user's
/// tickets in every ticket realm. `why` (a machine word) goes to the log
/// and the audit event.
pub async fn end_user(app: &App, user: &str, why: &str) -> StoreResult<Ended> {
    let sessions = app.store.end_user_sessions(user, now()).await?;
    let ticket_realms = app.ticket_realms();
    for realm in &ticket_realms {
        crate::tickets::revoke(app.store.tickets.as_ref(), realm, user).await?;
    }
    tracing::info!(user, why, sessions = ?sessions, ticket_realms = ticket_realms.len(), "all sessions and tickets of the user ended");
    app.audit.emit(
        crate::audit::Event::new(
            crate::audit::Action::EndUser,
            crate::audit::Outcome::Success,
        )
        .user(user)
        .reason(why),
    );
    Ok(Ended {
        sessions,
        ticket_realms,
    })
}

/// How often the password file is looked at for changed passwords.
const PASSWORD_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Key slot of what the watcher last saw of the password file: user name →
/// fingerprint of the password hash. Kept in the store rather than in memory
/// so a change made while no server ran is acted on at the next start, and
/// so servers sharing a store act on one change once. The name starts with
/// a newline, which no SessionKeyServer slot can (see the ticket slots).
const SEEN_SLOT: &str = "\npassword-file-seen";

/// Fingerprints of the users' password hashes: enough to see a change,
/// useless to an attacker reading the store (a SHA-256 of an Argon2 hash).
fn fingerprints(entries: &sessiond_auth::password_file::Entries) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    entries
        .iter()
        .map(|(user, entry)| {
            let digest = Sha256::digest(entry.hash.as_bytes());
            (user.clone(), hex::encode(&digest[..16]))
        })
        .collect()
}

/// Users whose fingerprint changed or who are gone.
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(user, fp)| after.get(*user) != Some(fp))
        .map(|(user, _)| user.clone())
        .collect()
}

async fn load_seen(store: &dyn KeySlots) -> StoreResult<Option<BTreeMap<String, String>>> {
    Ok(store
        .get_key(SEEN_SLOT)
        .await?
        .and_then(|text| serde_json::from_str(&text).ok()))
}

/// A password change or a deleted user must end the user's sessions and
/// tickets, which otherwise live on (plone.session's known weakness, and
/// every session server's most common complaint). The `file` module's users
/// change passwords with `sessiond user passwd|del`, which rewrite the file:
/// this task notices, within about a second, every user whose password hash
/// changed or who was deleted — also across a restart, through the last
/// state it saw, kept in the store — and ends everything they hold.
///
/// Other modules' accounts change where sessiond cannot see it (a directory,
/// the system's password database); their operators call
/// `DELETE /v1/users/{user}/sessions` (docs/operations.md).
pub async fn watch_password_file(app: Arc<App>) {
    if !app.config.module_enabled("file") {
        return;
    }
    use sessiond_auth::password_file::{read_entries, stamp};
    let path = app.config.auth.password_file.clone();
    let mut seen_stamp = None;
    // The first look always compares with the store's record; later ones
    // only when the file's stamp moved (a missing file keeps stamp `None`).
    let mut first = true;
    let mut tick = tokio::time::interval(PASSWORD_WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let current_stamp = stamp(&path);
        if !first && current_stamp == seen_stamp {
            continue;
        }
        // Mid-write or broken files are reported by the authenticator; they
        // are looked at again on the next tick.
        let Ok(entries) = read_entries(&path) else {
            continue;
        };
        let now_seen = fingerprints(&entries);
        // The new state is recorded only once every changed user has been
        // ended: a crash, a restart or a store outage in between leaves the
        // old state, so the change is found (and acted on) again.
        match act_on_changes(&app, &now_seen).await {
            Ok(()) => {
                seen_stamp = current_stamp;
                first = false;
            }
            Err(e) => {
                metrics::counter!("sessiond_store_errors_total", "op" => "password_watch")
                    .increment(1);
                tracing::error!(error = %e, "password file changed but the store is unavailable: will retry ending the changed users' sessions");
            }
        }
    }
}

/// Ends every user whose fingerprint changed since the recorded state, then
/// records `now_seen`.
async fn act_on_changes(app: &App, now_seen: &BTreeMap<String, String>) -> StoreResult<()> {
    let before = load_seen(app.store.keys.as_ref()).await?;
    if before.as_ref() == Some(now_seen) {
        return Ok(());
    }
    if let Some(before) = &before {
        for user in changed(before, now_seen) {
            end_user(app, &user, "password_changed_or_user_deleted").await?;
        }
    }
    let text = serde_json::to_string(now_seen).unwrap_or_default();
    app.store.keys.put_key(SEEN_SLOT, &text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_and_deleted_users_are_found() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(u, f)| (u.to_string(), f.to_string()))
                .collect()
        };
        let before = map(&[("alice", "1"), ("bob", "2"), ("carol", "3")]);
        let after = map(&[("alice", "1"), ("bob", "9"), ("dave", "4")]);
        assert_eq!(changed(&before, &after), vec!["bob", "carol"]);
    }
}
