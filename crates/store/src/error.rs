//! The one error type of every store.

use thiserror::Error;

/// Why a store operation failed. None of these carries a token or a secret.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The backing service or file cannot be used right now; callers answer 503.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded. The record is left in place.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The store cannot be opened with the given settings.
    #[error("cannot open session store: {0}")]
    Open(String),
}
