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
}
