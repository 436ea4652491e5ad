//! LDAP password logins (`ldap` module, `ldap3` crate): a simple bind as the
//! user, whose DN comes from a template (`uid={user},ou=people,…`) or from a
//! search made with a service account (search-then-bind). `ldaps://`, or
//! StartTLS on `ldap://`, with the system roots or a CA file of its own.
//!
//! Groups: from an attribute of the user's entry (`memberOf`, whose values
//! are group DNs; the group's name is the DN's first value) or from a search
//! for group entries naming the user (`(member={dn})`, `(memberUid={user})`),
//! optionally followed up the group tree (nested groups). The same lookup,
//! made with the service account, gives Kerberos logins their groups.

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
    /// The attribute of the user's entry that holds the account's name
    /// (`uid`, `sAMAccountName`), read after the bind: the session carries
    /// it instead of what was typed, so `Alice` and `alice ` — which the
    /// directory matches case- and space-insensitively — are one user to
    /// limits, supersede, revocation and the application. `None`: the name
    /// as typed.
    pub name_attribute: Option<String>,
    /// Where the user's groups come from; `None`: no groups.
    pub groups: Option<GroupSettings>,
}

/// How a user's groups are read.
#[derive(Debug, Clone)]
pub enum GroupSettings {
    /// An attribute of the user's entry holding group DNs (`memberOf`, as
    /// OpenLDAP's memberof overlay and Active Directory keep it).
    Attribute(String),
    /// A search for group entries.
    Search {
        base: String,
        /// `{dn}` (the user's DN) and `{user}` replaced, filter-escaped.
        filter: String,
        /// The attribute holding a group's name (`cn`).
        name_attribute: String,
        /// Also the groups that contain those groups (searched again with
        /// the group's DN as `{dn}`), up to [`MAX_NESTING`] levels.
        nested: bool,
    },
}

/// How deep nested groups are followed, and how many groups at most a
/// user gets: a loop in the directory must not make a login spin.
pub const MAX_NESTING: usize = 8;
const MAX_GROUPS: usize = 256;

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

    /// `work`, or `Unavailable` once the configured timeout has passed.
    async fn in_time<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, AuthError> {
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .map_err(|_| AuthError::Unavailable(format!("LDAP {}: timed out", self.settings.url)))
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

    /// The DN to bind as — and, from a search, the account's name — or
    /// `Rejected` when no single entry matches.
    async fn user_dn(
        &self,
        ldap: &mut ldap3::Ldap,
        user: &str,
    ) -> Result<(String, Option<String>), AuthError> {
        let unavailable = |e: ldap3::LdapError| AuthError::Unavailable(format!("LDAP: {e}"));
        match &self.settings.lookup {
            DnLookup::Template(template) => {
                Ok((template.replace("{user}", &dn_escape(user)), None))
            }
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
                let attrs = match &self.settings.name_attribute {
                    Some(a) => vec![a.as_str()],
                    None => vec!["1.1"],
                };
                let (entries, _) = ldap
                    .search(base, Scope::Subtree, &filter, attrs)
                    .await
                    .map_err(unavailable)?
                    .success()
                    .map_err(unavailable)?;
                match entries.len() {
                    1 => {
                        let mut entry =
                            SearchEntry::construct(entries.into_iter().next().expect("one"));
                        let name = self.name_in(&mut entry, user);
                        Ok((entry.dn, name))
                    }
                    _ => Err(AuthError::Rejected),
                }
            }
        }
    }
}

impl LdapAuthenticator {
    /// The name attribute's value in an entry (attribute names compare
    /// case-insensitively). Of several values (`uid` may hold aliases), the
    /// one the user typed, as the directory matched it, else the first.
    fn name_in(&self, entry: &mut SearchEntry, typed: &str) -> Option<String> {
        let attr = self.settings.name_attribute.as_ref()?;
        let key = entry
            .attrs
            .keys()
            .find(|k| k.eq_ignore_ascii_case(attr))
            .cloned()?;
        let values: Vec<String> = entry
            .attrs
            .remove(&key)?
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect();
        let typed = typed.trim();
        values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(typed))
            .or(values.first())
            .cloned()
    }

    /// The account's name from its entry (read as the user just bound), or
    /// the typed name when no attribute is configured or it cannot be read.
    async fn canonical_name(&self, ldap: &mut ldap3::Ldap, dn: &str, typed: &str) -> String {
        let Some(attr) = &self.settings.name_attribute else {
            return typed.to_owned();
        };
        let found = ldap
            .search(dn, Scope::Base, "(objectClass=*)", vec![attr.as_str()])
            .await
            .and_then(|r| r.success());
        let value = match found {
            Ok((entries, _)) => entries
                .into_iter()
                .next()
                .and_then(|e| self.name_in(&mut SearchEntry::construct(e), typed)),
            Err(_) => None,
        };
        match value {
            Some(v) => v,
            None => {
                tracing::warn!(attribute = %attr, "the user's entry has no readable name attribute: keeping the name as typed");
                typed.to_owned()
            }
        }
    }
}

impl LdapAuthenticator {
    /// The groups of the entry `dn` (account name `user`), as configured.
    async fn groups_of(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
        user: &str,
    ) -> Result<Vec<String>, AuthError> {
        let unavailable = |e: ldap3::LdapError| AuthError::Unavailable(format!("LDAP groups: {e}"));
        let Some(how) = &self.settings.groups else {
            return Ok(Vec::new());
        };
        match how {
            GroupSettings::Attribute(attr) => {
                let (entries, _) = ldap
                    .search(dn, Scope::Base, "(objectClass=*)", vec![attr.as_str()])
                    .await
                    .and_then(|r| r.success())
                    .map_err(unavailable)?;
                let Some(entry) = entries.into_iter().next() else {
                    return Ok(Vec::new());
                };
                let entry = SearchEntry::construct(entry);
                Ok(entry
                    .attrs
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
                    .flat_map(|(_, v)| v.iter())
                    .filter_map(|group_dn| first_rdn_value(group_dn))
                    .take(MAX_GROUPS)
                    .collect())
            }
            GroupSettings::Search {
                base,
                filter,
                name_attribute,
                nested,
            } => {
                let mut names = Vec::new();
                let mut seen: Vec<String> = Vec::new();
                let mut frontier = vec![dn.to_owned()];
                for _level in 0..if *nested { MAX_NESTING } else { 1 } {
                    let mut next = Vec::new();
                    for member in &frontier {
                        let f = filter
                            .replace("{dn}", &ldap_escape(member))
                            .replace("{user}", &ldap_escape(user));
                        let (entries, _) = ldap
                            .search(base, Scope::Subtree, &f, vec![name_attribute.as_str()])
                            .await
                            .and_then(|r| r.success())
                            .map_err(unavailable)?;
                        for e in entries {
                            if names.len() >= MAX_GROUPS {
                                break;
                            }
                            let e = SearchEntry::construct(e);
                            if seen.iter().any(|d| d.eq_ignore_ascii_case(&e.dn)) {
                                continue;
                            }
                            if let Some(name) = e
                                .attrs
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name_attribute))
                                .and_then(|(_, v)| v.first())
                            {
                                names.push(name.clone());
                            }
                            seen.push(e.dn.clone());
                            next.push(e.dn);
                        }
                    }
                    if next.is_empty() || seen.len() >= MAX_GROUPS {
                        break;
                    }
                    // `{user}` names the account, not a group: a filter on
                    // it finds nothing new one level up.
                    frontier = next;
                }
                Ok(names)
            }
        }
    }
}

/// `dev` from `cn=dev,ou=groups,dc=example,dc=test`, with RFC 4514's
/// escapes undone (`\,` and `\2C` are both a comma). Written here: ldap3
/// has no DN parser, and this is the one value needed.
fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let mut out = Vec::new();
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                let first = bytes.next()?;
                let hex = |c: u8| (c as char).to_digit(16);
                match hex(first) {
                    Some(hi) => {
                        let lo = hex(bytes.next()?)?;
                        out.push(u8::try_from(hi * 16 + lo).ok()?);
                    }
                    None => out.push(first),
                }
            }
            b',' | b'+' => break,
            b => out.push(b),
        }
    }
    let out = String::from_utf8(out).ok()?.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

/// Groups of a user who did not log in through LDAP (Kerberos): the
/// service account finds the entry with the search filter, then reads its
/// groups.
#[async_trait]
impl crate::GroupLookup for LdapAuthenticator {
    async fn groups(&self, user: &str) -> Result<Vec<String>, AuthError> {
        let DnLookup::Search { .. } = &self.settings.lookup else {
            return Err(AuthError::Unavailable(
                "LDAP group lookup needs the service account (ldap.bind_dn, ldap.search_base)"
                    .into(),
            ));
        };
        let mut ldap = self.in_time(self.connect()).await??;
        let outcome = self
            .in_time(async {
                match self.user_dn(&mut ldap, user).await {
                    Ok((dn, name)) => {
                        let name = name.unwrap_or_else(|| user.to_owned());
                        self.groups_of(&mut ldap, &dn, &name).await
                    }
                    // No entry for this principal: no groups.
                    Err(AuthError::Rejected) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let _ = ldap.unbind().await;
        outcome
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
        let mut ldap = self.in_time(self.connect()).await??;
        let outcome = self
            .in_time(async {
                let (dn, found_name) = self.user_dn(&mut ldap, user).await?;
                let bound = ldap
                    .simple_bind(&dn, password.expose())
                    .await
                    .map_err(|e| AuthError::Unavailable(format!("LDAP: {e}")))?;
                match bound.rc {
                    0 => {
                        let name = match found_name {
                            Some(name) => name,
                            None => self.canonical_name(&mut ldap, &dn, user).await,
                        };
                        // Read as the user just bound: a directory that lets
                        // users read their own groups needs no service account.
                        let groups = self.groups_of(&mut ldap, &dn, &name).await?;
                        Ok(Verified {
                            groups,
                            ..Verified::user(&name)
                        })
                    }
                    INVALID_CREDENTIALS => Err(AuthError::Rejected),
                    rc => Err(AuthError::Unavailable(format!(
                        "LDAP bind answered rc {rc}: {}",
                        bound.text
                    ))),
                }
            })
            .await?;
        let _ = ldap.unbind().await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_names_from_dns() {
        use super::first_rdn_value as f;
        assert_eq!(
            f("cn=dev,ou=groups,dc=example,dc=test").as_deref(),
            Some("dev")
        );
        assert_eq!(
            f("CN=Domain Users,CN=Users,DC=ad").as_deref(),
            Some("Domain Users")
        );
        assert_eq!(f("cn=a\\,b,ou=g").as_deref(), Some("a,b"));
        assert_eq!(f("cn=a\\2Cb,ou=g").as_deref(), Some("a,b"));
        assert_eq!(f("cn=caf\\C3\\A9,ou=g").as_deref(), Some("café"));
        assert_eq!(f("nonsense"), None);
    }
}
