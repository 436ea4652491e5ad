//! A session as JSON, written once: `/v1` login, validate and replace, the
//! browser's whoami and login answers, and a ticket accepted in a session's
//! place all show the same fields.

use super::tickets::Holder;
use crate::tickets::TicketRealm;
use serde::Serialize;
use serde_json::Value;
use sessiond_core::session::SessionRecord;
use sessiond_core::{Identity, Token};

#[derive(Serialize)]
pub struct SessionView<'a> {
    pub realm: &'a str,
    pub user: &'a str,
    pub source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The identity's groups (a ticket's tokens).
    pub groups: &'a [String],
    pub created: i64,
    pub last_access: i64,
    /// When the session ends if unused (Unix seconds), or null for never.
    pub expires_at: Option<i64>,
}

/// A stored session.
pub fn session(r: &SessionRecord) -> SessionView<'_> {
    SessionView {
        realm: &r.realm,
        user: &r.identity.user,
        source: &r.identity.source,
        uid: r.identity.uid,
        gid: r.identity.gid,
        groups: &r.identity.groups,
        created: r.created.0,
        last_access: r.last_access.0,
        expires_at: r.ends_at().map(|t| t.0),
    }
}

/// A signed ticket, shown like a session of source `ticket`: created when
/// it was issued, ending when its timeout does.
pub fn ticket<'a>(tr: &'a TicketRealm, holder: &'a Holder) -> SessionView<'a> {
    let issued = i64::from(holder.ticket.issued);
    SessionView {
        realm: &tr.realm,
        user: &holder.ticket.user,
        source: "ticket",
        uid: None,
        gid: None,
        groups: &holder.ticket.tokens,
        created: issued,
        last_access: issued,
        expires_at: tr.timing.timeout.map(|t| issued + i64::from(t)),
    }
}

/// A login in a ticket-only realm: who, and that a ticket (no server-side
/// session) now speaks for them.
pub fn ticket_login(realm: &str, identity: &Identity) -> Value {
    serde_json::json!({
        "user": identity.user,
        "realm": realm,
        "source": identity.source,
        "groups": identity.groups,
        "ticket": true,
    })
}

/// A new or replaced session with its token (the only answers that carry one).
pub fn with_token(token: &Token, record: &SessionRecord) -> Value {
    let mut v = serde_json::to_value(session(record)).expect("views serialise");
    v["token"] = Value::String(token.expose().to_owned());
    v
}
