//! Administration of a user's sessions and tickets: list sessions, end one,
//! end all, or end all but one (the caller's own); end a user everywhere;
//! read or move the user's ticket not-before time. Only with the admin credential configured
//! in the server (`server.admin_token_file` / `SESSIOND_ADMIN_TOKEN`), sent as
//! `Authorization: Bearer …`; without one configured these routes answer 404,
//! as if they did not exist.
//!
//! Sessions are named by their id: the hex SHA-256 of the token, which is
//! what the store keys them by and cannot be turned back into a token.

use super::error::Error;
use super::extract::{Admin, Users};
use crate::app::App;
use crate::audit::{Action, Event, Outcome};
use crate::clock::now;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sessiond_core::{Token, TokenHash};
use sessiond_store::UserSession;
use std::sync::Arc;

fn parse_id(text: &str) -> Result<TokenHash, Error> {
    TokenHash::from_hex(text).ok_or_else(|| {
        Error::BadRequest("a session id is 64 hex characters (as listed by GET …/sessions)".into())
    })
}

#[derive(Serialize)]
struct SessionEntry {
    id: String,
    source: String,
    created: i64,
    last_seen: i64,
    expires_at: Option<i64>,
    client_addr: Option<String>,
    device: Option<String>,
    superseded: bool,
}

fn entry(s: &UserSession) -> SessionEntry {
    SessionEntry {
        id: s.id.to_hex(),
        source: s.record.identity.source.clone(),
        created: s.record.created.0,
        last_seen: s.record.last_access.0,
        expires_at: s.record.ends_at().map(|t| t.0),
        client_addr: s.record.client_addr.map(|a| a.to_string()),
        device: s.record.device.clone(),
        superseded: s.superseded,
    }
}

/// An admin request that did what it asked (its refusals are audited
/// where the credential is checked, `extract::own_credential`).
fn admin_done(app: &App, what: &str, realm: &str, user: &str, session: Option<&TokenHash>) {
    let ev = Event::new(Action::Admin, Outcome::Success)
        .realm(realm)
        .user(user)
        .reason(what);
    app.audit.emit(match session {
        Some(s) => ev.session(s),
        None => ev,
    });
}

/// `GET /v1/users/{realm}/{user}/sessions`
pub async fn list(
    State(app): State<Arc<App>>,
    _: Admin,
    Users(users): Users,
    Path((realm, user)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    let sessions = users
        .list_user_sessions(&realm, &user, now())
        .await
        .map_err(Error::store("list_user_sessions"))?;
    admin_done(&app, "list_sessions", &realm, &user, None);
    let entries: Vec<SessionEntry> = sessions.iter().map(entry).collect();
    Ok(Json(
        json!({"realm": realm, "user": user, "sessions": entries}),
    ))
}

/// `DELETE /v1/users/{realm}/{user}/sessions/{id}`
pub async fn revoke_one(
    State(app): State<Arc<App>>,
    _: Admin,
    Path((realm, user, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, Error> {
    let id = parse_id(&id)?;
    super::check::end_own_session(&app, id, &realm, &user).await?;
    admin_done(&app, "end_session", &realm, &user, Some(&id));
    Ok(Json(json!({"revoked": 1})))
}

/// `DELETE /v1/users/{user}/sessions`: everything the user holds, in every
/// realm — sessions, and tickets in every ticket realm. For an account that
/// was disabled or whose password changed outside sessiond (a directory,
/// PAM), where sessiond cannot notice it.
pub async fn end_user(
    State(app): State<Arc<App>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<Value>, Error> {
    sessiond_core::names::check_name("user", &user)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let ended = crate::accounts::end_user(&app, &user, "admin_request")
        .await
        .map_err(Error::store("end_user_sessions"))?;
    Ok(Json(json!({
        "user": user,
        "sessions_ended": ended.sessions,
        "ticket_realms": ended.ticket_realms,
    })))
}

/// Optional body of `DELETE /v1/users/{realm}/{user}/sessions`: keep one
/// session, named by id or by its token (the caller's own).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KeepBody {
    except_id: Option<String>,
    except_token: Option<String>,
}

/// `DELETE /v1/users/{realm}/{user}/sessions`
pub async fn revoke_all(
    State(app): State<Arc<App>>,
    _: Admin,
    Users(users): Users,
    Path((realm, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Error> {
    // The body is optional: without one, every session goes.
    let keep: KeepBody = if body.iter().all(u8::is_ascii_whitespace) {
        KeepBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Error::BadRequest(format!(
                "body: expected {{\"except_id\": …}} or {{\"except_token\": …}}: {e}"
            ))
        })?
    };
    let keep = match (keep.except_id, keep.except_token) {
        (Some(_), Some(_)) => {
            return Err(Error::BadRequest(
                "give except_id or except_token, not both".into(),
            ))
        }
        (Some(id), None) => Some(parse_id(&id)?),
        (None, Some(token)) => Some(Token::from_client(token).hash()),
        (None, None) => None,
    };
    let revoked = users
        .revoke_user_sessions(&realm, &user, keep, now())
        .await
        .map_err(Error::store("revoke_user_sessions"))?;
    admin_done(&app, "end_sessions", &realm, &user, None);
    Ok(Json(json!({"revoked": revoked})))
}

/// `GET /v1/users/{realm}/{user}/tickets`: the user's not-before time.
pub async fn ticket_not_before(
    State(app): State<Arc<App>>,
    _: Admin,
    Path((realm, user)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    super::tickets::ticket_realm(&app, &realm)?;
    let nb = app
        .store
        .tickets
        .ticket_not_before(&realm, &user)
        .await
        .map_err(Error::store("ticket_not_before"))?;
    admin_done(&app, "read_ticket_not_before", &realm, &user, None);
    Ok(Json(
        json!({"realm": realm, "user": user, "not_before": nb.map(|t| t.0)}),
    ))
}

/// `DELETE /v1/users/{realm}/{user}/tickets`: every ticket of the user
/// issued until now stops working, on every server sharing the store.
pub async fn revoke_tickets(
    State(app): State<Arc<App>>,
    _: Admin,
    Path((realm, user)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    super::tickets::ticket_realm(&app, &realm)?;
    let nb = crate::tickets::revoke(app.store.tickets.as_ref(), &realm, &user)
        .await
        .map_err(Error::store("raise_ticket_not_before"))?;
    app.audit.emit(
        Event::new(Action::TicketRevoke, Outcome::Success)
            .realm(&realm)
            .user(&user)
            .reason("admin_request"),
    );
    Ok(Json(
        json!({"realm": realm, "user": user, "not_before": nb.0}),
    ))
}
