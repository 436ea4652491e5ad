//! The pure core of sessiond.
//!
//! Everything here is deterministic given its inputs (the only exception is
//! [`token::Token::generate`], which reads the OS CSPRNG): no clocks, no files,
//! no network. Time is always passed in as a [`time::Timestamp`], which is what
//! lets every store's expiry behaviour be tested with a controllable clock.

pub mod access;
pub mod ccache;
pub mod duration;
pub mod forwarded;
pub mod identity;
pub mod keyring;
pub mod limiter;
pub mod names;
pub mod policy;
pub mod session;
pub mod ticket;
pub mod time;
pub mod token;

pub use duration::{parse_duration, parse_signed_seconds, DurationError};
pub use identity::Identity;
pub use policy::RealmPolicy;
pub use session::{NewSession, SessionData, SessionRecord, Validity};
pub use time::Timestamp;
pub use token::{Token, TokenHash};
