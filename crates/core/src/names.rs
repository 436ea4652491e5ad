//! Validation of client-supplied names before they reach a record.
//!
//! SessionKeyServer stored user names raw, so `eve%0Aadmin` produced a record
//! whose first line named another user. Records here are structured, but user
//! names are also echoed line by line in the text protocol, so control
//! characters are refused outright.

use thiserror::Error;

/// Longest accepted user or group name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} must not contain control characters (such as a newline)")]
    ControlCharacter { what: &'static str },
    #[error("{what} is longer than {MAX_NAME_BYTES} bytes")]
    TooLong { what: &'static str },
    #[error("{what} must not contain a comma or start or end with a space")]
    Separator { what: &'static str },
}

/// Checks a user, group or realm-scoped name. `what` names the field in the error.
pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    check_text(what, name)
}

/// Like [`check_name`] but allows the empty string (realms may be empty, as in
/// SessionKeyServer).
pub fn check_text(what: &'static str, text: &str) -> Result<(), NameError> {
    if text.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong { what });
    }
    if text.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter { what });
    }
    Ok(())
}

/// Checks a group name: a name ([`check_name`]) without a comma, since
/// groups travel comma-separated (`X-Remote-Groups`, ticket tokens), and
/// without surrounding spaces, which a list reader would strip.
pub fn check_group(name: &str) -> Result<(), NameError> {
    check_name("group", name)?;
    if name.contains(',') || name.trim() != name {
        return Err(NameError::Separator { what: "group" });
    }
    Ok(())
}

/// A name in a list that is not a valid group name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{name:?}: {source}")]
pub struct BadGroup {
    pub name: String,
    pub source: NameError,
}

/// A comma-separated list of groups as people write it (`dev, ops`):
/// entries trimmed, empty ones skipped, each checked with [`check_group`],
/// sorted and without duplicates. The one reader of such lists (password
/// file, `--groups`, `allowed_groups`).
pub fn parse_group_list(text: &str) -> Result<Vec<String>, BadGroup> {
    let mut groups = Vec::new();
    for g in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        check_group(g).map_err(|source| BadGroup {
            name: g.to_owned(),
            source,
        })?;
        groups.push(g.to_owned());
    }
    groups.sort_unstable();
    groups.dedup();
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("user", "alice").is_ok());
        assert!(check_name("user", "al ice@EXAMPLE.TEST").is_ok());
        assert_eq!(
            check_name("user", ""),
            Err(NameError::Empty { what: "user" })
        );
        assert_eq!(
            check_name("user", "eve\nadmin"),
            Err(NameError::ControlCharacter { what: "user" })
        );
        assert!(check_name("user", "nul\0").is_err());
        assert!(check_name("user", &"x".repeat(300)).is_err());
        assert!(check_text("realm", "").is_ok());
        assert!(check_group("ops team").is_ok());
        assert!(check_group("a,b").is_err());
        assert!(check_group(" a").is_err());
        assert!(check_group("").is_err());
        assert_eq!(parse_group_list(" ops, dev,,ops ").unwrap(), ["dev", "ops"]);
        assert_eq!(parse_group_list("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_group_list("a,b\nc").unwrap_err().name, "b\nc");
    }
}
