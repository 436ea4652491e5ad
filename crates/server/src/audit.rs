//! Audit events: one structured JSON record per security-relevant action
//! (logins and their failures, logout, revoke, replace, admin actions,
//! credential fetches, ticket revocations, throttling), for a SIEM.
//!
//! Separate from the ordinary log on purpose: its fields are a contract
//! (`docs/operations.md#audit-events`), it has its own sink (standard error,
//! an append-only file reopened on `SIGHUP` for logrotate, or syslog), and
//! it is never filtered by `SESSIOND_LOG`. An event names a session by a
//! short prefix of its token's SHA-256 (`TokenHash::short`), never the token;
//! no password, ticket or credential is ever a field, and no field takes
//! free text from a request except names already checked at login.
//!
//! The request id and client address come from the request's context
//! ([`RequestContext`], set by `http::middleware::pipeline`), so call sites
//! name only what happened.

use crate::config::{AuditConfig, AuditSink};
use anyhow::Context;
use parking_lot::Mutex;
use serde::Serialize;
use sessiond_core::TokenHash;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A login (password, Negotiate, a ticket realm's login), or its failure.
    Login,
    /// A browser logout.
    Logout,
    /// A session ended by its token (`/revoke`, `DELETE /v1/sessions`) or by
    /// its user from "my sessions".
    Revoke,
    /// A session moved to a new token.
    Replace,
    /// A login in a realm that supersedes, after earlier ones of the same
    /// user: those sessions answer SUPERCEDED from now on (`session` is the
    /// new login's).
    Supersede,
    /// A check found a session past its end (idle, absolute, or its
    /// credentials') and deleted it. Stores with their own TTLs (Redis,
    /// memcached) usually drop such records before any check sees them.
    Expire,
    /// An admin request: listing or ending a user's sessions, tickets.
    Admin,
    /// A back end fetched a session's Kerberos credentials.
    CredentialFetch,
    /// A user's tickets were revoked.
    TicketRevoke,
    /// Every session and ticket of a user ended (password change, deleted
    /// user, admin).
    EndUser,
    /// A login refused by the failure limits before any check.
    Throttled,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::Revoke => "revoke",
            Action::Replace => "replace",
            Action::Supersede => "supersede",
            Action::Expire => "expire",
            Action::Admin => "admin",
            Action::CredentialFetch => "credential_fetch",
            Action::TicketRevoke => "ticket_revoke",
            Action::EndUser => "end_user",
            Action::Throttled => "throttled",
        }
    }
}

/// How it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One event as a call site describes it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub action: Action,
    pub outcome: Outcome,
    pub realm: Option<&'a str>,
    pub user: Option<&'a str>,
    /// How the user authenticated (`auth/file`, `negotiate`, `ticket`, …).
    pub source: Option<&'a str>,
    pub session: Option<&'a TokenHash>,
    /// A short machine word: the failure class (`wrong_password`,
    /// `auth_unavailable`, `rate_limited`), or what an admin did.
    pub reason: Option<&'a str>,
    /// The session a replace moved this one to.
    pub replaced_by: Option<&'a TokenHash>,
}

impl<'a> Event<'a> {
    pub fn new(action: Action, outcome: Outcome) -> Event<'a> {
        Event {
            action,
            outcome,
            realm: None,
            user: None,
            source: None,
            session: None,
            reason: None,
            replaced_by: None,
        }
    }
    pub fn realm(self, realm: &'a str) -> Self {
        Event {
            realm: Some(realm),
            ..self
        }
    }
    pub fn user(self, user: &'a str) -> Self {
        Event {
            user: Some(user),
            ..self
        }
    }
    pub fn source(self, source: &'a str) -> Self {
        Event {
            source: Some(source),
            ..self
        }
    }
    pub fn session(self, session: &'a TokenHash) -> Self {
        Event {
            session: Some(session),
            ..self
        }
    }
    pub fn reason(self, reason: &'a str) -> Self {
        Event {
            reason: Some(reason),
            ..self
        }
    }
}

/// The request an event happens in: its id (also the answer's
/// `x-request-id`) and the client's address.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub id: RequestId,
    pub client: Option<IpAddr>,
}

/// A request id unique across processes without a random read per request
/// (this is every request's path): 8 random hex digits chosen once per
/// process, then a 32-bit counter. Kept as numbers and written out only
/// where shown (the answer's header, an audit record): formatting a
/// `String` per request was a visible share of a request's own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    prefix: u32,
    n: u32,
}

impl RequestId {
    /// The next id of this process.
    pub fn next() -> RequestId {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::OnceLock;
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            u32::from_str_radix(&sessiond_core::token::random_hex(4), 16)
                .expect("random_hex gives hex digits")
        });
        RequestId {
            prefix,
            n: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The 16 lower-case hex digits.
    pub fn hex(self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let both = (u64::from(self.prefix) << 32) | u64::from(self.n);
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = DIGITS[((both >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
    }
}

tokio::task_local! {
    /// Set around each request by `middleware::pipeline`.
    pub static REQUEST: RequestContext;
}

/// The record as written: a stable set of fields.
#[derive(Serialize)]
struct Record<'a> {
    time: String,
    event: &'static str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

enum Sink {
    Off,
    Stderr,
    /// Opened in append mode; reopened (by path) on `SIGHUP`, so logrotate
    /// can move the file away.
    File {
        path: PathBuf,
        file: std::fs::File,
    },
    Syslog(Box<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>),
}

/// Where events go, for the life of the process.
pub struct Audit {
    sink: Mutex<Sink>,
}

fn open_append(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("audit.path = {}", path.display()))
}

impl Audit {
    /// Opens the configured sink (a file that cannot be opened stops the
    /// start, with the path and the reason).
    pub fn open(cfg: &AuditConfig) -> anyhow::Result<Audit> {
        let sink = match cfg.sink {
            AuditSink::Off => Sink::Off,
            AuditSink::Stderr => Sink::Stderr,
            AuditSink::File => {
                let path = cfg
                    .path
                    .clone()
                    .context("audit.sink = \"file\" needs audit.path")?;
                let file = open_append(&path)?;
                Sink::File { path, file }
            }
            AuditSink::Syslog => {
                let formatter = syslog::Formatter3164 {
                    facility: syslog::Facility::LOG_AUTHPRIV,
                    hostname: None,
                    process: "sessiond".into(),
                    pid: std::process::id(),
                };
                let logger = syslog::unix(formatter)
                    .map_err(|e| anyhow::anyhow!("audit.sink = \"syslog\": {e}"))?;
                Sink::Syslog(Box::new(logger))
            }
        };
        Ok(Audit {
            sink: Mutex::new(sink),
        })
    }

    /// No events (tests that build an `App` by hand).
    pub fn off() -> Audit {
        Audit {
            sink: Mutex::new(Sink::Off),
        }
    }

    /// Reopens a file sink by its path (after logrotate moved it).
    pub fn reopen(&self) {
        let mut sink = self.sink.lock();
        if let Sink::File { path, file } = &mut *sink {
            match open_append(path) {
                Ok(f) => {
                    *file = f;
                    tracing::info!(path = %path.display(), "audit file reopened");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot reopen the audit file; still writing to the old one")
                }
            }
        }
    }

    /// Writes one event and counts it (`sessiond_audit_events_total`).
    pub fn emit(&self, ev: Event<'_>) {
        metrics::counter!("sessiond_audit_events_total", "event" => ev.action.name(), "outcome" => ev.outcome.name())
            .increment(1);
        let mut sink = self.sink.lock();
        if matches!(*sink, Sink::Off) {
            return;
        }
        let context = REQUEST.try_with(|c| *c).ok();
        let record = Record {
            time: now_rfc3339(),
            event: ev.action.name(),
            outcome: ev.outcome.name(),
            request_id: context.as_ref().map(|c| c.id.to_string()),
            client: context.and_then(|c| c.client),
            realm: ev.realm,
            user: ev.user,
            source: ev.source,
            session: ev.session.map(|s| s.short()),
            replaced_by: ev.replaced_by.map(|s| s.short()),
            reason: ev.reason,
        };
        let line = serde_json::to_string(&record).expect("audit records serialise");
        let written = match &mut *sink {
            Sink::Off => Ok(()),
            Sink::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
            Sink::File { file, .. } => writeln!(file, "{line}"),
            Sink::Syslog(logger) => logger
                .notice(line)
                .map_err(|e| std::io::Error::other(e.to_string())),
        };
        if let Err(e) = written {
            metrics::counter!("sessiond_audit_write_errors_total").increment(1);
            tracing::error!(error = %e, "cannot write an audit event");
        }
    }
}

fn now_rfc3339() -> String {
    cookie::time::OffsetDateTime::now_utc()
        .format(&cookie::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A session ended by its token.
pub fn revoked(audit: &Audit, realm: &str, r: &sessiond_core::SessionRecord, id: &TokenHash) {
    audit.emit(
        Event::new(Action::Revoke, Outcome::Success)
            .realm(realm)
            .user(&r.identity.user)
            .source(&r.identity.source)
            .session(id),
    );
}

/// A session `id` a check found past its end; `reason` says which end:
/// `idle_timeout` or `lifetime` (absolute, or capped by its credentials).
pub fn expired(audit: &Audit, realm: &str, r: &sessiond_core::SessionRecord, id: &TokenHash) {
    let reason = match (r.idle_end(), r.expires_at) {
        (Some(idle), Some(end)) if idle < end => "idle_timeout",
        (Some(_), None) => "idle_timeout",
        _ => "lifetime",
    };
    audit.emit(
        Event::new(Action::Expire, Outcome::Success)
            .realm(realm)
            .user(&r.identity.user)
            .source(&r.identity.source)
            .session(id)
            .reason(reason),
    );
}

/// A session moved from `old` to `new` (the event names the old one, and
/// the new one in `replaced_by`).
pub fn replaced(
    audit: &Audit,
    realm: &str,
    r: &sessiond_core::SessionRecord,
    old: &TokenHash,
    new: &TokenHash,
) {
    audit.emit(Event {
        replaced_by: Some(new),
        ..Event::new(Action::Replace, Outcome::Success)
            .realm(realm)
            .user(&r.identity.user)
            .source(&r.identity.source)
            .session(old)
    });
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_distinct() {
        let id = RequestId {
            prefix: 0xdead_beef,
            n: 0x1a,
        };
        assert_eq!(id.to_string(), "deadbeef0000001a");
        assert_eq!(&id.hex(), b"deadbeef0000001a");
        let (a, b) = (RequestId::next(), RequestId::next());
        assert_ne!(a, b);
        assert_eq!(a.prefix, b.prefix, "one prefix per process");
    }
}
