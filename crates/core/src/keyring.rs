//! A keyring for sealing secrets kept in sessions (delegated Kerberos
//! credentials): XChaCha20-Poly1305 under 256-bit keys. The first key seals,
//! every key opens, so keys rotate without losing sessions: add the new key
//! first, keep the old ones until the sessions sealed under them have ended.
//!
//! Sealed layout: `1` (version) ‖ key id (4 bytes: the first bytes of the
//! key's SHA-256) ‖ nonce (24 random bytes) ‖ ciphertext+tag. The additional
//! data binds a blob to its purpose and owner (realm, user), so a sealed
//! blob copied into another user's session does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use thiserror::Error;

const VERSION: u8 = 1;
const ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyringError {
    #[error("a key must be 64 hex characters (32 bytes); line {0} is not")]
    BadKey(usize),
    #[error("the keyring is empty")]
    Empty,
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed under a key that is not in the keyring (rotated out?)")]
    UnknownKey,
    #[error("sealed data does not open: tampered, or bound to another owner")]
    Tampered,
}

struct Key {
    id: [u8; ID_LEN],
    cipher: XChaCha20Poly1305,
}

pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

fn key_from(bytes: &[u8; 32]) -> Key {
    let digest = Sha256::digest(bytes);
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&digest[..ID_LEN]);
    Key {
        id,
        cipher: XChaCha20Poly1305::new(bytes.into()),
    }
}

impl Keyring {
    /// Keys as hex text, one per line (blank lines and `#` comments
    /// ignored); the first seals.
    pub fn from_hex_lines(text: &str) -> Result<Keyring, KeyringError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes: [u8; 32] = hex::decode(line)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(KeyringError::BadKey(n + 1))?;
            keys.push(key_from(&bytes));
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// One fresh random key: what a server without configured keys uses (its
    /// sealed credentials do not outlive the process).
    pub fn ephemeral() -> Keyring {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS CSPRNG is available");
        Keyring {
            keys: vec![key_from(&bytes)],
        }
    }

    /// A new random key as hex, for `sessiond` to print for operators.
    pub fn generate_hex() -> String {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS CSPRNG is available");
        hex::encode(bytes)
    }

    pub fn seal(&self, plaintext: &[u8], bound_to: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS CSPRNG is available");
        let sealed = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: bound_to,
                },
            )
            .expect("sealing a buffer cannot fail");
        let mut out = Vec::with_capacity(1 + ID_LEN + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], bound_to: &[u8]) -> Result<Vec<u8>, KeyringError> {
        if sealed.len() < 1 + ID_LEN + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(KeyringError::Malformed);
        }
        let id = &sealed[1..1 + ID_LEN];
        let nonce = &sealed[1 + ID_LEN..1 + ID_LEN + NONCE_LEN];
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(KeyringError::UnknownKey)?;
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: &sealed[1 + ID_LEN + NONCE_LEN..],
                    aad: bound_to,
                },
            )
            .map_err(|_| KeyringError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&str]) -> Keyring {
        Keyring::from_hex_lines(&keys.join("\n")).unwrap()
    }

    #[test]
    fn seals_opens_and_rotates() {
        let (old, new) = (Keyring::generate_hex(), Keyring::generate_hex());
        let before = ring(&[&old]);
        let sealed_old = before.seal(b"ccache bytes", b"rc\0alice");
        assert_ne!(&sealed_old[29..], b"ccache bytes");
        let rotated = ring(&[&new, &old]);
        assert_eq!(
            rotated.open(&sealed_old, b"rc\0alice").unwrap(),
            b"ccache bytes"
        );
        let sealed_new = rotated.seal(b"x", b"rc\0alice");
        assert_eq!(
            before.open(&sealed_new, b"rc\0alice"),
            Err(KeyringError::UnknownKey)
        );
        let retired = ring(&[&new]);
        assert_eq!(
            retired.open(&sealed_old, b"rc\0alice"),
            Err(KeyringError::UnknownKey)
        );
    }

    #[test]
    fn tampering_and_wrong_owner_fail() {
        let r = Keyring::ephemeral();
        let mut sealed = r.seal(b"secret", b"rc\0alice");
        assert_eq!(r.open(&sealed, b"rc\0mallory"), Err(KeyringError::Tampered));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(r.open(&sealed, b"rc\0alice"), Err(KeyringError::Tampered));
        assert_eq!(r.open(b"short", b""), Err(KeyringError::Malformed));
    }

    #[test]
    fn key_file_errors_name_the_line() {
        assert_eq!(
            Keyring::from_hex_lines("# comment\n\nnot-hex").err(),
            Some(KeyringError::BadKey(3))
        );
        assert_eq!(
            Keyring::from_hex_lines("# only a comment").err(),
            Some(KeyringError::Empty)
        );
    }
}
