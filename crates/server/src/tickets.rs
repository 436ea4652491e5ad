//! Ticket realms at run time: the configured format, the secrets, the time
//! rules and the cookie's attributes, built once at start-up from
//! `[realms.X.ticket]`. No HTTP here: the cookie is read and written in
//! `http/browser/cookie.rs`, beside the session cookie.

use crate::config::{secret, SameSite, TicketConfig};
use anyhow::{bail, Context};
use sessiond_core::ticket::{
    self, AddressBinding, CookieEncoding, Freshness, Ticket, TicketError, TicketFormat, Timing,
};
use std::net::IpAddr;

/// One realm's ticket settings, ready to sign and verify.
pub struct TicketRealm {
    pub realm: String,
    pub format: TicketFormat,
    /// The keyring: `secrets[0]` signs, all verify. Never logged.
    secrets: Vec<Vec<u8>>,
    pub timing: Timing,
    pub encoding: CookieEncoding,
    pub bind_address: bool,
    pub tokens: Vec<String>,
    pub with_session: bool,
    pub refresh_max_age: u64,
    pub cookie: TicketCookie,
}

/// The ticket cookie's name and attributes.
pub struct TicketCookie {
    pub name: String,
    pub domain: Option<String>,
    pub path: String,
    pub secure: bool,
    pub same_site: SameSite,
}

/// A ticket that passed the signature and time checks.
pub struct Accepted {
    pub ticket: Ticket,
    /// Due for re-issue: little time left, or signed with an older secret.
    pub refresh: bool,
}

impl TicketRealm {
    /// Builds the realm's settings; errors name the key and the reason.
    pub fn load(realm: &str, cfg: &TicketConfig, loopback: bool) -> anyhow::Result<TicketRealm> {
        let section = format!("realms.{realm}.ticket");
        cfg.validate(&section, loopback)?;
        let key = |k: &str| format!("{section}.{k}");
        let digest = cfg.digest;
        if digest.is_weak() {
            tracing::warn!(
                realm,
                "tickets use MD5 (mod_auth_tkt compatibility): weak; prefer sha512 or hmac-sha256 where every peer supports it"
            );
        }
        let timeout = match cfg.timeout.0.as_secs() {
            0 => None,
            s => Some(u32::try_from(s).expect("checked by TicketConfig::validate")),
        };
        let secrets = load_secrets(cfg, &key("secrets_file"), &key("secrets_env"))?;
        Ok(TicketRealm {
            realm: realm.to_owned(),
            format: TicketFormat {
                digest,
                user_id: cfg.user_id,
            },
            secrets,
            timing: Timing {
                timeout,
                refresh_fraction: cfg.refresh,
                future_skew: u32::try_from(cfg.clock_skew.0.as_secs()).unwrap_or(u32::MAX),
            },
            encoding: cfg.cookie_encoding,
            bind_address: cfg.bind_address,
            tokens: cfg.tokens.clone(),
            with_session: cfg.with_session,
            refresh_max_age: cfg.refresh_max_age.0.as_secs(),
            cookie: TicketCookie {
                name: cfg.cookie_name.clone(),
                domain: cfg.cookie_domain.clone(),
                path: cfg.cookie_path.clone(),
                secure: cfg.cookie_secure,
                same_site: cfg.cookie_same_site,
            },
        })
    }

    fn binding(&self, client: Option<IpAddr>) -> AddressBinding {
        match (self.bind_address, client) {
            (true, Some(ip)) => AddressBinding::Client(ip),
            _ => AddressBinding::Ignore,
        }
    }

    /// A new ticket for `user`, as a cookie value.
    pub fn issue(
        &self,
        user: &str,
        user_data: &str,
        tokens: &[String],
        client: Option<IpAddr>,
        issued: u32,
    ) -> Result<String, TicketError> {
        let t = Ticket {
            user: user.to_owned(),
            tokens: tokens.to_vec(),
            user_data: user_data.to_owned(),
            issued,
        };
        let raw = ticket::sign(self.format, &self.secrets[0], &t, self.binding(client))?;
        ticket::encode_cookie_value(self.format.digest, self.encoding, &raw)
    }

    /// Checks a cookie value: format, signature (every secret), time.
    pub fn check(
        &self,
        value: &str,
        client: Option<IpAddr>,
        now: i64,
    ) -> Result<Accepted, TicketError> {
        let raw = ticket::decode_cookie_value(self.format.digest, value)?;
        let verified = ticket::verify(
            self.format,
            self.secrets.iter().map(Vec::as_slice),
            &raw,
            self.binding(client),
        )?;
        let freshness = self.timing.check(verified.ticket.issued, now)?;
        Ok(Accepted {
            refresh: freshness == Freshness::Refresh || verified.key_index > 0,
            ticket: verified.ticket,
        })
    }
}

fn load_secrets(cfg: &TicketConfig, file_key: &str, env_key: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = match (&cfg.secrets_file, &cfg.secrets_env) {
        (Some(path), None) => secret::read(Some(path), file_key, "")?.unwrap_or_default(),
        (None, Some(var)) => std::env::var(var)
            .with_context(|| format!("{env_key}: environment variable {var} is not set"))?,
        // TicketConfig::validate, called by `load`, refuses these.
        _ => bail!("{file_key}: set exactly one of secrets_file and secrets_env"),
    };
    let secrets: Vec<Vec<u8>> = secret::lines(&text)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    if secrets.is_empty() {
        bail!("{file_key}: no secret in it (one per line; the first signs)");
    }
    if let Some(short) = secrets.iter().position(|s| s.len() < 16) {
        bail!("{file_key}: secret {} is shorter than 16 bytes", short + 1);
    }
    Ok(secrets)
}

/// Refuses every ticket of `user` in `realm` issued until now: the user's
/// not-before time moves to the next whole second (tickets carry seconds),
/// or one past the time already in force when that is later. A login right
/// after a revocation gets a ticket stamped with the not-before time itself
/// (`sign_now`), so a second revocation within the same second must move
/// past it, or that ticket would survive — a password change, say, just
/// after an administrator's revocation. Reading first is safe: the raise
/// only ever moves forward. Returns the time in force. The admin endpoint,
/// the CLI and the password watcher all revoke through here.
pub async fn revoke(
    store: &dyn sessiond_store::TicketMarks,
    realm: &str,
    user: &str,
) -> sessiond_store::StoreResult<sessiond_core::Timestamp> {
    let next_second = crate::clock::now().0 + 1;
    let past_current = store
        .ticket_not_before(realm, user)
        .await?
        .map_or(i64::MIN, |t| t.0 + 1);
    let at = sessiond_core::Timestamp(next_second.max(past_current));
    let nb = store.raise_ticket_not_before(realm, user, at).await?;
    tracing::info!(realm, user, not_before = nb.0, "tickets revoked");
    Ok(nb)
}

#[cfg(test)]
mod revoke_tests {
    use super::revoke;
    use sessiond_store::{MemoryStore, StoreOptions, TicketMarks};
    use std::sync::Arc;

    /// Two revocations in one second: the second must refuse a ticket
    /// issued between them, which carries the first one's not-before time.
    #[tokio::test]
    async fn a_second_revocation_moves_past_the_first() {
        let store = Arc::new(MemoryStore::new(StoreOptions::default()));
        let first = revoke(store.as_ref(), "web", "alice").await.unwrap();
        // what `sign_now` stamps a ticket issued right after it
        let issued_after_first = crate::clock::now().0.max(first.0);
        let second = revoke(store.as_ref(), "web", "alice").await.unwrap();
        assert!(
            issued_after_first < second.0,
            "a ticket issued after the first revocation survives the second: issued {issued_after_first}, not before {}",
            second.0
        );
        assert_eq!(
            store.ticket_not_before("web", "alice").await.unwrap(),
            Some(second)
        );
    }
}
