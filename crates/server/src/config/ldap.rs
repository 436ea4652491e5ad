//! `[ldap]`: the `ldap` password module.

use super::Span;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// PEM file of the CA(s) that signed the server's certificate, when it is
    /// not one the system trusts.
    pub ca_file: Option<PathBuf>,
    /// Simple bind as this DN, `{user}` replaced (DN-escaped):
    /// `uid={user},ou=people,dc=example,dc=com`. Or use the search settings.
    pub user_dn_template: Option<String>,
    /// Search-then-bind: the service account, its password (from a file or
    /// `SESSIOND_LDAP_BIND_PASSWORD`, never the command line), where to
    /// search and the filter (`{user}` replaced, filter-escaped).
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<PathBuf>,
    pub search_base: Option<String>,
    pub search_filter: String,
    /// Connecting and answering, each.
    pub timeout: Span,
    /// The attribute holding the account's canonical name, which sessions
    /// carry instead of the typed name (`sAMAccountName` for Active
    /// Directory). Empty: keep the name as typed.
    pub name_attribute: String,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            url: String::new(),
            starttls: false,
            ca_file: None,
            user_dn_template: None,
            bind_dn: None,
            bind_password_file: None,
            search_base: None,
            search_filter: "(uid={user})".into(),
            timeout: Span(Duration::from_secs(5)),
            name_attribute: "uid".into(),
        }
    }
}
