//! Ticket ↔ cookie value. Peers write the ticket raw (Paste, Pyramid, the
//! Perl and PHP helpers of mod_auth_tkt) or base64-encoded (Apache itself on
//! refresh, plone.session always, since its HMAC digest is binary).

use super::{DigestKind, TicketError};
use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as B64};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// How sessiond writes a ticket into a cookie. Reading accepts every form.
/// Written `base64` or `raw` in configuration and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CookieEncoding {
    /// Standard base64 with padding: what Apache and plone.session write.
    #[default]
    Base64,
    /// The ticket text itself (hex digests only, and only when every byte is
    /// allowed in a cookie value).
    Raw,
}

impl std::str::FromStr for CookieEncoding {
    type Err = String;

    fn from_str(name: &str) -> Result<CookieEncoding, String> {
        match name {
            "base64" => Ok(CookieEncoding::Base64),
            "raw" => Ok(CookieEncoding::Raw),
            _ => Err(format!("{name:?} is not base64 or raw")),
        }
    }
}

impl TryFrom<String> for CookieEncoding {
    type Error = String;

    fn try_from(name: String) -> Result<CookieEncoding, String> {
        name.parse()
    }
}

impl From<CookieEncoding> for String {
    fn from(e: CookieEncoding) -> String {
        match e {
            CookieEncoding::Base64 => "base64",
            CookieEncoding::Raw => "raw",
        }
        .to_owned()
    }
}

/// Base64 that accepts a value with or without its `=` padding: some cookie
/// libraries strip it.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn encode_cookie_value(
    digest: DigestKind,
    encoding: CookieEncoding,
    ticket: &[u8],
) -> Result<String, TicketError> {
    match encoding {
        CookieEncoding::Base64 => Ok(B64.encode(ticket)),
        CookieEncoding::Raw if !digest.is_hex() => Err(TicketError::Unsignable {
            field: "cookie",
            reason: "cannot be raw with a binary (hmac-sha256) digest; use base64",
        }),
        CookieEncoding::Raw => {
            if ticket.iter().all(|&b| is_cookie_octet(b)) {
                Ok(String::from_utf8(ticket.to_vec()).expect("cookie octets are ASCII"))
            } else {
                Err(TicketError::Unsignable {
                    field: "cookie",
                    reason: "has characters a raw cookie value cannot carry; use base64",
                })
            }
        }
    }
}

/// RFC 6265 `cookie-octet`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// The ticket bytes in a cookie value, whichever way a peer wrote them.
pub fn decode_cookie_value(digest: DigestKind, value: &str) -> Result<Vec<u8>, TicketError> {
    let mut value = value.trim();
    // Leniency: webob and Zope quote values with special characters, and
    // mod_auth_tkt strips the quotes too.
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        value = &value[1..value.len() - 1];
    }
    if value.is_empty() {
        return Err(TicketError::Malformed("empty cookie"));
    }
    if digest.is_hex() && value.contains('!') {
        return Ok(value.as_bytes().to_vec());
    }
    // Leniency: Apache accepts a ticket whose separators were URL-escaped.
    if digest.is_hex() && value.contains("%21") {
        return Ok(percent_decode_str(value).collect());
    }
    LENIENT_B64
        .decode(value)
        .map_err(|_| TicketError::Malformed("cookie is neither a ticket nor base64"))
}

/// Python's `urllib.parse.quote` with its default `safe='/'`: letters, digits
/// and `_.-~/` stay, everything else is `%XX` of its UTF-8 bytes.
const PYTHON_QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

pub(super) fn python_quote(text: &str) -> String {
    utf8_percent_encode(text, PYTHON_QUOTE).to_string()
}
