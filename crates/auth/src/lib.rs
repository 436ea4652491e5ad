//! Authenticators for sessiond, behind one trait.
//!
//! An authenticator turns (realm, user, password) into a verified user or a
//! typed failure. Each runs its blocking work (argon2, libpam) on tokio's
//! blocking pool so slow checks never stall the request executor.

mod error;
#[cfg(feature = "kerberos")]
pub mod kerberos;
pub mod ldap;
#[cfg(feature = "pam")]
pub mod pam;
pub mod password_file;
#[cfg(feature = "kerberos")]
pub mod s4u;
mod secret;

pub use error::{AuthError, Refusal};
pub use password_file::PasswordFileAuthenticator;
pub use secret::{Credentials, Password};

use async_trait::async_trait;

/// A user an authenticator vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The canonical user name (an authenticator may normalise what was typed).
    pub user: String,
    /// Unix ids, for PAM logins of users that exist in the passwd database.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// How long the credentials obtained at login (a Kerberos TGT) stay
    /// good; the session ends before they do.
    pub credential_lifetime: Option<std::time::Duration>,
    /// The credentials themselves (a Kerberos TGT as a ccache), for the
    /// session to keep sealed.
    pub credentials: Option<Credentials>,
    /// The groups the back end knows the user to be in (password file
    /// entry, Unix groups, LDAP); empty when it knows none.
    pub groups: Vec<String>,
}

impl Verified {
    pub fn user(user: impl Into<String>) -> Verified {
        Verified {
            user: user.into(),
            uid: None,
            gid: None,
            credential_lifetime: None,
            credentials: None,
            groups: Vec::new(),
        }
    }
}

/// Where a user's groups come from when the login itself cannot tell
/// (Kerberos: a ticket names a principal, not its groups).
#[async_trait]
pub trait GroupLookup: Send + Sync + 'static {
    /// The groups of `user` (the session's user name). An unknown user has
    /// none; only an unreachable source is an error.
    async fn groups(&self, user: &str) -> Result<Vec<String>, AuthError>;
}

/// A fixed user → groups table (`[kerberos.groups]`).
pub struct StaticGroups(pub std::collections::HashMap<String, Vec<String>>);

#[async_trait]
impl GroupLookup for StaticGroups {
    async fn groups(&self, user: &str) -> Result<Vec<String>, AuthError> {
        Ok(self.0.get(user).cloned().unwrap_or_default())
    }
}

/// One authentication module (`file`, `pam`, …).
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The module name clients select with `module=`.
    fn name(&self) -> &str;

    /// Checks `password` for `user` in `realm`.
    async fn authenticate(
        &self,
        realm: &str,
        user: &str,
        password: &Password,
    ) -> Result<Verified, AuthError>;
}
