use std::fmt;
use zeroize::Zeroizing;

/// A password in memory: redacted in `Debug`, wiped when dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(text: impl Into<String>) -> Password {
        Password(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Credentials obtained at login (a Kerberos ccache, serialised): redacted
/// in `Debug`, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials(Zeroizing<Vec<u8>>);

impl Credentials {
    pub fn new(bytes: Vec<u8>) -> Credentials {
        Credentials(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials(<{} bytes redacted>)", self.0.len())
    }
}
