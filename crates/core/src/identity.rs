//! Who an authenticator says the user is.

use serde::{Deserialize, Serialize};

/// The outcome of a successful authentication: a canonical user name, the
/// source that vouched for it (`auth/<module>`, `pam`, `stored`, …), and the
/// Unix ids PAM logins report (SessionKeyServer's `uid=`/`gid=` lines), and
/// the groups the authenticator found (access rules and `X-Remote-Groups`
/// read them; the text protocol does not show them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Group names, sorted and without duplicates ([`Identity::with_groups`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Identity {
    pub fn new(user: impl Into<String>, source: impl Into<String>) -> Identity {
        Identity {
            user: user.into(),
            source: source.into(),
            uid: None,
            gid: None,
            groups: Vec::new(),
        }
    }

    /// Sets the groups, sorted and de-duplicated, keeping only names a
    /// header can carry ([`crate::names::check_group`]); logins log what
    /// is left out (`login::warn_unusable_groups`), a ticket's odd tokens
    /// are simply not groups.
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = String>) -> Identity {
        self.groups = clean_groups(groups);
        self
    }

    /// SessionKeyServer's record text: `user\nsource\n[uid=N\n][gid=N\n]`.
    /// It is both the body fragment of `/valid` and the slot name of `/gen_key`.
    pub fn sks_record_text(&self) -> String {
        let mut s = format!("{}\n{}\n", self.user, self.source);
        if let Some(uid) = self.uid {
            s.push_str(&format!("uid={uid}\n"));
        }
        if let Some(gid) = self.gid {
            s.push_str(&format!("gid={gid}\n"));
        }
        s
    }
}

/// Groups as identities keep them: valid names only, sorted, unique.
pub fn clean_groups(groups: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut g: Vec<String> = groups
        .into_iter()
        .filter(|g| crate::names::check_group(g).is_ok())
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_text_matches_sessionkeyserver() {
        let mut id = Identity::new("alice", "auth/KS");
        assert_eq!(id.sks_record_text(), "alice\nauth/KS\n");
        id.uid = Some(1001);
        id.gid = Some(100);
        assert_eq!(id.sks_record_text(), "alice\nauth/KS\nuid=1001\ngid=100\n");
        let id = id.with_groups(["ops".into(), "dev".into(), "ops".into(), "a,b".into()]);
        assert_eq!(id.groups, ["dev", "ops"]);
        assert_eq!(
            id.sks_record_text(),
            "alice\nauth/KS\nuid=1001\ngid=100\n",
            "the text protocol does not change"
        );
    }
}
