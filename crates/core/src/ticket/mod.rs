//! Stateless signed tickets in the mod_auth_tkt layout, as Apache's
//! mod_auth_tkt, plone.session's `tktauth` and Paste/Pyramid's `auth_tkt`
//! write them:
//!
//! ```text
//! digest | 8 hex timestamp | user id | "!" [ tokens "!" ] user data
//! ```
//!
//! The codec is hand-written because no maintained crate implements this
//! format; the digests themselves come from RustCrypto (`md-5`, `sha2`,
//! `hmac`). Everything here is pure: the caller passes the clock, the client
//! address and the secrets.
//!
//! Strict by default: a ticket must look exactly like one the peers write. The
//! leniencies real peers need are deliberate and each has a test: an empty
//! tokens field (`user!!data`, what Apache writes when it refreshes a ticket
//! without tokens), base64 without padding, a quoted cookie value, and
//! Apache's `%21`-escaped form.

mod cookie;
mod digest;

pub use cookie::{decode_cookie_value, encode_cookie_value, CookieEncoding};
pub use digest::DigestKind;

use std::net::IpAddr;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Length of the hexadecimal timestamp that follows the digest.
const TIMESTAMP_LEN: usize = 8;

/// What a ticket says: who, what tokens (mod_auth_tkt's `TKTAuthToken`
/// groups), free-form user data, and when it was issued (Unix seconds; the
/// format has 32 bits, enough until 2106).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub user: String,
    pub tokens: Vec<String>,
    pub user_data: String,
    pub issued: u32,
}

/// Which client address a ticket is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressBinding {
    /// Not bound: hashed as `0.0.0.0`, as every peer does for "ignore IP".
    Ignore,
    /// Bound to this client. IPv4 (and IPv4-mapped IPv6) addresses are hashed
    /// as four bytes, as all peers do. For IPv6 only Pyramid defines anything:
    /// the address text followed by the decimal timestamp; sessiond does the
    /// same. Apache mod_auth_tkt and plone.session cannot check an IPv6-bound
    /// ticket at all (`inet_aton` fails), so sites with IPv6 clients that
    /// share tickets with them must ignore the address.
    Client(IpAddr),
}

impl std::str::FromStr for UserIdEncoding {
    type Err = String;

    fn from_str(name: &str) -> Result<UserIdEncoding, String> {
        match name {
            "raw" => Ok(UserIdEncoding::Raw),
            "percent" => Ok(UserIdEncoding::Percent),
            _ => Err(format!("{name:?} is not raw or percent")),
        }
    }
}

/// How the user id is written inside the ticket: `raw` or `percent` in
/// configuration and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserIdEncoding {
    /// As is (mod_auth_tkt, plone.session).
    #[default]
    Raw,
    /// Percent-encoded as Python's `urllib.parse.quote` does; the digest
    /// covers the decoded id (Paste and Pyramid).
    Percent,
}

/// The variant of the format a realm speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFormat {
    pub digest: DigestKind,
    pub user_id: UserIdEncoding,
}

impl TicketFormat {
    pub fn new(digest: DigestKind) -> TicketFormat {
        TicketFormat {
            digest,
            user_id: UserIdEncoding::Raw,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TicketError {
    /// The bytes are not a ticket of this format; the text says what is wrong.
    #[error("malformed ticket: {0}")]
    Malformed(&'static str),
    /// Well-formed, but no secret of the keyring produced its digest (wrong
    /// secret, changed field, or another client address).
    #[error("ticket signature does not match")]
    BadSignature,
    #[error("ticket has expired")]
    Expired,
    #[error("ticket was issued in the future (clock skew beyond the allowance)")]
    FromTheFuture,
    /// A value that cannot be put in a ticket without changing how it parses.
    #[error("cannot sign a ticket: {field} {reason}")]
    Unsignable {
        field: &'static str,
        reason: &'static str,
    },
    #[error("no signing secret")]
    NoSecret,
    /// Signed, but its user id is not an acceptable name (a control
    /// character, too long): passed on, it would inject lines into
    /// `/valid` answers or break identity headers. Checked like login names.
    #[error("ticket user id refused: {0}")]
    BadUser(crate::names::NameError),
}

/// A ticket whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ticket: Ticket,
    /// Position in the keyring of the secret that matched: 0 is the current
    /// signing secret; anything else means the ticket should be re-issued.
    pub key_index: usize,
}

/// Builds the ticket bytes (before cookie encoding). Refuses values that would
/// change how the ticket parses: `!` anywhere, `,` in the user id or a token,
/// NUL anywhere, an empty user id or token.
pub fn sign(
    format: TicketFormat,
    secret: &[u8],
    ticket: &Ticket,
    binding: AddressBinding,
) -> Result<Vec<u8>, TicketError> {
    if secret.is_empty() {
        return Err(TicketError::NoSecret);
    }
    check_field("user id", &ticket.user, true)?;
    for t in &ticket.tokens {
        check_field("token", t, true)?;
    }
    check_field_chars("user data", &ticket.user_data, false)?;
    let tokens = ticket.tokens.join(",");
    let digest = format.digest.compute(
        secret,
        binding,
        ticket.issued,
        &ticket.user,
        &tokens,
        &ticket.user_data,
    );
    let user = match format.user_id {
        UserIdEncoding::Raw => ticket.user.clone(),
        UserIdEncoding::Percent => cookie::python_quote(&ticket.user),
    };
    let mut out = digest;
    out.extend_from_slice(format!("{:08x}", ticket.issued).as_bytes());
    out.extend_from_slice(user.as_bytes());
    out.push(b'!');
    if !ticket.tokens.is_empty() {
        out.extend_from_slice(tokens.as_bytes());
        out.push(b'!');
    }
    out.extend_from_slice(ticket.user_data.as_bytes());
    Ok(out)
}

fn check_field(field: &'static str, value: &str, non_empty: bool) -> Result<(), TicketError> {
    if non_empty && value.is_empty() {
        return Err(TicketError::Unsignable {
            field,
            reason: "is empty",
        });
    }
    check_field_chars(field, value, true)
}

fn check_field_chars(field: &'static str, value: &str, no_comma: bool) -> Result<(), TicketError> {
    if value.contains('!') {
        return Err(TicketError::Unsignable {
            field,
            reason: "contains '!', the field separator",
        });
    }
    if no_comma && value.contains(',') {
        return Err(TicketError::Unsignable {
            field,
            reason: "contains ',', the token separator",
        });
    }
    if value.contains('\0') {
        return Err(TicketError::Unsignable {
            field,
            reason: "contains a NUL character",
        });
    }
    Ok(())
}

/// A ticket split into its fields, not yet verified.
struct Parts<'a> {
    digest: &'a [u8],
    issued: u32,
    user: String,
    tokens_field: &'a str,
    user_data: &'a str,
}

fn parse(format: TicketFormat, raw: &[u8]) -> Result<Parts<'_>, TicketError> {
    let dlen = format.digest.ticket_len();
    if raw.len() < dlen + TIMESTAMP_LEN + 2 {
        return Err(TicketError::Malformed("too short"));
    }
    let (digest, rest) = raw.split_at(dlen);
    if format.digest.is_hex()
        && !digest
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(TicketError::Malformed(
            "digest is not lowercase hexadecimal",
        ));
    }
    let (stamp, rest) = rest.split_at(TIMESTAMP_LEN);
    if !stamp.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(TicketError::Malformed(
            "timestamp is not 8 lowercase hex digits",
        ));
    }
    let issued = u32::from_str_radix(std::str::from_utf8(stamp).expect("hex is ASCII"), 16)
        .expect("8 hex digits fit in u32");
    let rest = std::str::from_utf8(rest).map_err(|_| TicketError::Malformed("not UTF-8"))?;
    if rest.contains('\0') {
        return Err(TicketError::Malformed("contains a NUL character"));
    }
    let mut fields = rest.split('!');
    let user = fields.next().unwrap_or_default();
    let (tokens_field, user_data) = match (fields.next(), fields.next(), fields.next()) {
        (Some(data), None, None) => ("", data),
        (Some(tokens), Some(data), None) => (tokens, data),
        (None, _, _) => return Err(TicketError::Malformed("no '!' after the user id")),
        _ => return Err(TicketError::Malformed("more than two '!' separators")),
    };
    let user = match format.user_id {
        UserIdEncoding::Raw => user.to_owned(),
        UserIdEncoding::Percent => percent_encoding::percent_decode_str(user)
            .decode_utf8()
            .map_err(|_| TicketError::Malformed("percent-encoded user id is not UTF-8"))?
            .into_owned(),
    };
    if user.is_empty() {
        return Err(TicketError::Malformed("empty user id"));
    }
    if tokens_field.split(',').any(str::is_empty) && !tokens_field.is_empty() {
        return Err(TicketError::Malformed("empty token in the tokens list"));
    }
    Ok(Parts {
        digest,
        issued,
        user,
        tokens_field,
        user_data,
    })
}

/// Checks `raw` against every secret in `secrets`, in order, comparing
/// digests in constant time. Says nothing about expiry: see [`Timing`].
pub fn verify<'s>(
    format: TicketFormat,
    secrets: impl IntoIterator<Item = &'s [u8]>,
    raw: &[u8],
    binding: AddressBinding,
) -> Result<Verified, TicketError> {
    let parts = parse(format, raw)?;
    for (index, secret) in secrets.into_iter().enumerate() {
        let expected = format.digest.compute(
            secret,
            binding,
            parts.issued,
            &parts.user,
            parts.tokens_field,
            parts.user_data,
        );
        if bool::from(expected.ct_eq(parts.digest)) {
            crate::names::check_name("user id", &parts.user).map_err(TicketError::BadUser)?;
            return Ok(Verified {
                ticket: Ticket {
                    user: parts.user,
                    tokens: if parts.tokens_field.is_empty() {
                        Vec::new()
                    } else {
                        parts.tokens_field.split(',').map(str::to_owned).collect()
                    },
                    user_data: parts.user_data.to_owned(),
                    issued: parts.issued,
                },
                key_index: index,
            });
        }
    }
    Err(TicketError::BadSignature)
}

/// A realm's time rules for tickets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Seconds a ticket stays valid after it was issued; `None` = forever
    /// (mod_auth_tkt's `TKTAuthTimeout 0`, plone's `timeout = 0`).
    pub timeout: Option<u32>,
    /// Re-issue when less than this fraction of the timeout remains
    /// (mod_auth_tkt's `TKTAuthTimeoutRefresh`): 0 never, 1 on every request.
    pub refresh_fraction: f64,
    /// How far in the future an issue time may be (clocks of the servers
    /// sharing a secret differ a little). None of the peers checks this.
    pub future_skew: u32,
}

/// What the clock says about a ticket whose signature is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Valid, and due for re-issue under the refresh rule.
    Refresh,
}

impl Timing {
    /// Boundary as mod_auth_tkt and Pyramid: valid while
    /// `now <= issued + timeout` (plone.session is one second stricter:
    /// `now < issued + timeout`).
    pub fn check(&self, issued: u32, now: i64) -> Result<Freshness, TicketError> {
        let issued = i64::from(issued);
        if issued > now + i64::from(self.future_skew) {
            return Err(TicketError::FromTheFuture);
        }
        let Some(timeout) = self.timeout else {
            return Ok(Freshness::Fresh);
        };
        let timeout = i64::from(timeout);
        if now > issued + timeout {
            return Err(TicketError::Expired);
        }
        let remainder = (issued + timeout - now) as f64;
        if remainder < self.refresh_fraction * timeout as f64 {
            Ok(Freshness::Refresh)
        } else {
            Ok(Freshness::Fresh)
        }
    }

    /// The Unix time at which a ticket issued at `issued` stops being valid.
    pub fn expires(&self, issued: u32) -> Option<i64> {
        self.timeout.map(|t| i64::from(issued) + i64::from(t) + 1)
    }
}

#[cfg(test)]
mod tests;
