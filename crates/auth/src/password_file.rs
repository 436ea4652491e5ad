//! The `file` authenticator: users and argon2id hashes in a text file.
//!
//! Format, one user per line: `name:$argon2id$v=19$m=…,t=…,p=…$salt$hash`,
//! optionally followed by `:group,group` (the user's groups; a PHC hash
//! never holds a `:`, so older files read as before). Blank lines and lines
//! starting with `#` are ignored. The file is managed by
//! `sessiond user add|passwd|del|list` and re-read when it changes, so users
//! can be added while the server runs.

use crate::{AuthError, Authenticator, Password, Verified};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use thiserror::Error;

/// Problems reading or changing a password file.
#[derive(Debug, Error)]
pub enum PasswordFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "user name {0:?} is not allowed: it must be non-empty, without ':' or control characters"
    )]
    BadName(String),
    #[error("user {0:?} already exists (use `sessiond user passwd` to change the password)")]
    Exists(String),
    #[error("no such user: {0:?}")]
    NoSuchUser(String),
    #[error("{0} (group names: no commas, no control characters)")]
    BadGroup(String),
    #[error("cannot hash password: {0}")]
    Hash(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PasswordFileError + '_ {
    move |source| PasswordFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One user's line: the PHC-format hash and the groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: String,
    /// Sorted, unique, each a valid group name.
    pub groups: Vec<String>,
}

/// Users and their entries, sorted by name.
pub type Entries = BTreeMap<String, Entry>;

/// Parses `a,b` (spaces around names ignored) into checked group names.
pub fn parse_groups(text: &str) -> Result<Vec<String>, String> {
    sessiond_core::names::parse_group_list(text).map_err(|e| format!("group {e}"))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(':')
        && !name.chars().any(char::is_control)
        && name.len() <= 256
}

/// Reads a password file. A missing file is an empty user list.
pub fn read_entries(path: &Path) -> Result<Entries, PasswordFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut entries = Entries::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = |reason: &str| PasswordFileError::Syntax {
            path: path.to_owned(),
            line: i + 1,
            reason: reason.to_owned(),
        };
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| syntax("expected name:hash"))?;
        if !valid_name(name) {
            return Err(syntax("invalid user name"));
        }
        let (hash, groups) = rest.split_once(':').unwrap_or((rest, ""));
        PasswordHash::new(hash).map_err(|_| syntax("the hash is not in PHC format"))?;
        let groups = parse_groups(groups).map_err(|e| syntax(&e))?;
        entries.insert(
            name.to_owned(),
            Entry {
                hash: hash.to_owned(),
                groups,
            },
        );
    }
    Ok(entries)
}

/// Writes the file atomically (temporary file + rename), readable by its owner only.
fn write_entries(path: &Path, entries: &Entries) -> Result<(), PasswordFileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut text = String::from(
        "# sessiond password file: user:argon2id-hash[:groups]. Manage with `sessiond user`.\n",
    );
    for (name, e) in entries {
        if e.groups.is_empty() {
            text.push_str(&format!("{name}:{}\n", e.hash));
        } else {
            text.push_str(&format!("{name}:{}:{}\n", e.hash, e.groups.join(",")));
        }
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("passwd"),
        std::process::id()
    ));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Hashes a password with argon2id and the crate's default (OWASP) parameters.
pub fn hash_password(password: &Password) -> Result<String, PasswordFileError> {
    let mut salt = [0u8; 16];
    getrandom_fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordFileError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordFileError::Hash(e.to_string()))
}

fn getrandom_fill(buf: &mut [u8]) {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(buf);
}

/// Adds a user with groups; fails if the user exists.
pub fn add_user(
    path: &Path,
    user: &str,
    password: &Password,
    groups: &[String],
) -> Result<(), PasswordFileError> {
    if !valid_name(user) {
        return Err(PasswordFileError::BadName(user.to_owned()));
    }
    let groups = checked_groups(groups)?;
    let mut entries = read_entries(path)?;
    if entries.contains_key(user) {
        return Err(PasswordFileError::Exists(user.to_owned()));
    }
    let hash = hash_password(password)?;
    entries.insert(user.to_owned(), Entry { hash, groups });
    write_entries(path, &entries)
}

fn checked_groups(groups: &[String]) -> Result<Vec<String>, PasswordFileError> {
    parse_groups(&groups.join(",")).map_err(PasswordFileError::BadGroup)
}

/// Replaces an existing user's groups.
pub fn set_groups(path: &Path, user: &str, groups: &[String]) -> Result<(), PasswordFileError> {
    let groups = checked_groups(groups)?;
    let mut entries = read_entries(path)?;
    let entry = entries
        .get_mut(user)
        .ok_or_else(|| PasswordFileError::NoSuchUser(user.to_owned()))?;
    entry.groups = groups;
    write_entries(path, &entries)
}

/// Changes an existing user's password.
pub fn set_password(path: &Path, user: &str, password: &Password) -> Result<(), PasswordFileError> {
    let mut entries = read_entries(path)?;
    let slot = entries
        .get_mut(user)
        .ok_or_else(|| PasswordFileError::NoSuchUser(user.to_owned()))?;
    slot.hash = hash_password(password)?;
    write_entries(path, &entries)
}

/// Removes a user.
pub fn delete_user(path: &Path, user: &str) -> Result<(), PasswordFileError> {
    let mut entries = read_entries(path)?;
    if entries.remove(user).is_none() {
        return Err(PasswordFileError::NoSuchUser(user.to_owned()));
    }
    write_entries(path, &entries)
}

/// The file's identity for change detection: modification time and length.
pub type Stamp = Option<(SystemTime, u64)>;

struct Cache {
    stamp: Stamp,
    entries: Arc<Entries>,
}

/// The `file` authenticator.
pub struct PasswordFileAuthenticator {
    name: String,
    path: PathBuf,
    cache: Mutex<Cache>,
    /// Verified against when the user is unknown, so that unknown users take as
    /// long as wrong passwords and cannot be discovered by timing.
    decoy_hash: String,
}

impl PasswordFileAuthenticator {
    /// Loads `path` now, so a malformed file fails at start-up.
    pub fn open(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Result<Self, PasswordFileError> {
        let path = path.into();
        let entries = read_entries(&path)?;
        let decoy_hash = hash_password(&Password::new("decoy password, never matches"))?;
        Ok(PasswordFileAuthenticator {
            name: name.into(),
            cache: Mutex::new(Cache {
                stamp: stamp(&path),
                entries: Arc::new(entries),
            }),
            path,
            decoy_hash,
        })
    }

    /// Current entries, re-reading the file if it changed. A file that became
    /// unreadable or malformed keeps the last good entries and is reported.
    fn entries(&self) -> Result<Arc<Entries>, AuthError> {
        let now = stamp(&self.path);
        let mut cache = self.cache.lock();
        if now != cache.stamp {
            match read_entries(&self.path) {
                Ok(entries) => {
                    cache.entries = Arc::new(entries);
                    cache.stamp = now;
                    tracing::info!(path = %self.path.display(), users = cache.entries.len(), "password file reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "password file changed but cannot be read; keeping the previous users");
                    return Err(AuthError::Unavailable(e.to_string()));
                }
            }
        }
        Ok(cache.entries.clone())
    }
}

/// The file's current [`Stamp`] (`None` if it cannot be read).
pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn verify(hash: &str, password: &Password) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[async_trait]
impl Authenticator for PasswordFileAuthenticator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authenticate(
        &self,
        _realm: &str,
        user: &str,
        password: &Password,
    ) -> Result<Verified, AuthError> {
        let entries = self.entries()?;
        let (hash, groups, known) = match entries.get(user) {
            Some(e) => (e.hash.clone(), e.groups.clone(), true),
            None => (self.decoy_hash.clone(), Vec::new(), false),
        };
        let password = password.clone();
        let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .map_err(|e| AuthError::Unavailable(format!("verification task failed: {e}")))?;
        if ok && known {
            Ok(Verified {
                groups,
                ..Verified::user(user)
            })
        } else {
            Err(AuthError::Rejected)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manage_and_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        add_user(
            &path,
            "alice",
            &Password::new("pw-1"),
            &["ops".into(), "dev".into()],
        )
        .unwrap();
        assert!(matches!(
            add_user(&path, "alice", &Password::new("x"), &[]),
            Err(PasswordFileError::Exists(_))
        ));
        assert!(matches!(
            add_user(&path, "a:b", &Password::new("x"), &[]),
            Err(PasswordFileError::BadName(_))
        ));
        assert!(matches!(
            add_user(&path, "a\nb", &Password::new("x"), &[]),
            Err(PasswordFileError::BadName(_))
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("alice:$argon2id$"), "{text}");
        assert!(text.trim_end().ends_with(":dev,ops"), "{text}");
        assert!(matches!(
            add_user(&path, "carol", &Password::new("x"), &["a\nb".into()]),
            Err(PasswordFileError::BadGroup(_))
        ));
        assert!(!text.contains("pw-1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let auth = PasswordFileAuthenticator::open("file", &path).unwrap();
        let v = auth
            .authenticate("r", "alice", &Password::new("pw-1"))
            .await
            .unwrap();
        assert_eq!(
            (v.user.as_str(), v.groups.as_slice()),
            ("alice", &["dev".to_owned(), "ops".to_owned()][..])
        );
        assert!(matches!(
            auth.authenticate("r", "alice", &Password::new("pw-2"))
                .await,
            Err(AuthError::Rejected)
        ));
        assert!(matches!(
            auth.authenticate("r", "bob", &Password::new("pw-1")).await,
            Err(AuthError::Rejected)
        ));

        // changes are picked up without a restart
        set_password(&path, "alice", &Password::new("pw-2")).unwrap();
        add_user(&path, "bob", &Password::new("bob-pw"), &[]).unwrap();
        set_groups(&path, "alice", &["web".into()]).unwrap();
        assert_eq!(read_entries(&path).unwrap()["alice"].groups, ["web"]);
        assert!(auth
            .authenticate("r", "alice", &Password::new("pw-2"))
            .await
            .is_ok());
        assert!(auth
            .authenticate("r", "bob", &Password::new("bob-pw"))
            .await
            .is_ok());
        delete_user(&path, "bob").unwrap();
        assert!(matches!(
            auth.authenticate("r", "bob", &Password::new("bob-pw"))
                .await,
            Err(AuthError::Rejected)
        ));
        assert!(matches!(
            delete_user(&path, "bob"),
            Err(PasswordFileError::NoSuchUser(_))
        ));
        assert_eq!(
            read_entries(&path).unwrap().keys().collect::<Vec<_>>(),
            ["alice"]
        );
    }

    /// Any printable Unicode, and long passwords, are checked whole: no
    /// truncation, no character rules (ASVS 2.1.2–2.1.4).
    #[test]
    fn long_unicode_passwords_are_checked_whole() {
        let long = "pässwörd 🔑 ".repeat(12);
        let hash = hash_password(&Password::new(long.clone())).unwrap();
        assert!(verify(&hash, &Password::new(long.clone())));
        let mut almost = long.clone();
        almost.pop();
        assert!(
            !verify(&hash, &Password::new(almost)),
            "the last character counts"
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "# comment\n\nalice:not-a-hash\n").unwrap();
        let err = PasswordFileAuthenticator::open("file", &path)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .ends_with("line 3: the hash is not in PHC format"),
            "{err}"
        );
        std::fs::write(&path, "no-colon-here\n").unwrap();
        let err = read_entries(&path).unwrap_err();
        assert!(
            err.to_string().contains("line 1: expected name:hash"),
            "{err}"
        );
        assert!(read_entries(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_file_broken_while_running_is_unavailable_not_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        add_user(&path, "alice", &Password::new("pw"), &[]).unwrap();
        let auth = PasswordFileAuthenticator::open("file", &path).unwrap();
        std::fs::write(&path, "garbage line without separator\n").unwrap();
        assert!(matches!(
            auth.authenticate("r", "alice", &Password::new("pw")).await,
            Err(AuthError::Unavailable(_))
        ));
    }
}
