//! Secrets from a file or an environment variable — never from a flag, where
//! `ps` shows them. The one loader of every secret setting: the admin
//! credential, credential keys and readers, the LDAP service password,
//! ticket secrets.

use anyhow::Context;
use std::path::Path;

/// The secret text from `file` (named `key` in errors) if set, else from the
/// environment variable `env`; `None` when neither is set. In the
/// environment, a list is comma-separated; it comes back one item a line.
pub fn read(file: Option<&Path>, key: &str, env: &str) -> anyhow::Result<Option<String>> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("{key} = {}", path.display()))
            .map(Some),
        None => Ok(std::env::var(env).ok().map(|v| v.replace(',', "\n"))),
    }
}

/// The items of a secret text: one a line, trimmed; blank lines and `#`
/// comments skipped.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A single secret: the first line, trimmed.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_win_and_lists_split() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "# comment\n one \n\ntwo\n").unwrap();
        let text = read(Some(&f), "x.file", "SESSIOND_TEST_NO_SUCH_VAR")
            .unwrap()
            .unwrap();
        assert_eq!(lines(&text), vec!["one", "two"]);
        assert_eq!(first_line(" abc \nnext"), "abc");
        assert!(read(None, "x.file", "SESSIOND_TEST_NO_SUCH_VAR")
            .unwrap()
            .is_none());
        let err = read(Some(&dir.path().join("missing")), "x.file", "V")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.file"), "{err}");
    }
}
