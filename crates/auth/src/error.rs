use thiserror::Error;

/// Why an authentication did not succeed.
#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong password, unknown user, or an account the back end refuses. The
    /// reason is deliberately not told apart, so callers cannot probe for users.
    #[error("authentication failed")]
    Rejected,
    /// The back end cannot answer now (file unreadable, PAM stack broken);
    /// callers answer 503 rather than "wrong password".
    #[error("authentication back end unavailable: {0}")]
    Unavailable(String),
    /// A refusal whose reason the back end tells apart and the user needs to
    /// act on (a Kerberos password that expired must be changed).
    #[error("authentication refused: {0}")]
    Refused(Refusal),
}

/// Reasons for a refusal that some back ends (Kerberos) report distinctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("wrong password")]
    WrongPassword,
    #[error("unknown user")]
    UnknownUser,
    #[error("password expired")]
    PasswordExpired,
    #[error("account disabled")]
    AccountDisabled,
}

impl Refusal {
    /// Machine-readable code for JSON errors.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::WrongPassword => "wrong_password",
            Refusal::UnknownUser => "unknown_user",
            Refusal::PasswordExpired => "password_expired",
            Refusal::AccountDisabled => "account_disabled",
        }
    }
}
