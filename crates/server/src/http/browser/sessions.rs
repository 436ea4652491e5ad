//! "My sessions": a logged-in user sees their sessions in the realm (device,
//! address, last seen) and ends any of them, or all but this one. Plain HTML
//! forms, no script; the same data as JSON for pages that want it.

use super::origin::SameOrigin;
use super::BrowserSession;
use super::{page, see_other};
use crate::app::App;
use crate::clock::now;
use crate::http::error::Error;
use crate::http::extract::{wants_json, FormBody, Users};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use sessiond_core::TokenHash;
use sessiond_store::UserSession;
use std::sync::Arc;

const PATH: &str = "/session/sessions";

fn utc(secs: i64) -> String {
    match cookie::time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => secs.to_string(),
    }
}

/// How long ago `secs` was, as people say it ("5 minutes ago"). Written
/// here: a handful of lines, where a crate would bring a locale system the
/// page does not use.
fn ago(now: i64, secs: i64) -> String {
    let d = (now - secs).max(0);
    let (n, unit) = match d {
        0..=59 => return "just now".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        _ => (d / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A time as the page shows it: relative, with the exact UTC time below
/// and in the `datetime` attribute.
fn when(now: i64, secs: i64) -> String {
    let exact = utc(secs);
    let iso = cookie::time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&cookie::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    format!(
        r#"<time datetime="{iso}">{}</time><span class="exact">{}</span>"#,
        page::escape(&ago(now, secs)),
        page::escape(&exact)
    )
}

/// The device as people name it ("Chrome 156 on Linux"), from the stored
/// User-Agent by woothee (a maintained parser with its dataset built in);
/// the raw text, shortened, for anything that is not a browser.
pub fn device_name(ua: &str) -> String {
    let Some(r) = woothee::parser::Parser::new().parse(ua) else {
        return shorten(ua);
    };
    // Browsers on computers, phones and appliances; for anything else
    // (an HTTP library, a crawler) its own text says more.
    if !matches!(
        r.category,
        "pc" | "smartphone" | "mobilephone" | "appliance"
    ) {
        return shorten(ua);
    }
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let major = r.version.split('.').next().unwrap_or("");
    let browser = match (known(r.name), known(major)) {
        (true, true) => format!("{} {major}", r.name),
        (true, false) => r.name.to_owned(),
        _ => return shorten(ua),
    };
    if known(r.os) {
        format!("{browser} on {}", r.os)
    } else {
        browser
    }
}

fn shorten(ua: &str) -> String {
    let mut s: String = ua.chars().take(40).collect();
    if ua.chars().count() > 40 {
        s.push('…');
    }
    s
}

fn back_to_list(realm: &str, default_realm: &str) -> Response {
    let target = if realm == default_realm {
        PATH.to_owned()
    } else {
        format!(
            "{PATH}?realm={}",
            percent_encoding::utf8_percent_encode(realm, percent_encoding::NON_ALPHANUMERIC)
        )
    };
    see_other(&target, PATH)
}

fn to_login(app: &App) -> Response {
    let target = format!(
        "{}?next={}",
        app.config.browser.login_url, "%2Fsession%2Fsessions"
    );
    see_other(&target, "/login")
}

fn render(
    realm: &str,
    user: &str,
    groups: &[String],
    own: &TokenHash,
    sessions: Result<&[UserSession], String>,
) -> String {
    let t = now().0;
    let e = page::escape;
    // the realm as a query value in the forms' actions, once
    let realm_q = e(&percent_encoding::utf8_percent_encode(
        realm,
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string());
    let mut rows = String::new();
    let who = format!(
        r#"<p class="who">Signed in as <strong>{}</strong> in {}<span class="groups"> · groups: {}</span></p>"#,
        e(user),
        e(realm),
        if groups.is_empty() {
            "none".to_owned()
        } else {
            e(&groups.join(", "))
        }
    );
    let list = match sessions {
        Ok(list) => list,
        Err(message) => {
            return layout(
                user,
                &format!(r#"{who}<p class="note" role="status">{}</p>"#, e(&message)),
            );
        }
    };
    for s in list {
        let this = &s.id == own;
        let device = s
            .record
            .device
            .as_deref()
            .map(device_name)
            .unwrap_or_else(|| "unknown device".into());
        let addr = s
            .record
            .client_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let action = if this {
            "<strong>this device</strong>".to_owned()
        } else {
            format!(
                r#"<form class="inline" method="post" action="{PATH}/end?realm={realm_q}"><input type="hidden" name="id" value="{id}"><button class="secondary" type="submit">End</button></form>"#,
                id = s.id.to_hex()
            )
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            e(&device),
            e(&addr),
            when(t, s.record.created.0),
            when(t, s.record.last_access.0),
            action
        ));
    }
    let others = list.iter().filter(|s| &s.id != own).count();
    let end_all = if others > 0 {
        format!(
            r#"<form class="inline" method="post" action="{PATH}/end_others?realm={realm_q}"><button type="submit">End all other sessions ({others})</button></form>"#
        )
    } else {
        r#"<p class="note">No other sessions.</p>"#.to_owned()
    };
    layout(
        user,
        &format!(
            r#"{who}<table>
<caption>Sessions of {user} in {realm}</caption>
<thead><tr><th scope="col">Device</th><th scope="col">Address</th><th scope="col">Signed in</th><th scope="col">Last seen</th><th scope="col"></th></tr></thead>
<tbody>
{rows}</tbody>
</table>
{end_all}
<form class="inline" method="post" action="/session/logout"><button type="submit">Log out</button></form>"#,
            user = e(user),
            realm = e(realm),
        ),
    )
}

fn layout(user: &str, body: &str) -> String {
    format!("  <h1>Your sessions, {}</h1>\n{body}", page::escape(user))
}

fn html(status: StatusCode, body: String) -> Response {
    page::html(status, "Your sessions", &body, true)
}

/// `GET /session/sessions`
pub async fn list(
    State(app): State<Arc<App>>,
    session: Result<BrowserSession, Error>,
    users: Result<Users, Error>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let BrowserSession {
        realm,
        token,
        record,
    } = match session {
        Ok(s) => s,
        // A page: to the login form, and back here after it.
        Err(Error::LoginRequired { .. }) if !wants_json(&headers) => return Ok(to_login(&app)),
        Err(e) => return Err(e),
    };
    let own = token.hash();
    let user = record.identity.user.clone();
    let sessions = match users {
        Ok(Users(users)) => Ok(users
            .list_user_sessions(&realm, &user, now())
            .await
            .map_err(Error::store("list_user_sessions"))?),
        Err(e) => Err(e),
    };
    if wants_json(&headers) {
        let list = sessions?;
        let entries: Vec<_> = list
            .iter()
            .map(|s| {
                json!({
                    "id": s.id.to_hex(),
                    "this_session": s.id == own,
                    "device": s.record.device,
                    "device_name": s.record.device.as_deref().map(device_name),
                    "client_addr": s.record.client_addr.map(|a| a.to_string()),
                    "created": s.record.created.0,
                    "last_seen": s.record.last_access.0,
                    "expires_at": s.record.ends_at().map(|t| t.0),
                })
            })
            .collect();
        return Ok(
            Json(json!({"user": user, "realm": realm, "sessions": entries})).into_response(),
        );
    }
    let body = render(
        &realm,
        &user,
        &record.identity.groups,
        &own,
        sessions.as_deref().map_err(|_| {
            "This server's session store cannot list sessions. Logging out ends this one."
                .to_owned()
        }),
    );
    Ok(html(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::{ago, device_name};

    #[test]
    fn devices_as_people_name_them() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.73 Safari/537.36";
        assert_eq!(device_name(chrome), "Chrome 156 on Linux");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        assert_eq!(device_name(firefox), "Firefox 140 on Windows 10");
        assert_eq!(device_name("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(device_name(&"x".repeat(60)), format!("{}…", "x".repeat(40)));
    }

    #[test]
    fn times_as_people_say_them() {
        assert_eq!(ago(1000, 990), "just now");
        assert_eq!(ago(1000, 1000 - 60), "1 minute ago");
        assert_eq!(ago(10_000, 10_000 - 300), "5 minutes ago");
        assert_eq!(ago(100_000, 100_000 - 7200), "2 hours ago");
        assert_eq!(ago(1_000_000, 1_000_000 - 86_400 * 3), "3 days ago");
    }
}

#[derive(Deserialize)]
pub struct EndForm {
    id: String,
}

/// `POST /session/sessions/end`: ends one of the caller's own sessions.
pub async fn end(
    State(app): State<Arc<App>>,
    _: SameOrigin,
    BrowserSession { realm, record, .. }: BrowserSession,
    headers: HeaderMap,
    FormBody(form): FormBody<EndForm>,
) -> Result<Response, Error> {
    let id = TokenHash::from_hex(&form.id)
        .ok_or_else(|| Error::BadRequest("the form needs the id of a session".into()))?;
    crate::http::check::end_own_session(&app, id, &realm, &record.identity.user).await?;
    tracing::info!(realm, user = %record.identity.user, session = %id.short(), "session ended by its user");
    crate::audit::revoked(&app.audit, &realm, &record, &id);
    if wants_json(&headers) {
        return Ok(Json(json!({"ended": 1})).into_response());
    }
    Ok(back_to_list(&realm, &app.config.browser.realm))
}

/// `POST /session/sessions/end_others`: every session of the caller but this one.
pub async fn end_others(
    State(app): State<Arc<App>>,
    _: SameOrigin,
    BrowserSession {
        realm,
        token,
        record,
    }: BrowserSession,
    Users(users): Users,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let ended = users
        .revoke_user_sessions(&realm, &record.identity.user, Some(token.hash()), now())
        .await
        .map_err(Error::store("revoke_user_sessions"))?;
    tracing::info!(realm, user = %record.identity.user, ended, "other sessions ended by their user");
    app.audit.emit(
        crate::audit::Event::new(crate::audit::Action::Revoke, crate::audit::Outcome::Success)
            .realm(&realm)
            .user(&record.identity.user)
            .reason("all_other_sessions"),
    );
    if wants_json(&headers) {
        return Ok(Json(json!({"ended": ended})).into_response());
    }
    Ok(back_to_list(&realm, &app.config.browser.realm))
}
