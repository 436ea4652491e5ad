//! `[realms.<name>.ticket]`: stateless signed tickets (mod_auth_tkt and
//! plone.session cookies) for a realm.

use super::{check_cookie_domain, is_cookie_name, SameSite, Span};
use anyhow::bail;
use serde::{Deserialize, Serialize};
use sessiond_core::ticket::{CookieEncoding, DigestKind, UserIdEncoding};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketConfig {
    /// `hmac-sha256` (plone.session), `sha512` / `sha256` (mod_auth_tkt's
    /// `TKTAuthDigestType`), or `md5` (mod_auth_tkt's default: weak, only for
    /// sites that must share tickets with peers that cannot do better).
    pub digest: DigestKind,
    /// File with the secrets, one per line: the first signs, all verify.
    pub secrets_file: Option<PathBuf>,
    /// Or: the name of an environment variable holding them, one per line.
    /// Never on the command line, where every user of the machine sees it.
    pub secrets_env: Option<String>,
    /// `auth_tkt` for mod_auth_tkt, Paste and Pyramid; `__ac` for plone.
    pub cookie_name: String,
    /// How issued tickets are written: `base64` (Apache, plone) or `raw`
    /// (Paste, Pyramid; hex digests only). Reading accepts every form.
    pub cookie_encoding: CookieEncoding,
    /// `raw` user ids (mod_auth_tkt, plone) or `percent`-encoded ones (Paste, Pyramid).
    pub user_id: UserIdEncoding,
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
            digest: DigestKind::HmacSha256,
            secrets_file: None,
            secrets_env: None,
            cookie_name: "auth_tkt".into(),
            cookie_encoding: CookieEncoding::Base64,
            user_id: UserIdEncoding::Raw,
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

impl TicketConfig {
    /// Checks what types alone cannot; `key` names the section in errors
    /// (`realms.web.ticket`), `loopback` whether the server only listens on
    /// a loopback address (cookies without `Secure` are allowed then).
    pub fn validate(&self, key: &str, loopback: bool) -> anyhow::Result<()> {
        if self.cookie_encoding == CookieEncoding::Raw && !self.digest.is_hex() {
            bail!(
                "{key}.cookie_encoding: raw cookies need a hex digest; hmac-sha256 tickets are binary, use base64"
            );
        }
        if !(0.0..=1.0).contains(&self.refresh) {
            bail!(
                "{key}.refresh: {} is not a fraction between 0 and 1",
                self.refresh
            );
        }
        if u32::try_from(self.timeout.0.as_secs()).is_err() {
            bail!("{key}.timeout: too long");
        }
        if !is_cookie_name(&self.cookie_name) {
            bail!("{key}.cookie_name: letters, digits, - and _ only");
        }
        if !self.cookie_secure && !loopback {
            bail!(
                "{key}.cookie_secure: cookies without Secure travel in clear; only allowed while server.bind is a loopback address"
            );
        }
        if let Some(t) = self
            .tokens
            .iter()
            .find(|t| t.is_empty() || t.contains([',', '!', '\0']))
        {
            bail!("{key}.tokens: {t:?} is empty or contains ',', '!' or NUL");
        }
        if let Some(domain) = &self.cookie_domain {
            check_cookie_domain(&format!("{key}.cookie_domain"), domain)?;
        }
        let path_ok = self.cookie_path.starts_with('/')
            && self
                .cookie_path
                .chars()
                .all(|c| c.is_ascii_graphic() && c != ';' && c != ',');
        if !path_ok {
            bail!(
                "{key}.cookie_path: {:?} is not a cookie path (it starts with / and holds \
                 no spaces, ; or ,)",
                self.cookie_path
            );
        }
        match (&self.secrets_file, &self.secrets_env) {
            (Some(_), Some(_)) => {
                bail!("{key}.secrets_file: set secrets_file or secrets_env, not both")
            }
            (None, None) => {
                bail!("{key}.secrets_file: tickets need secrets (secrets_file or secrets_env)")
            }
            _ => Ok(()),
        }
    }
}
