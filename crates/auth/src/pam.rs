//! The `pam` authenticator: a real PAM transaction (authenticate, then
//! account management), as SessionKeyServer's JNI module did, with the user's
//! uid/gid from the passwd database.
//!
//! The PAM service is fixed by configuration (`-pam-app` or `pam.service`).
//! Only when explicitly configured does the client's realm text choose the
//! service, which in SessionKeyServer let any client pick the PAM stack.

use crate::{AuthError, Authenticator, Password, Verified};
use async_trait::async_trait;
use nonstick::items::Items;
use nonstick::{
    AuthnFlags, ConversationAdapter, ErrorCode, PamShared, Transaction, TransactionBuilder,
};
use std::ffi::{OsStr, OsString};

/// Which PAM service a login uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PamService {
    /// Always this service (`/etc/pam.d/<name>`).
    Fixed(String),
    /// The request's realm text, as SessionKeyServer did without `-pam-app`,
    /// but only the services listed: any other realm text is refused. An
    /// open choice let a client pick `realm=su` (pam_rootok), which lets
    /// anyone in as anyone when sessiond runs as root.
    FromRealm { allowed: Vec<String> },
}

pub struct PamAuthenticator {
    name: String,
    service: PamService,
}

impl PamAuthenticator {
    pub fn new(name: impl Into<String>, service: PamService) -> PamAuthenticator {
        PamAuthenticator {
            name: name.into(),
            service,
        }
    }
}

/// Answers PAM's prompts: echoed prompts get the user name, hidden ones the password.
struct Answers {
    user: String,
    password: Password,
}

impl ConversationAdapter for Answers {
    fn prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(OsString::from(&self.user))
    }
    fn masked_prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(OsString::from(self.password.expose()))
    }
    fn error_msg(&self, _message: impl AsRef<OsStr>) {}
    fn info_msg(&self, _message: impl AsRef<OsStr>) {}
}

/// PAM results that mean "this user may not log in with this password", as
/// opposed to "PAM cannot answer".
fn is_rejection(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::AuthenticationError
            | ErrorCode::UserUnknown
            | ErrorCode::MaxTries
            | ErrorCode::PermissionDenied
            | ErrorCode::AccountExpired
            | ErrorCode::NewAuthTokRequired
            | ErrorCode::CredentialsInsufficient
            | ErrorCode::AuthTokExpired
    )
}

fn run_transaction(service: &str, user: &str, password: Password) -> Result<Verified, AuthError> {
    let answers = Answers {
        user: user.to_owned(),
        password,
    };
    let fail = |code: ErrorCode| {
        if is_rejection(code) {
            tracing::info!(pam_result = ?code, "PAM refused the login");
            AuthError::Rejected
        } else {
            tracing::error!(pam_result = ?code, service, "PAM could not check the login");
            AuthError::Unavailable(format!("PAM service {service:?}: {code:?}"))
        }
    };
    let mut txn = TransactionBuilder::new_with_service(service)
        .username(user)
        .build(answers.into_conversation())
        .map_err(fail)?;
    txn.authenticate(AuthnFlags::empty()).map_err(fail)?;
    txn.account_management(AuthnFlags::empty()).map_err(fail)?;
    // The name PAM settled on (PAM_USER may be changed by a module: case
    // folded by pam_sss or winbind, a domain added or stripped) is the
    // account's, not the text the client typed.
    let canonical = txn
        .items()
        .user()
        .ok()
        .flatten()
        .and_then(|u| u.into_string().ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| user.to_owned());
    let mut verified = Verified::user(&canonical);
    if let Ok(Some(entry)) = nix::unistd::User::from_name(&canonical) {
        verified.uid = Some(entry.uid.as_raw());
        verified.gid = Some(entry.gid.as_raw());
        verified.groups = unix_groups(&canonical, entry.gid);
    }
    Ok(verified)
}

/// The names of the user's Unix groups (`getgrouplist`: the primary group
/// and every supplementary one, from whatever NSS reads — files, sssd,
/// winbind). A group id without a name is left out.
fn unix_groups(user: &str, primary: nix::unistd::Gid) -> Vec<String> {
    let Ok(name) = std::ffi::CString::new(user) else {
        return Vec::new();
    };
    match nix::unistd::getgrouplist(&name, primary) {
        Ok(gids) => gids
            .into_iter()
            .filter_map(|gid| nix::unistd::Group::from_gid(gid).ok().flatten())
            .map(|g| g.name)
            .collect(),
        Err(e) => {
            tracing::warn!(user, error = %e, "cannot read the user's Unix groups");
            Vec::new()
        }
    }
}

#[async_trait]
impl Authenticator for PamAuthenticator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authenticate(
        &self,
        realm: &str,
        user: &str,
        password: &Password,
    ) -> Result<Verified, AuthError> {
        let service = match &self.service {
            PamService::Fixed(s) => s.clone(),
            PamService::FromRealm { allowed } => {
                if !allowed.iter().any(|a| a == realm) {
                    tracing::info!(
                        realm,
                        "the realm names no allowed PAM service (auth.pam_services)"
                    );
                    return Err(AuthError::Rejected);
                }
                realm.to_owned()
            }
        };
        if service.is_empty() || service.contains('/') || service.chars().any(char::is_control) {
            return Err(AuthError::Unavailable(format!(
                "invalid PAM service name {service:?}"
            )));
        }
        let (user, password) = (user.to_owned(), password.clone());
        tokio::task::spawn_blocking(move || run_transaction(&service, &user, password))
            .await
            .map_err(|e| AuthError::Unavailable(format!("PAM task failed: {e}")))?
    }
}
