//! `[browser]`: cookie sessions, the login page and forward auth.

use super::Span;
use super::{check_cookie_domain, is_cookie_name};
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// Session cookie attributes. The defaults are the safe ones: with `secure`
/// and no `domain` the name gets the `__Host-` prefix, which browsers only
/// accept on HTTPS, for `Path=/` and without `Domain` — so no subdomain and no
/// plain-HTTP page can plant or overwrite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookieConfig {
    /// Base name; the sent name is `__Host-<name>` when the prefix applies.
    pub name: String,
    /// `Secure`. Turning it off is only allowed while sessiond listens on a
    /// loopback address (development without TLS).
    pub secure: bool,
    pub same_site: SameSite,
    /// `Domain`, to share the cookie with subdomains (drops `__Host-`).
    pub domain: Option<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "sessiond".into(),
            secure: true,
            same_site: SameSite::Lax,
            domain: None,
        }
    }
}

impl CookieConfig {
    /// Checks one cookie's settings; `key` names it in errors.
    pub fn validate(&self, key: &str, loopback: bool) -> anyhow::Result<()> {
        let c = self;
        if let Some(domain) = &c.domain {
            check_cookie_domain(&format!("{key}.domain"), domain)?;
        }
        if !is_cookie_name(&c.name) {
            bail!(
                "{key}.name: letters, digits, - and _ only (got {:?})",
                c.name
            );
        }
        if !c.secure && !loopback {
            bail!(
                "{key}.secure = false: cookies without Secure travel in clear; \
                 only allowed while server.bind is a loopback address (development)"
            );
        }
        if c.same_site == SameSite::None && !c.secure {
            bail!("{key}.same_site = \"none\" needs secure = true (browsers refuse it otherwise)");
        }
        Ok(())
    }

    /// The cookie's name as sent.
    pub fn wire_name(&self) -> String {
        if self.secure && self.domain.is_none() {
            format!("__Host-{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserConfig {
    /// Realm of cookie sessions when a login form names none, and of `GET /auth`
    /// without `?realm=`.
    pub realm: String,
    /// Session cookie attributes for every realm without its own
    /// `[realms.<name>.cookie]` table.
    pub cookie: CookieConfig,
    /// Origins (`https://app.example.com`) besides sessiond's own that may
    /// post to it (CSRF check) and that `next` may send the browser to.
    pub allowed_origins: Vec<String>,
    /// Where `GET /auth` sends a browser that must log in (the login page as
    /// the proxy serves it).
    pub login_url: String,
    /// "Remember me": the session's limits when the box is ticked; the cookie
    /// then persists (`Max-Age`) instead of ending with the browser.
    pub remember_me: Option<RememberMe>,
    /// Headers `GET /auth` answers with.
    pub user_header: String,
    pub realm_header: String,
    pub source_header: String,
    /// The session's groups, comma-separated (empty when it has none).
    pub groups_header: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RememberMe {
    pub idle_timeout: Span,
    pub max_lifetime: Span,
}

impl BrowserConfig {
    /// Checks what types alone cannot; `loopback`: whether the server only
    /// listens on a loopback address (cookies without `Secure` are allowed then).
    pub fn validate(&self, loopback: bool) -> anyhow::Result<()> {
        let b = self;
        b.cookie.validate("browser.cookie", loopback)?;
        for origin in &b.allowed_origins {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .contains('/')
                && !origin.ends_with('/');
            if !ok {
                bail!("browser.allowed_origins: {origin:?} is not an origin like \"https://app.example.com\"");
            }
        }
        for (key, name) in [
            ("browser.user_header", &b.user_header),
            ("browser.realm_header", &b.realm_header),
            ("browser.source_header", &b.source_header),
            ("browser.groups_header", &b.groups_header),
        ] {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                bail!("{key}: {name:?} is not a valid HTTP header name");
            }
        }
        if b.login_url.is_empty() {
            bail!("browser.login_url: must not be empty");
        }
        sessiond_core::names::check_text("browser.realm", &b.realm)?;
        Ok(())
    }

    /// The realm a browser route works in: the one the request names, else
    /// [`BrowserConfig::realm`].
    pub fn realm_or_default(&self, asked: Option<String>) -> String {
        asked.unwrap_or_else(|| self.realm.clone())
    }
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            realm: "web".into(),
            cookie: CookieConfig::default(),
            allowed_origins: Vec::new(),
            login_url: "/login".into(),
            remember_me: None,
            user_header: "X-Remote-User".into(),
            realm_header: "X-Remote-Realm".into(),
            source_header: "X-Auth-Source".into(),
            groups_header: "X-Remote-Groups".into(),
        }
    }
}

/// Expiry of browser realms that have no `[realms.<name>]` table: unlike
/// token realms, a browser session left alone must end (FreeIPA: 20 minutes
/// of inactivity), and one user has several devices, so no supersede.
pub const BROWSER_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const BROWSER_MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);
