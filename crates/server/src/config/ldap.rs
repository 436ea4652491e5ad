//! `[ldap]`: the `ldap` password module.

use super::Span;
use anyhow::bail;
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
    /// Groups from this attribute of the user's entry (`memberOf`): its
    /// values are group DNs, named by their first value (`cn=dev,…` → `dev`).
    pub group_attribute: String,
    /// Groups from a search under this base instead.
    pub group_search_base: Option<String>,
    /// The group search's filter: `{dn}` is the user's DN, `{user}` the
    /// account name (`(memberUid={user})` for posixGroup).
    pub group_search_filter: String,
    /// The attribute naming a group found by the search.
    pub group_name_attribute: String,
    /// Follow groups that are members of groups (search only, `{dn}`
    /// filters; at most 8 levels).
    pub nested_groups: bool,
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
            group_attribute: String::new(),
            group_search_base: None,
            group_search_filter: "(member={dn})".into(),
            group_name_attribute: "cn".into(),
            nested_groups: false,
        }
    }
}

impl LdapConfig {
    /// The group settings for the authenticator.
    pub fn group_settings(&self) -> Option<sessiond_auth::ldap::GroupSettings> {
        use sessiond_auth::ldap::GroupSettings;
        if let Some(base) = &self.group_search_base {
            return Some(GroupSettings::Search {
                base: base.clone(),
                filter: self.group_search_filter.clone(),
                name_attribute: self.group_name_attribute.clone(),
                nested: self.nested_groups,
            });
        }
        (!self.group_attribute.is_empty())
            .then(|| GroupSettings::Attribute(self.group_attribute.clone()))
    }

    /// Checks what types alone cannot (called when `ldap` is enabled).
    pub fn validate(&self) -> anyhow::Result<()> {
        let l = self;
        if !l.group_attribute.is_empty() && l.group_search_base.is_some() {
            bail!("ldap: set group_attribute (memberOf) or group_search_base, not both");
        }
        if l.group_search_base.is_some()
            && !(l.group_search_filter.contains("{dn}") || l.group_search_filter.contains("{user}"))
        {
            bail!("ldap.group_search_filter: must contain {{dn}} or {{user}}");
        }
        if l.nested_groups
            && (l.group_search_base.is_none() || !l.group_search_filter.contains("{dn}"))
        {
            bail!(
                "ldap.nested_groups: needs group_search_base and a group_search_filter with {{dn}}"
            );
        }
        if !(l.url.starts_with("ldap://") || l.url.starts_with("ldaps://")) {
            bail!("ldap.url: {:?} is not an ldap:// or ldaps:// URL", l.url);
        }
        if l.starttls && l.url.starts_with("ldaps://") {
            bail!("ldap.starttls: ldaps:// is TLS already; StartTLS is for ldap://");
        }
        match (&l.user_dn_template, &l.search_base) {
            (Some(t), None) if t.contains("{user}") => Ok(()),
            (Some(_), None) => bail!("ldap.user_dn_template: must contain {{user}}"),
            (None, Some(_)) if l.bind_dn.is_some() && l.search_filter.contains("{user}") => Ok(()),
            (None, Some(_)) => bail!(
                "ldap.search_base: search-then-bind needs ldap.bind_dn and a search_filter with {{user}}"
            ),
            (Some(_), Some(_)) => {
                bail!("ldap: set user_dn_template or search_base (search-then-bind), not both")
            }
            (None, None) => bail!(
                "ldap: set user_dn_template (simple bind) or search_base + bind_dn (search-then-bind)"
            ),
        }
    }
}
