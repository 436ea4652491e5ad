//! `[kerberos]`: the `krb5` password module and SPNEGO `Negotiate`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a Kerberos principal becomes a sessiond user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalMapping {
    /// `alice@EXAMPLE.TEST` → `alice`
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
    /// Accept `Authorization: Negotiate` (login_kerberos, /auth, /v1/login,
    /// /auth_token) and offer it on 401 answers to browsers.
    pub negotiate: bool,
    /// `GET /auth` let in by a Negotiate header also sets the session cookie,
    /// so the browser's next request is a cheap cookie check.
    pub auth_sets_cookie: bool,
}

impl Default for KerberosConfig {
    fn default() -> Self {
        KerberosConfig {
            keytab: None,
            service: "HTTP@localhost".into(),
            principal_mapping: PrincipalMapping::StripRealm,
            negotiate: false,
            auth_sets_cookie: true,
        }
    }
}
