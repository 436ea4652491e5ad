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
    /// Keys sealing the credentials kept in sessions: 64 hex characters per
    /// line, the first seals, all open (or `SESSIOND_CREDENTIAL_KEYS`). Unset:
    /// a random key per process, so credentials do not survive a restart
    /// and are not shared between instances.
    pub credential_keys_file: Option<PathBuf>,
    /// Credentials of the back ends allowed to fetch a session's Kerberos
    /// credentials, one per line, at least 16 characters (or
    /// `SESSIOND_CREDENTIAL_READERS`, comma-separated). Unset: nobody can.
    pub credential_readers_file: Option<PathBuf>,
}

impl Default for KerberosConfig {
    fn default() -> Self {
        KerberosConfig {
            keytab: None,
            service: "HTTP@localhost".into(),
            principal_mapping: PrincipalMapping::StripRealm,
            negotiate: false,
            auth_sets_cookie: true,
            credential_keys_file: None,
            credential_readers_file: None,
        }
    }
}
