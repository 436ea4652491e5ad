//! `[realms.<name>.ticket]`: stateless signed tickets (mod_auth_tkt and
//! plone.session cookies) for a realm.

use super::{SameSite, Span};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketConfig {
    /// `hmac-sha256` (plone.session), `sha512` / `sha256` (mod_auth_tkt's
    /// `TKTAuthDigestType`), or `md5` (mod_auth_tkt's default: weak, only for
    /// sites that must share tickets with peers that cannot do better).
    pub digest: String,
    /// File with the secrets, one per line: the first signs, all verify.
    pub secrets_file: Option<PathBuf>,
    /// Or: the name of an environment variable holding them, one per line.
    /// Never on the command line, where every user of the machine sees it.
    pub secrets_env: Option<String>,
    /// `auth_tkt` for mod_auth_tkt, Paste and Pyramid; `__ac` for plone.
    pub cookie_name: String,
    /// How issued tickets are written: `base64` (Apache, plone) or `raw`
    /// (Paste, Pyramid; hex digests only). Reading accepts every form.
    pub cookie_encoding: String,
    /// `raw` user ids (mod_auth_tkt, plone) or `percent`-encoded ones (Paste, Pyramid).
    pub user_id: String,
    /// Validity after issue (`TKTAuthTimeout`); 0 = no timeout.
    pub timeout: Span,
    /// Re-issue when less than this fraction of the timeout is left
    /// (`TKTAuthTimeoutRefresh`): 0 never, 1 on every request.
    pub refresh: f64,
    /// Bind tickets to the client's address (off = mod_auth_tkt's
    /// `TKTAuthIgnoreIP on`, hashed as 0.0.0.0).
    pub bind_address: bool,
    /// Tokens written into issued tickets (`TKTAuthToken` groups).
    pub tokens: Vec<String>,
    /// Also create a server-side session at login (and its cookie). Off =
    /// tickets instead of server-side sessions.
    pub with_session: bool,
    /// `max-age` of `GET /ticket/refresh`, so browsers come back that often.
    pub refresh_max_age: Span,
    pub cookie_domain: Option<String>,
    pub cookie_path: String,
    pub cookie_secure: bool,
    pub cookie_same_site: SameSite,
    /// How far in the future a ticket's issue time may be (clock differences
    /// between servers sharing the secret).
    pub clock_skew: Span,
}

impl Default for TicketConfig {
    fn default() -> Self {
        TicketConfig {
            digest: "hmac-sha256".into(),
            secrets_file: None,
            secrets_env: None,
            cookie_name: "auth_tkt".into(),
            cookie_encoding: "base64".into(),
            user_id: "raw".into(),
            timeout: Span(Duration::from_secs(2 * 3600)),
            refresh: 0.5,
            bind_address: false,
            tokens: Vec::new(),
            with_session: true,
            refresh_max_age: Span(Duration::from_secs(300)),
            cookie_domain: None,
            cookie_path: "/".into(),
            cookie_secure: true,
            cookie_same_site: SameSite::Lax,
            clock_skew: Span(Duration::from_secs(300)),
        }
    }
}
