//! Session tokens and the hashes stores key them by.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Number of random bytes in a generated token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// A bearer token as handed to a client. Its `Debug` output is redacted so that
/// a token can never reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// 256 bits from the OS CSPRNG, as 64 lowercase hex characters.
    ///
    /// Panics only if the operating system cannot supply randomness, in which
    /// case no secure token can be made and continuing would be worse.
    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        Token(hex::encode(bytes))
    }

    /// Wraps a token received from a client. No format is imposed here: the
    /// original server accepted any string, and an unknown token simply does
    /// not match any record.
    pub fn from_client(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    /// The token text, for the response that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token: what stores use as the record key, so a dump
    /// of a store yields no usable token.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted>, {})", self.hash().short())
    }
}

/// SHA-256 of a token. Safe to store and, shortened, to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Eight hex characters: enough to correlate log lines, useless to an attacker.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The inverse of [`TokenHash::to_hex`]: `None` unless `text` is exactly
    /// 64 hex characters. Session ids in listings, admin paths and store
    /// indexes are written this way.
    pub fn from_hex(text: &str) -> Option<TokenHash> {
        let bytes = hex::decode(text).ok()?;
        Some(TokenHash(bytes.try_into().ok()?))
    }

    /// Constant-time equality, for the places that compare hashes of secrets
    /// outside of a map lookup.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.short())
    }
}

/// Constant-time comparison of two secrets of arbitrary length: both are
/// hashed first so neither content nor length leaks through timing.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    let ha: [u8; 32] = Sha256::digest(a).into();
    let hb: [u8; 32] = Sha256::digest(b).into();
    ha.ct_eq(&hb).into()
}

/// Lowercase hex of `n` random bytes from the OS CSPRNG (keys for `/gen_key`, group keys).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_tokens_are_64_lowercase_hex_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let t = Token::generate();
            let s = t.expose();
            assert_eq!(s.len(), 64);
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(seen.insert(s.to_owned()), "duplicate token");
        }
    }

    #[test]
    fn hash_is_sha256_of_the_text() {
        let t = Token::from_client("abc");
        assert_eq!(
            t.hash().to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hash_hex_round_trips_and_refuses_other_lengths() {
        let h = Token::generate().hash();
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex(&h.to_hex()[..62]), None);
        assert_eq!(TokenHash::from_hex(&format!("{}00", h.to_hex())), None);
        assert_eq!(TokenHash::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = Token::generate();
        let shown = format!("{t:?}");
        assert!(!shown.contains(t.expose()));
        assert!(!format!("{:?}", t.hash()).contains(&t.hash().to_hex()));
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal(b"s3cret", b"s3cret"));
        assert!(!secrets_equal(b"s3cret", b"s3cres"));
        assert!(!secrets_equal(b"s3cret", b"s3cret-longer"));
        assert_eq!(random_hex(64).len(), 128);
    }
}
