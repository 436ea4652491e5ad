//! Key names. Everything lives under one prefix so that several deployments
//! (or test runs) can share a Redis. Keys of one user share a hash tag
//! (`{u:realm:user}`), and so do keys of one group, so the scripts that touch
//! them stay in one cluster slot.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use sessiond_core::TokenHash;

/// Characters that would make a key ambiguous (`:` separates parts) or move
/// the hash tag (`{`, `}`); encoded so every realm and user name is safe.
const KEY_PART: &AsciiSet = &CONTROLS.add(b':').add(b'%').add(b'{').add(b'}').add(b' ');

fn enc(part: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(part, KEY_PART)
}

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn session(&self, id: &TokenHash) -> String {
        format!("{}:s:{}", self.prefix, id.to_hex())
    }

    fn user_tag(&self, realm: &str, user: &str) -> String {
        format!("{}:{{u:{}:{}}}", self.prefix, enc(realm), enc(user))
    }

    /// Hash with the user's supersede generation `g` and its time `at`.
    pub fn user_state(&self, realm: &str, user: &str) -> String {
        format!("{}:state", self.user_tag(realm, user))
    }

    /// Sorted set of the user's session ids (hex), scored by their
    /// *absolute* end (or +inf). Never by the idle end: that moves with
    /// every touch, and an index trimmed by a stale idle end loses sessions
    /// still in use (they would then escape supersede and "end all").
    pub fn user_index(&self, realm: &str, user: &str) -> String {
        format!("{}:sessions", self.user_tag(realm, user))
    }

    /// Set of the realms the user has had sessions in, so that ending all
    /// of a user's sessions (password change, deleted account) finds every
    /// realm's index without scanning the keyspace.
    pub fn user_realms(&self, user: &str) -> String {
        format!("{}:{{r:{}}}:realms", self.prefix, enc(user))
    }

    /// Hash of a failed-login record (`n`, `last`), expiring with its window.
    pub fn failures(&self, key: &str) -> String {
        format!("{}:f:{}", self.prefix, enc(key))
    }

    pub fn key_slot(&self, slot: &str) -> String {
        format!("{}:k:{}", self.prefix, enc(slot))
    }

    pub fn group_key(&self, group: &str) -> String {
        format!("{}:{{g:{}}}:key", self.prefix, enc(group))
    }

    pub fn group_roles(&self, group: &str) -> String {
        format!("{}:{{g:{}}}:roles", self.prefix, enc(group))
    }

    /// Field of a member in a group's roles hash.
    pub fn member(realm: &str, user: &str) -> String {
        format!("{}:{}", enc(realm), enc(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_share_one_hash_tag_whatever_the_names() {
        let k = Keys::new("p");
        for (realm, user) in [("rc", "alice"), ("a:b", "c}d{"), ("", "x y")] {
            let state = k.user_state(realm, user);
            let index = k.user_index(realm, user);
            let tag = |s: &str| s[s.find('{').unwrap()..=s.find('}').unwrap()].to_owned();
            assert_eq!(tag(&state), tag(&index));
        }
        assert_ne!(k.user_state("a:b", "c"), k.user_state("a", "b:c"));
    }
}
