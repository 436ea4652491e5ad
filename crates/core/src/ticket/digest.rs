//! The digests the peers define, over the same input:
//! `ip+timestamp | secret | user | NUL | tokens | NUL | user data`.

use super::AddressBinding;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256, Sha512};
use std::net::{IpAddr, Ipv4Addr};

/// Written in configuration and flags by its [`DigestKind::name`]
/// (case-insensitive, as mod_auth_tkt's `TKTAuthDigestType SHA512`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DigestKind {
    /// plone.session's default: HMAC-SHA256 with the secret as key, the raw
    /// 32-byte digest in the ticket (so the cookie must be base64).
    HmacSha256,
    /// mod_auth_tkt's original double MD5 hash. Compatible with everything,
    /// and weak: MD5 is broken for collisions and the construction is not an
    /// HMAC. Only on explicit request.
    Md5,
    /// mod_auth_tkt's `TKTAuthDigestType SHA256`: the same double hash.
    Sha256,
    /// mod_auth_tkt's `TKTAuthDigestType SHA512`.
    Sha512,
}

impl std::str::FromStr for DigestKind {
    type Err = String;

    fn from_str(name: &str) -> Result<DigestKind, String> {
        DigestKind::parse(name)
            .ok_or_else(|| format!("{name:?} is not one of {}", DigestKind::NAMES))
    }
}

impl TryFrom<String> for DigestKind {
    type Error = String;

    fn try_from(name: String) -> Result<DigestKind, String> {
        name.parse()
    }
}

impl From<DigestKind> for String {
    fn from(d: DigestKind) -> String {
        d.name().to_owned()
    }
}

impl DigestKind {
    pub const NAMES: &'static str = "hmac-sha256, sha512, sha256, md5";

    pub fn parse(name: &str) -> Option<DigestKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "hmac-sha256" => DigestKind::HmacSha256,
            "md5" => DigestKind::Md5,
            "sha256" => DigestKind::Sha256,
            "sha512" => DigestKind::Sha512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestKind::HmacSha256 => "hmac-sha256",
            DigestKind::Md5 => "md5",
            DigestKind::Sha256 => "sha256",
            DigestKind::Sha512 => "sha512",
        }
    }

    /// MD5: kept for compatibility only.
    pub fn is_weak(self) -> bool {
        self == DigestKind::Md5
    }

    /// Whether the digest is written as hex text (else raw bytes).
    pub fn is_hex(self) -> bool {
        self != DigestKind::HmacSha256
    }

    /// Bytes the digest takes at the start of a ticket.
    pub fn ticket_len(self) -> usize {
        match self {
            DigestKind::HmacSha256 | DigestKind::Md5 => 32,
            DigestKind::Sha256 => 64,
            DigestKind::Sha512 => 128,
        }
    }

    pub(super) fn compute(
        self,
        secret: &[u8],
        binding: AddressBinding,
        issued: u32,
        user: &str,
        tokens: &str,
        user_data: &str,
    ) -> Vec<u8> {
        let prefix = address_and_time(binding, issued);
        let fields = [
            user.as_bytes(),
            b"\0",
            tokens.as_bytes(),
            b"\0",
            user_data.as_bytes(),
        ];
        match self {
            DigestKind::HmacSha256 => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
                mac.update(&prefix);
                for f in fields {
                    mac.update(f);
                }
                mac.finalize().into_bytes().to_vec()
            }
            DigestKind::Md5 => double_hash::<Md5>(&prefix, secret, &fields),
            DigestKind::Sha256 => double_hash::<Sha256>(&prefix, secret, &fields),
            DigestKind::Sha512 => double_hash::<Sha512>(&prefix, secret, &fields),
        }
    }
}

/// mod_auth_tkt: `hex(H(hex(H(prefix | secret | fields)) | secret))`.
fn double_hash<H: Digest>(prefix: &[u8], secret: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut inner = H::new();
    inner.update(prefix);
    inner.update(secret);
    for f in fields {
        inner.update(f);
    }
    let inner = hex::encode(inner.finalize());
    let mut outer = H::new();
    outer.update(inner.as_bytes());
    outer.update(secret);
    hex::encode(outer.finalize()).into_bytes()
}

/// The bytes that bind a ticket to an address and a time.
fn address_and_time(binding: AddressBinding, issued: u32) -> Vec<u8> {
    let v4 = |ip: Ipv4Addr| {
        let mut b = ip.octets().to_vec();
        b.extend_from_slice(&issued.to_be_bytes());
        b
    };
    match binding {
        AddressBinding::Ignore => v4(Ipv4Addr::UNSPECIFIED),
        AddressBinding::Client(IpAddr::V4(ip)) => v4(ip),
        AddressBinding::Client(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(ip) => v4(ip),
            // Pyramid: the address as text, then the timestamp in decimal.
            None => format!("{ip}{issued}").into_bytes(),
        },
    }
}
