//! Kerberos through GSSAPI (MIT krb5, `libgssapi` crate): a password checked
//! by obtaining a TGT from the KDC (the `krb5` module, like `kinit`), and
//! SPNEGO `Negotiate` tokens accepted with the service keytab.
//!
//! The keytab is GSSAPI's process-wide default (`KRB5_KTNAME`, set from
//! `kerberos.keytab` at start-up): the safe API has no per-credential keytab.
//! Every GSSAPI call blocks (KDC round trips, replay cache), so all of them
//! run on Tokio's blocking pool.

use crate::{AuthError, Authenticator, Credentials, Password, Verified};
use async_trait::async_trait;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::Error as GssError;
use libgssapi::name::Name;
use libgssapi::oid::{
    OidSet, GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL,
};
use std::time::Duration;

/// MIT krb5 error codes (`krb5_err.et`) that decide the answer a user gets.
pub(crate) mod code {
    const BASE: i32 = -1_765_328_384;
    pub const PRINCIPAL_UNKNOWN: i32 = BASE + 6;
    pub const SERVER_UNKNOWN: i32 = BASE + 7;
    pub const POLICY: i32 = BASE + 12;
    /// KDC_ERR_BADOPTION: what a KDC answers a delegation it does not allow.
    pub const BADOPTION: i32 = BASE + 13;
    pub const CLIENT_REVOKED: i32 = BASE + 18;
    pub const KEY_EXPIRED: i32 = BASE + 23;
    pub const PREAUTH_FAILED: i32 = BASE + 24;
    pub const BAD_INTEGRITY: i32 = BASE + 31;
    pub const KDC_UNREACHABLE: i32 = BASE + 156;
}

/// How a Kerberos principal becomes a sessiond user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalMapping {
    /// `alice@EXAMPLE.TEST` → `alice` when `EXAMPLE.TEST` is one of the
    /// listed local realms; a principal of any other realm (a trusted
    /// cross-realm one) keeps its realm, so `alice@PARTNER.ORG` can never
    /// become the local `alice` (MIT's default `aname_to_localname` rule).
    StripRealm(Vec<String>),
    /// `alice@EXAMPLE.TEST` stays as it is.
    Keep,
}

impl PrincipalMapping {
    pub fn apply(&self, principal: &str) -> String {
        match self {
            PrincipalMapping::StripRealm(local) => match principal.rsplit_once('@') {
                Some((user, realm)) if local.iter().any(|l| l == realm) => user.to_owned(),
                _ => principal.to_owned(),
            },
            PrincipalMapping::Keep => principal.to_owned(),
        }
    }
}

/// A GSSAPI name as text (`alice@EXAMPLE.TEST`).
pub(crate) fn name_text(name: Result<Name, GssError>) -> Result<String, GssError> {
    name.and_then(|n| n.display_name())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Why a password was refused, told apart for the user (the issue of
/// telling "unknown principal" apart is documented in docs/kerberos.md).
fn classify(e: &GssError) -> AuthError {
    use crate::Refusal;
    match e.minor as i32 {
        code::PREAUTH_FAILED | code::BAD_INTEGRITY => AuthError::Refused(Refusal::WrongPassword),
        code::PRINCIPAL_UNKNOWN => AuthError::Refused(Refusal::UnknownUser),
        code::KEY_EXPIRED => AuthError::Refused(Refusal::PasswordExpired),
        code::CLIENT_REVOKED => AuthError::Refused(Refusal::AccountDisabled),
        code::KDC_UNREACHABLE => AuthError::Unavailable(format!("KDC unreachable: {e}")),
        _ => AuthError::Unavailable(format!("Kerberos: {e}")),
    }
}

/// Password → TGT (`krb5` module). The TGT is then used to get a ticket for
/// our own service and that ticket is accepted with our keytab, which proves
/// the TGT came from the real KDC (what `krb5_verify_init_creds` does): a
/// forged KDC answer cannot know the service key.
/// The principal mapping of a realm.
pub type MappingForRealm = Box<dyn Fn(&str) -> PrincipalMapping + Send + Sync>;

pub struct Krb5PasswordAuthenticator {
    name: String,
    /// Our own service, `HTTP@localhost` style (GSS host-based name).
    service: String,
    mapping: MappingForRealm,
}

impl Krb5PasswordAuthenticator {
    pub fn new(name: &str, service: &str, mapping: MappingForRealm) -> Self {
        Krb5PasswordAuthenticator {
            name: name.to_owned(),
            service: service.to_owned(),
            mapping,
        }
    }
}

/// What a successful Kerberos login yields besides the user name.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// `alice@EXAMPLE.TEST`
    pub principal: String,
    /// How long the credentials are still good for.
    pub lifetime: Duration,
    /// The TGT as a ccache, when it could be exported without touching disk.
    pub credentials: Option<Credentials>,
}

/// A directory on a memory file system for the one moment a credential is
/// serialised: GSSAPI only writes ccaches to named caches, and a `FILE:`
/// cache on disk would leave the user's TGT in clear on the disk. `None`
/// when no such place exists; credentials are then not kept.
fn memory_dir() -> Option<std::path::PathBuf> {
    let candidates = [
        Some(std::path::PathBuf::from("/dev/shm")),
        std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_dir())
            && std::fs::OpenOptions::new().read(true).open(p).is_ok()
    })
}

/// Serialises `cred` as an MIT ccache, via a private (0700) directory on a
/// memory file system, removed before returning.
pub(crate) fn export_ccache(cred: &Cred) -> Option<Credentials> {
    use std::os::unix::fs::DirBuilderExt;
    let base = memory_dir()?;
    let dir = base.join(format!("sessiond-{}", sessiond_core::token::random_hex(12)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).ok()?;
    let file = dir.join("ccache");
    let stored = cred.store_into(
        &format!("FILE:{}", file.display()),
        true,
        false,
        CredUsage::Initiate,
        None,
    );
    let bytes = stored.ok().and_then(|_| std::fs::read(&file).ok());
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&dir);
    if bytes.is_none() {
        tracing::warn!("could not export Kerberos credentials; the session will not keep them");
    }
    bytes.map(Credentials::new)
}

fn password_login(user: &str, password: &str, service: &str) -> Result<Ticket, AuthError> {
    let name =
        Name::new(user.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(|_| AuthError::Rejected)?;
    let mut mechs = OidSet::new();
    mechs
        .add(GSS_MECH_KRB5)
        .map_err(|e| AuthError::Unavailable(e.to_string()))?;
    let cred = Cred::acquire_with_password(
        Some(&name),
        password,
        None,
        CredUsage::Initiate,
        Some(&mechs),
    )
    .map_err(|e| classify(&e))?;
    let principal =
        name_text(cred.name()).map_err(|e| AuthError::Unavailable(format!("Kerberos: {e}")))?;
    let lifetime = cred.lifetime().unwrap_or_default();
    let credentials = export_ccache(&cred);
    // Verify against our keytab.
    let target = Name::new(service.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE))
        .map_err(|e| AuthError::Unavailable(format!("kerberos.service {service:?}: {e}")))?;
    let mut client = ClientCtx::new(
        Some(cred),
        target,
        CtxFlags::GSS_C_MUTUAL_FLAG,
        Some(GSS_MECH_KRB5),
    );
    let token = client
        .step(None, None)
        .map_err(|e| AuthError::Unavailable(format!("Kerberos service ticket for {service}: {e}")))?
        .ok_or_else(|| AuthError::Unavailable("Kerberos: no initial token".into()))?;
    let mut server = ServerCtx::new(None);
    server.step(&token, None).map_err(|e| {
        AuthError::Unavailable(format!(
            "Kerberos: the KDC's ticket does not match our keytab (KRB5_KTNAME): {e}"
        ))
    })?;
    Ok(Ticket {
        principal,
        lifetime,
        credentials,
    })
}

#[async_trait]
impl Authenticator for Krb5PasswordAuthenticator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authenticate(
        &self,
        realm: &str,
        user: &str,
        password: &Password,
    ) -> Result<Verified, AuthError> {
        let (user, password, service) = (
            user.to_owned(),
            Password::new(password.expose()),
            self.service.clone(),
        );
        let ticket =
            tokio::task::spawn_blocking(move || password_login(&user, password.expose(), &service))
                .await
                .map_err(|e| AuthError::Unavailable(format!("Kerberos task failed: {e}")))??;
        Ok(Verified {
            user: (self.mapping)(realm).apply(&ticket.principal),
            uid: None,
            gid: None,
            credential_lifetime: Some(ticket.lifetime),
            credentials: ticket.credentials,
            // Kerberos names no groups: the server looks them up
            // (`kerberos.groups`, `kerberos.groups_from`).
            groups: Vec::new(),
        })
    }
}

/// The outcome of accepting a `Negotiate` token.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The client's principal, `alice@EXAMPLE.TEST`.
    pub principal: String,
    /// Token for `WWW-Authenticate: Negotiate …` (mutual authentication).
    pub reply: Option<Vec<u8>>,
    /// Whether the client delegated its credentials.
    pub delegated: bool,
    /// The delegated credentials as a ccache (a whole TGT the client
    /// forwarded).
    pub credentials: Option<Credentials>,
    /// Tickets for the user to the targets asked for, obtained by S4U2Proxy
    /// from this login's own ticket (with an acceptor that delegates, and a
    /// client that forwarded nothing): a cache of those tickets alone.
    pub target_tickets: Option<Credentials>,
    /// How long the client's ticket is good for.
    pub lifetime: Duration,
}

/// Why a `Negotiate` token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum NegotiateError {
    /// Bad, replayed or foreign token: answer 401.
    #[error("Negotiate token refused: {0}")]
    Refused(String),
    /// The exchange needs another leg, but there is no connection to
    /// continue it on (a request through a proxy).
    #[error("Negotiate needs another round trip, which needs a direct connection")]
    ContinueNeeded,
    #[error("Negotiate unavailable: {0}")]
    Unavailable(String),
}

/// The GSSAPI library, for clients written against the same version (tests).
pub use libgssapi;

/// How long an unfinished multi-leg exchange waits for its next token.
const PENDING_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// Unfinished exchanges kept at most; beyond it the oldest are dropped.
const MAX_PENDING: usize = 1024;

/// One step of a Negotiate exchange.
#[derive(Debug)]
pub enum Step {
    /// The context needs another token from the client: send this one back
    /// in `WWW-Authenticate: Negotiate …` (401), on the same connection.
    Continue(Vec<u8>),
    Done(Accepted),
}

/// Accepts Negotiate tokens with the default keytab, keeping unfinished
/// multi-leg exchanges (SPNEGO needing more round trips, DCE-style Kerberos)
/// per connection. HTTP Negotiate binds an exchange to its TCP connection,
/// so `connection` is what names it; without one (a request through a
/// proxy, whose upstream connections carry many clients) only single-leg
/// exchanges complete.
#[derive(Default)]
pub struct NegotiateAcceptor {
    pending: std::sync::Mutex<std::collections::HashMap<String, (ServerCtx, std::time::Instant)>>,
    /// With constrained delegation: sessiond's own service (a GSS
    /// host-based name), whose credential accepts *and* initiates, so that
    /// MIT hands back the user's ticket as S4U2Proxy evidence.
    delegating: Option<String>,
}

impl NegotiateAcceptor {
    /// Accepts with any key of the keytab.
    pub fn new() -> NegotiateAcceptor {
        NegotiateAcceptor::default()
    }

    /// Accepts tickets for `service` only (its key in the keytab), with a
    /// credential that can also initiate: the S4U2Proxy evidence of each
    /// login can then get tickets for back ends (`Step`'s targets).
    pub fn delegating(service: &str) -> NegotiateAcceptor {
        NegotiateAcceptor {
            delegating: Some(service.to_owned()),
            ..NegotiateAcceptor::default()
        }
    }

    fn take(&self, connection: &str) -> Option<ServerCtx> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (ctx, since) = pending.remove(connection)?;
        (since.elapsed() < PENDING_FOR).then_some(ctx)
    }

    fn keep(&self, connection: String, ctx: ServerCtx) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (_, since)| since.elapsed() < PENDING_FOR);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, (_, since))| *since)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(connection, (ctx, std::time::Instant::now()));
    }

    /// Feeds one token: continues the connection's exchange if it has one.
    /// `targets`: the services (principals with their realm) to get the
    /// user tickets for when the exchange completes, if this acceptor
    /// delegates and the client forwarded nothing.
    pub async fn step(
        &self,
        connection: Option<String>,
        token: Vec<u8>,
        targets: Vec<String>,
    ) -> Result<Step, NegotiateError> {
        let pending = connection.as_deref().and_then(|c| self.take(c));
        let delegating = self.delegating.clone();
        let (ctx, outcome) = tokio::task::spawn_blocking(move || {
            let ctx = match pending {
                Some(ctx) => Ok(ctx),
                None => new_context(delegating.as_deref()),
            };
            let mut ctx = match ctx {
                Ok(ctx) => ctx,
                Err(e) => return (None, Err(e)),
            };
            let outcome = step_blocking(&mut ctx, &token, &targets);
            (Some(ctx), outcome)
        })
        .await
        .map_err(|e| NegotiateError::Unavailable(format!("Negotiate task failed: {e}")))?;
        match outcome? {
            Stepped::Done(done) => Ok(Step::Done(done)),
            Stepped::Unfinished(reply) => {
                let (Some(connection), Some(reply), Some(ctx)) = (connection, reply, ctx) else {
                    return Err(NegotiateError::ContinueNeeded);
                };
                self.keep(connection, ctx);
                Ok(Step::Continue(reply))
            }
        }
    }
}

/// A new accepting context: with sessiond's credential for both uses when
/// delegating as `delegating` (blocking: reads the keytab).
fn new_context(delegating: Option<&str>) -> Result<ServerCtx, NegotiateError> {
    let Some(service) = delegating else {
        return Ok(ServerCtx::new(None));
    };
    let unavailable = |e: GssError| {
        NegotiateError::Unavailable(format!("sessiond's credentials for {service}: {e}"))
    };
    let name =
        Name::new(service.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE)).map_err(unavailable)?;
    // SPNEGO too: browsers and curl wrap their Kerberos token in it, and a
    // krb5-only credential refuses those ("No credentials were supplied").
    let mut mechs = OidSet::new();
    mechs.add(GSS_MECH_SPNEGO).map_err(unavailable)?;
    mechs.add(GSS_MECH_KRB5).map_err(unavailable)?;
    let cred =
        Cred::acquire(Some(&name), None, CredUsage::Both, Some(&mechs)).map_err(unavailable)?;
    Ok(ServerCtx::new(Some(cred)))
}

enum Stepped {
    Done(Accepted),
    /// The context needs more; the token to send back, if any.
    Unfinished(Option<Vec<u8>>),
}

/// One `gss_accept_sec_context` (blocking).
fn step_blocking(
    ctx: &mut ServerCtx,
    token: &[u8],
    targets: &[String],
) -> Result<Stepped, NegotiateError> {
    let reply = ctx
        .step(token, None)
        .map_err(|e| NegotiateError::Refused(e.to_string()))?;
    if !ctx.is_complete() {
        return Ok(Stepped::Unfinished(reply.map(|b| b.to_vec())));
    }
    let principal =
        name_text(ctx.source_name()).map_err(|e| NegotiateError::Refused(e.to_string()))?;
    let lifetime = ctx.lifetime().unwrap_or_default();
    let delegated_cred = ctx.take_delegated_cred();
    // Accepting with a credential that also initiates, MIT hands back a
    // *proxy* credential when the client forwarded nothing: the user's
    // ticket to sessiond as S4U2Proxy evidence, tied to sessiond's own TGT.
    // It is no delegated TGT, and exporting it would export sessiond's TGT:
    // it only ever yields tickets to the targets, alone in their cache.
    // (MIT sets GSS_C_DELEG_FLAG for both, so the flag cannot tell them
    // apart.) Only a credential that names no impersonator is the user's
    // own; when that cannot be asked, nothing is exported whole.
    let (delegated, credentials, target_tickets) = match delegated_cred {
        Some(cred) if matches!(cred.proxy(), Ok(None)) => (true, export_ccache(&cred), None),
        Some(cred) => (
            false,
            None,
            (!targets.is_empty())
                .then(|| crate::s4u::tickets_from_evidence(&cred, &principal, targets))
                .flatten(),
        ),
        None => (false, None, None),
    };
    Ok(Stepped::Done(Accepted {
        principal,
        reply: reply.map(|b| b.to_vec()),
        delegated,
        credentials,
        target_tickets,
        lifetime,
    }))
}

#[cfg(test)]
mod tests {
    use super::PrincipalMapping;

    #[test]
    fn principal_mapping() {
        let strip = PrincipalMapping::StripRealm(vec!["EXAMPLE.TEST".into()]);
        assert_eq!(strip.apply("alice@EXAMPLE.TEST"), "alice");
        assert_eq!(
            strip.apply("alice@PARTNER.ORG"),
            "alice@PARTNER.ORG",
            "only local realms are stripped"
        );
        assert_eq!(strip.apply("alice@example.test"), "alice@example.test");
        assert_eq!(strip.apply("alice"), "alice");
        assert_eq!(
            PrincipalMapping::Keep.apply("alice@EXAMPLE.TEST"),
            "alice@EXAMPLE.TEST"
        );
    }
}
