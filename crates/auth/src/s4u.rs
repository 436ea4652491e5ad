//! Constrained delegation (MIT's S4U extensions through GSSAPI): a ticket
//! for a user to one back-end service, obtained by sessiond's own service
//! principal, handed out as a credential cache holding that ticket alone.
//!
//! Protocol transition: S4U2Self gets sessiond a ticket *for the user to
//! sessiond* from nothing but the user's name (the KDC allows it when
//! sessiond's principal has `ok_to_auth_as_delegate`); S4U2Proxy turns it
//! into a ticket for the user to the target (allowed when the target is in
//! sessiond's `krbAllowedToDelegateTo`, or the AD / FreeIPA equivalents).
//! With MIT GSSAPI these are `gss_acquire_cred_impersonate_name` and a
//! context initiated to the target with the resulting credential.
//!
//! sessiond's own tickets come from its keytab (MIT's client keytab,
//! `KRB5_CLIENT_KTNAME`) into a memory cache (`KRB5CCNAME`), both set at
//! start-up when delegation is configured: never a file on disk.
//!
//! What GSSAPI exports after this holds sessiond's own TGT too, so the
//! answer is rewritten to the one ticket (`sessiond_core::ccache`, decision
//! 0023).

use crate::kerberos::{export_ccache, name_text};
use crate::Credentials;
use libgssapi::context::{ClientCtx, CtxFlags};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::Error as GssError;
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};
use sessiond_core::ccache::{Ccache, Principal};

/// Why no ticket for a back end was obtained.
#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    /// The KDC said no: the user is unknown to it, sessiond may not obtain
    /// tickets for users (`ok_to_auth_as_delegate`), or not for this target
    /// (`krbAllowedToDelegateTo`).
    #[error("the KDC refused a ticket for {user} to {target}: {reason}")]
    Refused {
        user: String,
        target: String,
        reason: String,
    },
    /// Kerberos could not be asked: KDC unreachable, keytab unreadable, or
    /// the exported cache unreadable.
    #[error("Kerberos: {0}")]
    Unavailable(String),
}

/// MIT error codes (`krb5_err.et`) that mean "the KDC refused", as opposed
/// to "the KDC could not be asked".
fn refused(e: &GssError) -> bool {
    use crate::kerberos::code::{BADOPTION, POLICY, PRINCIPAL_UNKNOWN, SERVER_UNKNOWN};
    matches!(
        e.minor as i32,
        PRINCIPAL_UNKNOWN | SERVER_UNKNOWN | POLICY | BADOPTION
    )
}

/// A ticket for `user` (a principal; without a realm, krb5.conf's default
/// realm) to `target` (a principal with its realm), obtained by `service`
/// (sessiond's own, a GSS host-based name such as `HTTP@localhost`) through
/// protocol transition, as an MIT file cache holding that ticket alone.
/// Blocks (KDC round trips): run it on the blocking pool.
pub fn ticket_by_protocol_transition(
    service: &str,
    user: &str,
    target: &str,
) -> Result<Credentials, DelegationError> {
    let unavailable =
        |what: &str, e: GssError| DelegationError::Unavailable(format!("{what}: {e}"));
    let refused_or = |what: &str, e: GssError| {
        if refused(&e) {
            DelegationError::Refused {
                user: user.to_owned(),
                target: target.to_owned(),
                reason: e.to_string(),
            }
        } else {
            unavailable(what, e)
        }
    };
    let mut mechs = OidSet::new();
    mechs
        .add(GSS_MECH_KRB5)
        .map_err(|e| unavailable("mechanism set", e))?;
    let own_name = Name::new(service.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE))
        .map_err(|e| unavailable(&format!("kerberos.service {service:?}"), e))?;
    // Both: accepting needs the keytab, initiating (S4U2Self asks the KDC
    // as sessiond) needs a TGT, which MIT gets from the client keytab.
    let own = Cred::acquire(Some(&own_name), None, CredUsage::Both, Some(&mechs))
        .map_err(|e| unavailable("sessiond's own credentials (keytab)", e))?;
    let user_name = Name::new(user.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| unavailable(&format!("user principal {user:?}"), e))?;
    let as_user = own
        .impersonate(&user_name, None, CredUsage::Initiate, Some(&mechs))
        .map_err(|e| refused_or("S4U2Self", e))?;
    let target_name = Name::new(target.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| unavailable(&format!("target {target:?}"), e))?;
    let mut ctx = ClientCtx::new(
        Some(as_user.clone()),
        target_name,
        CtxFlags::empty(),
        Some(GSS_MECH_KRB5),
    );
    // The first step asks the KDC for the ticket (S4U2Proxy) and keeps it
    // in `as_user`'s cache; the token itself is not needed.
    ctx.step(None, None)
        .map_err(|e| refused_or("S4U2Proxy", e))?;
    let client = name_text(as_user.name()).map_err(|e| unavailable("the user's principal", e))?;
    tickets_alone(&as_user, &client, std::slice::from_ref(&target.to_owned())).ok_or_else(|| {
        DelegationError::Unavailable(format!(
            "the exported cache holds no ticket for {client} to {target}"
        ))
    })
}

/// The tickets of `client` to `targets` that `cred` holds, exported and cut
/// down to those alone (decision 0023); `None` if it holds none of them.
fn tickets_alone(cred: &Cred, client: &str, targets: &[String]) -> Option<Credentials> {
    let whole = export_ccache(cred)?;
    let cache = Ccache::parse(whole.expose())
        .map_err(|e| tracing::warn!(error = %e, "cannot read the exported delegation cache"))
        .ok()?;
    let services: Vec<Principal> = targets.iter().map(|t| Principal::parse(t)).collect();
    let tickets = cache.only_tickets(&Principal::parse(client), &services)?;
    Some(Credentials::new(tickets.to_bytes()))
}

/// S4U2Proxy from a Negotiate login's own evidence: `proxy` is the
/// credential MIT hands back when sessiond accepts with a credential usable
/// for initiating too and the client delegated nothing (the user's ticket
/// to sessiond, with sessiond's TGT). A ticket for the user to each of
/// `targets` (principals with their realm), in one cache holding those
/// tickets and nothing else; `None` if the KDC gave none. Each refusal is
/// logged: the login itself succeeds regardless. Blocks (KDC round trips).
pub fn tickets_from_evidence(
    proxy: &Cred,
    client: &str,
    targets: &[String],
) -> Option<Credentials> {
    for target in targets {
        let got = Name::new(target.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).and_then(|name| {
            ClientCtx::new(
                Some(proxy.clone()),
                name,
                CtxFlags::empty(),
                Some(GSS_MECH_KRB5),
            )
            .step(None, None)
        });
        if let Err(e) = got {
            tracing::warn!(user = %client, target, error = %e, "no S4U2Proxy ticket from the Negotiate login");
        }
    }
    tickets_alone(proxy, client, targets)
}
