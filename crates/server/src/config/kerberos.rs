//! `[kerberos]`: the `krb5` password module and SPNEGO `Negotiate`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How a Kerberos principal becomes a sessiond user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalMapping {
    /// `alice@EXAMPLE.TEST` → `alice` for the local realms
    /// (`kerberos.local_realms`); other realms' principals keep their realm
    StripRealm,
    /// the principal as it is
    Keep,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KerberosConfig {
    /// Keytab with the service key (GSSAPI reads it process-wide; this sets
    /// `KRB5_KTNAME` at start-up). Unset: `KRB5_KTNAME` or the system default.
    pub keytab: Option<PathBuf>,
    /// Our service as a GSS host-based name; the `krb5` module verifies each
    /// TGT by getting and accepting a ticket for it.
    pub service: String,
    pub principal_mapping: PrincipalMapping,
    /// The realms whose principals `strip-realm` maps to bare names.
    /// Unset: the `default_realm` of krb5.conf (`KRB5_CONFIG`, else
    /// /etc/krb5.conf), as MIT Kerberos does.
    pub local_realms: Vec<String>,
    /// Accept `Authorization: Negotiate` (login_kerberos, /auth, /v1/login,
    /// /auth_token) and offer it on 401 answers to browsers.
    pub negotiate: bool,
    /// `GET /auth` let in by a Negotiate header also sets the session cookie,
    /// so the browser's next request is a cheap cookie check.
    pub auth_sets_cookie: bool,
    /// Keys sealing the credentials kept in sessions: 64 hex characters per
    /// line, the first seals, all open (or `SESSIOND_CREDENTIAL_KEYS`). Unset:
    /// a random key per process, so credentials do not survive a restart
    /// and are not shared between instances.
    pub credential_keys_file: Option<PathBuf>,
    /// Credentials of the back ends allowed to fetch a session's Kerberos
    /// credentials, one per line, at least 16 characters (or
    /// `SESSIOND_CREDENTIAL_READERS`, comma-separated). Unset: nobody can.
    pub credential_readers_file: Option<PathBuf>,
    /// Groups of Kerberos logins (`krb5` module and Negotiate) by user name
    /// as sessiond maps it (`alice`, or `alice@EXAMPLE.TEST` with `keep`).
    pub groups: BTreeMap<String, Vec<String>>,
    /// Also look Kerberos users up in LDAP for their groups (`"ldap"`: the
    /// `[ldap]` service account's search, then its group settings).
    pub groups_from: Option<GroupSource>,
}

/// `[realms.X.delegation]`: tickets for a session's user to named back-end
/// services, obtained by sessiond (constrained delegation, S4U), fetched by
/// back ends with `GET /v1/sessions/credentials?target=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DelegationConfig {
    /// The services a back end may ask a ticket for, as principals with
    /// their realm (`HTTP/backend.example.com@EXAMPLE.COM`). The KDC keeps
    /// its own list (`krbAllowedToDelegateTo`, AD's
    /// `msDS-AllowedToDelegateTo`, FreeIPA's delegation rules); this one is
    /// checked first, so a target not on it is refused without asking the
    /// KDC.
    pub targets: Vec<String>,
    /// Obtain the user's ticket by protocol transition (S4U2Self) for
    /// sessions that did not come with Kerberos evidence — password file,
    /// PAM, LDAP, signed tickets. The KDC must allow it
    /// (`+ok_to_auth_as_delegate` on sessiond's principal).
    pub protocol_transition: bool,
    /// The principal of a session's user: `{user}` is replaced by the user
    /// name. Without a realm, krb5.conf's `default_realm` is used.
    pub user_principal: String,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        DelegationConfig {
            targets: Vec::new(),
            protocol_transition: false,
            user_principal: "{user}".into(),
        }
    }
}

impl DelegationConfig {
    /// The configured target a request names: the principal as written, or
    /// without its realm.
    pub fn target(&self, asked: &str) -> Option<&str> {
        self.targets
            .iter()
            .map(String::as_str)
            .find(|t| *t == asked || t.rsplit_once('@').is_some_and(|(name, _)| name == asked))
    }

    /// The principal of a session's user, for protocol transition. A name
    /// that would name another principal is refused: `/` or `\\` (another
    /// instance, `root/admin`), or `@` (another realm) unless the session
    /// came from Kerberos, where the name is the principal itself
    /// (`principal_mapping = "keep"`).
    pub fn principal_of(&self, user: &str, from_kerberos: bool) -> Result<String, String> {
        if user.contains(['/', '\\']) || (user.contains('@') && !from_kerberos) {
            return Err(format!(
                "the user name {user:?} cannot be turned into a Kerberos principal"
            ));
        }
        let principal = self.user_principal.replace("{user}", user);
        if principal.matches('@').count() > 1 {
            return Err(format!(
                "the user name {user:?} with user_principal gives {principal:?}"
            ));
        }
        Ok(principal)
    }

    /// `service`: sessiond's own, as a GSS host-based name (`HTTP@host`),
    /// which no target may be: its tickets for the user are the S4U
    /// evidence, and with one a back end could log in as the user.
    pub fn validate(&self, key: &str, service: &str) -> anyhow::Result<()> {
        let own = service.replacen('@', "/", 1);
        for t in &self.targets {
            let Some((name, _)) = t
                .rsplit_once('@')
                .filter(|(name, realm)| name.contains('/') && !realm.is_empty())
            else {
                anyhow::bail!(
                    "{key}.targets: {t:?} is not a service principal with its realm \
                     (service/host@REALM)"
                );
            };
            if name.starts_with("krbtgt/") {
                anyhow::bail!("{key}.targets: {t:?} is a ticket-granting service, never a target");
            }
            if name.eq_ignore_ascii_case(&own) {
                anyhow::bail!("{key}.targets: {t:?} is sessiond's own service (kerberos.service)");
            }
        }
        if !self.user_principal.contains("{user}") {
            anyhow::bail!("{key}.user_principal: must contain {{user}}");
        }
        if !cfg!(feature = "kerberos") {
            anyhow::bail!("{key}: needs a sessiond built with `--features kerberos`");
        }
        Ok(())
    }
}

/// Where Kerberos logins get groups besides `kerberos.groups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupSource {
    Ldap,
}

impl Default for KerberosConfig {
    fn default() -> Self {
        KerberosConfig {
            keytab: None,
            service: "HTTP@localhost".into(),
            principal_mapping: PrincipalMapping::StripRealm,
            local_realms: Vec::new(),
            negotiate: false,
            auth_sets_cookie: true,
            credential_keys_file: None,
            credential_readers_file: None,
            groups: BTreeMap::new(),
            groups_from: None,
        }
    }
}

impl KerberosConfig {
    /// `local_realms`, or krb5.conf's `default_realm` when none are set.
    pub fn effective_local_realms(&self) -> Vec<String> {
        if !self.local_realms.is_empty() {
            return self.local_realms.clone();
        }
        let files = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
        files
            .split(':')
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .find_map(|text| default_realm(&text))
            .into_iter()
            .collect()
    }
}

/// `default_realm` of a krb5.conf's `[libdefaults]` section.
fn default_realm(conf: &str) -> Option<String> {
    let mut in_libdefaults = false;
    for line in conf.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line == "[libdefaults]";
            continue;
        }
        if !in_libdefaults {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "default_realm" && !value.trim().is_empty() {
                return Some(value.trim().to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn delegation_targets_by_full_name_or_without_the_realm() {
        let d = super::DelegationConfig {
            targets: vec!["HTTP/backend.localhost@S4U.TEST".into()],
            ..Default::default()
        };
        for asked in ["HTTP/backend.localhost@S4U.TEST", "HTTP/backend.localhost"] {
            assert_eq!(d.target(asked), Some("HTTP/backend.localhost@S4U.TEST"));
        }
        for asked in [
            "HTTP/other.localhost",
            "HTTP/backend.localhost@OTHER",
            "",
            "HTTP",
        ] {
            assert_eq!(d.target(asked), None, "{asked}");
        }
        assert_eq!(d.principal_of("alice", false).unwrap(), "alice");
        for bad in ["root/admin", "a\\b", "bob@OTHER.TEST"] {
            assert!(d.principal_of(bad, false).is_err(), "{bad}");
        }
        assert_eq!(
            d.principal_of("bob@OTHER.TEST", true).unwrap(),
            "bob@OTHER.TEST",
            "a Kerberos session's name is its principal"
        );
        let realm = super::DelegationConfig {
            user_principal: "{user}@S4U.TEST".into(),
            ..d.clone()
        };
        assert!(realm.principal_of("bob@OTHER.TEST", true).is_err());
        for (target, ok) in [
            ("HTTP/backend.localhost@S4U.TEST", true),
            ("HTTP/localhost@S4U.TEST", false),
            ("krbtgt/S4U.TEST@S4U.TEST", false),
            ("HTTP@S4U.TEST", false),
            ("HTTP/backend.localhost", false),
        ] {
            let c = super::DelegationConfig {
                targets: vec![target.into()],
                ..Default::default()
            };
            let checked = c.validate("realms.x.delegation", "HTTP@localhost");
            if cfg!(feature = "kerberos") {
                assert_eq!(checked.is_ok(), ok, "{target}: {checked:?}");
            }
        }
    }

    #[test]
    fn default_realm_from_krb5_conf() {
        let conf = "[realms]\n default_realm = NO\n[libdefaults]\n  dns_lookup_kdc = false\n  default_realm = EXAMPLE.TEST\n";
        assert_eq!(super::default_realm(conf).as_deref(), Some("EXAMPLE.TEST"));
        assert_eq!(super::default_realm("[libdefaults]\n"), None);
    }
}
