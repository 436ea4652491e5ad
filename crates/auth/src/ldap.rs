//! LDAP password logins (`ldap` module, `ldap3` crate): a simple bind as the
//! user, whose DN comes from a template (`uid={user},ou=people,…`) or from a
//! search made with a service account (search-then-bind). `ldaps://`, or
//! StartTLS on `ldap://`, with the system roots or a CA file of its own.

use crate::{AuthError, Authenticator, Password, Verified};
use async_trait::async_trait;
use ldap3::{dn_escape, ldap_escape, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use std::sync::Arc;
use std::time::Duration;

/// LDAP result code for a wrong password or unknown DN (RFC 4511).
const INVALID_CREDENTIALS: u32 = 49;

/// How the user's DN is found.
#[derive(Debug, Clone)]
pub enum DnLookup {
    /// `{user}` in the template is replaced by the (DN-escaped) user name.
    Template(String),
    /// Bind as `bind_dn`, search `base` for `filter` (`{user}` replaced,
    /// filter-escaped); exactly one entry must match.
    Search {
        bind_dn: String,
        bind_password: Password,
        base: String,
        filter: String,
    },
}

#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// PEM CA certificates to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    pub lookup: DnLookup,
    pub timeout: Duration,
}

pub struct LdapAuthenticator {
    name: String,
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl LdapAuthenticator {
    /// Checks the settings (CA file) once, at start-up.
    pub fn new(name: &str, settings: LdapSettings) -> Result<LdapAuthenticator, String> {
        let tls = match &settings.ca_pem {
            Some(pem) => {
                use rustls::pki_types::pem::PemObject;
                use rustls::pki_types::CertificateDer;
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("CA file: {e}"))?;
                    roots.add(cert).map_err(|e| format!("CA file: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("CA file: no certificate in it".into());
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
                Some(Arc::new(config))
            }
            None => None,
        };
        Ok(LdapAuthenticator {
            name: name.to_owned(),
            settings,
            tls,
        })
    }

    async fn connect(&self) -> Result<ldap3::Ldap, AuthError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_starttls(self.settings.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(|e| AuthError::Unavailable(format!("LDAP {}: {e}", self.settings.url)))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// The DN to bind as, or `Rejected` when no single entry matches.
    async fn user_dn(&self, ldap: &mut ldap3::Ldap, user: &str) -> Result<String, AuthError> {
        let unavailable = |e: ldap3::LdapError| AuthError::Unavailable(format!("LDAP: {e}"));
        match &self.settings.lookup {
            DnLookup::Template(template) => Ok(template.replace("{user}", &dn_escape(user))),
            DnLookup::Search {
                bind_dn,
                bind_password,
                base,
                filter,
            } => {
                let bound = ldap
                    .simple_bind(bind_dn, bind_password.expose())
                    .await
                    .map_err(unavailable)?;
                if bound.rc != 0 {
                    // our own service account failing is an outage, not the user's fault
                    return Err(AuthError::Unavailable(format!(
                        "LDAP service account bind refused (rc {}): {}",
                        bound.rc, bound.text
                    )));
                }
                let filter = filter.replace("{user}", &ldap_escape(user));
                let (entries, _) = ldap
                    .search(base, Scope::Subtree, &filter, vec!["1.1"])
                    .await
                    .map_err(unavailable)?
                    .success()
                    .map_err(unavailable)?;
                match entries.len() {
                    1 => Ok(SearchEntry::construct(entries.into_iter().next().expect("one")).dn),
                    _ => Err(AuthError::Rejected),
                }
            }
        }
    }
}

#[async_trait]
impl Authenticator for LdapAuthenticator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authenticate(
        &self,
        _realm: &str,
        user: &str,
        password: &Password,
    ) -> Result<Verified, AuthError> {
        // An empty password would be an "unauthenticated bind", which LDAP
        // servers answer with success: never let it through.
        if password.expose().is_empty() || user.is_empty() {
            return Err(AuthError::Rejected);
        }
        let mut ldap = tokio::time::timeout(self.settings.timeout, self.connect())
            .await
            .map_err(|_| {
                AuthError::Unavailable(format!("LDAP {}: timed out", self.settings.url))
            })??;
        let outcome = tokio::time::timeout(self.settings.timeout, async {
            let dn = self.user_dn(&mut ldap, user).await?;
            let bound = ldap
                .simple_bind(&dn, password.expose())
                .await
                .map_err(|e| AuthError::Unavailable(format!("LDAP: {e}")))?;
            match bound.rc {
                0 => Ok(Verified::user(user)),
                INVALID_CREDENTIALS => Err(AuthError::Rejected),
                rc => Err(AuthError::Unavailable(format!(
                    "LDAP bind answered rc {rc}: {}",
                    bound.text
                ))),
            }
        })
        .await
        .map_err(|_| AuthError::Unavailable(format!("LDAP {}: timed out", self.settings.url)))?;
        let _ = ldap.unbind().await;
        outcome
    }
}
