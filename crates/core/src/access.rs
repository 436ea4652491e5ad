//! Access rules: which requests behind a forward-auth proxy need a session,
//! and whose. Pure: the server turns a request into a [`Target`] and a
//! session into a [`Who`]; everything between is decided here.
//!
//! Rules are written as [`RuleSpec`]s (the `[[access.rules]]` tables),
//! compiled once at start by [`Rules::compile`] — regular expressions,
//! networks and host patterns included — so a decision is a walk over
//! plain comparisons. The first rule whose request conditions all hold
//! decides; none matching, the default policy does.

use crate::names::{check_group, NameError};
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// What a matching rule (or the default) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// No session needed: 200 without identity.
    Public,
    /// Any live session.
    #[default]
    Authenticated,
    /// A live session whose identity the rule's subjects admit.
    Allow,
    /// Nobody, session or not: 403.
    Deny,
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Public => "public",
            PolicyKind::Authenticated => "authenticated",
            PolicyKind::Allow => "allow",
            PolicyKind::Deny => "deny",
        })
    }
}

/// One `[[access.rules]]` table as written. Every request condition that is
/// given must hold for the rule to match; within a list, any entry will do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSpec {
    /// A name for logs and `check-access` (else `rule N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Host names: exact (`app.example.com`) or one leading wildcard label
    /// (`*.example.com`, which does not match `example.com` itself).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Path prefixes, segment-wise: `/app` matches `/app` and `/app/x`,
    /// never `/apple`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A regular expression searched in the path (anchor it with `^…$`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// Methods (`GET`, `POST`, …); a request whose method the proxy does
    /// not pass matches no rule that lists methods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Client networks (`10.0.0.0/8`, `::1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    pub policy: PolicyKind,
    /// `allow` only: users admitted by name …
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// … or by membership of one of these groups;
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// and, when given, only sessions of these realms …
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub realms: Vec<String>,
    /// … and of these sources (`auth/file`, `negotiate`, `ticket`;
    /// `kerberos` stands for `negotiate` and `auth/krb5`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// A rule that cannot be compiled: which one, which key, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access.rules[{index}].{key}: {reason}")]
pub struct RuleError {
    /// Position in `access.rules`, from 0 as TOML tools count.
    pub index: usize,
    pub key: &'static str,
    pub reason: String,
}

/// The request a proxy asks about, as the server read it from the
/// forwarded headers.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Lower-case host without port or trailing dot.
    pub host: Option<&'a str>,
    /// Normalised with [`normalize_path`].
    pub path: &'a str,
    /// Upper-case, when the proxy passed it.
    pub method: Option<&'a str>,
    pub client: Option<IpAddr>,
}

/// Whom a session speaks for, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub realm: &'a str,
    pub source: &'a str,
}

/// Users and groups, either admitting (`users` by name, or membership of
/// one of `groups`). Also the form of the per-location `/auth` parameters
/// `allowed_users` and `allowed_groups`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subjects {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Subjects {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Whether `who` is named or is in one of the groups (true when empty).
    pub fn admits(&self, who: &Who<'_>) -> bool {
        self.is_empty()
            || self.users.iter().any(|u| u == who.user)
            || who.groups.iter().any(|g| self.groups.contains(g))
    }
}

impl fmt::Display for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            parts.push(format!("users [{}]", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups [{}]", self.groups.join(", ")));
        }
        f.write_str(&parts.join(" or "))
    }
}

/// What a rule asks of a session.
#[derive(Debug, Clone)]
pub enum Policy {
    Public,
    Authenticated,
    Allow {
        who: Subjects,
        realms: Vec<String>,
        /// Lower-case, aliases expanded.
        sources: Vec<String>,
    },
    Deny,
}

impl Policy {
    pub fn kind(&self) -> PolicyKind {
        match self {
            Policy::Public => PolicyKind::Public,
            Policy::Authenticated => PolicyKind::Authenticated,
            Policy::Allow { .. } => PolicyKind::Allow,
            Policy::Deny => PolicyKind::Deny,
        }
    }

    /// Whether the policy lets `who` through, and if not, why (for logs and
    /// `check-access`; never shown to the refused user beyond the rule name).
    pub fn admits(&self, who: &Who<'_>) -> Result<(), String> {
        match self {
            Policy::Public | Policy::Authenticated => Ok(()),
            Policy::Deny => Err("the rule denies everyone".into()),
            Policy::Allow {
                who: subjects,
                realms,
                sources,
            } => {
                if !subjects.admits(who) {
                    return Err(format!(
                        "{} is not one of {subjects} (groups: [{}])",
                        who.user,
                        who.groups.join(", ")
                    ));
                }
                if !realms.is_empty() && !realms.iter().any(|r| r == who.realm) {
                    return Err(format!(
                        "realm {:?} is not one of [{}]",
                        who.realm,
                        realms.join(", ")
                    ));
                }
                if !sources.is_empty()
                    && !sources.iter().any(|s| s.eq_ignore_ascii_case(who.source))
                {
                    return Err(format!(
                        "source {:?} is not one of [{}]",
                        who.source,
                        sources.join(", ")
                    ));
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Allow {
                who,
                realms,
                sources,
            } => {
                f.write_str("allow")?;
                if !who.is_empty() {
                    write!(f, " {who}")?;
                }
                if !realms.is_empty() {
                    write!(f, " in realms [{}]", realms.join(", "))?;
                }
                if !sources.is_empty() {
                    write!(f, " from sources [{}]", sources.join(", "))?;
                }
                Ok(())
            }
            p => write!(f, "{}", p.kind()),
        }
    }
}

enum HostPattern {
    Exact(String),
    /// `*.example.com` kept as `.example.com`.
    Suffix(String),
}

/// A compiled rule.
pub struct Rule {
    /// `rule N` or `rule N (name)`, for messages.
    pub label: String,
    /// The name alone, or `rule N`, for the `X-Sessiond-Rule` header.
    pub name: String,
    hosts: Vec<HostPattern>,
    paths: Vec<String>,
    /// This rule's expression in [`Rules::regexes`]: all of them run in one
    /// pass over the path, once per decision, whatever their number.
    path_regex: Option<usize>,
    methods: Vec<String>,
    networks: Vec<ipnet::IpNet>,
    pub policy: Policy,
    /// The conditions as written, for `check-access`.
    pub conditions: String,
}

impl Rule {
    /// Whether every request condition holds; `regex_hits` says which of
    /// the rule set's expressions match the path (computed on first need).
    fn matches(&self, t: &Target<'_>, regex_hits: &mut RegexHits<'_>) -> bool {
        if !self.hosts.is_empty() {
            let Some(host) = t.host else { return false };
            let hit = self.hosts.iter().any(|p| match p {
                HostPattern::Exact(h) => h == host,
                HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
            });
            if !hit {
                return false;
            }
        }
        if !self.paths.is_empty() && !self.paths.iter().any(|p| path_has_prefix(t.path, p)) {
            return false;
        }
        if let Some(i) = self.path_regex {
            if !regex_hits.get(t.path).matched(i) {
                return false;
            }
        }
        if !self.methods.is_empty() {
            let Some(m) = t.method else { return false };
            if !self.methods.iter().any(|x| x == m) {
                return false;
            }
        }
        if !self.networks.is_empty() {
            let Some(ip) = t.client else { return false };
            let ip = canonical_ip(ip);
            if !self.networks.iter().any(|n| n.contains(&ip)) {
                return false;
            }
        }
        true
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so `10.0.0.0/8`
/// covers a dual-stack listener's `::ffff:10.1.2.3`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Segment-wise prefix: `/app` covers `/app` and `/app/…`, not `/apple`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The rule set, compiled.
pub struct Rules {
    pub rules: Vec<Rule>,
    pub default: Policy,
    /// Every rule's `path_regex`, as one set.
    regexes: RegexSet,
}

/// The rule set's expressions matched against one path, at most once.
struct RegexHits<'r> {
    set: &'r RegexSet,
    hits: Option<regex::SetMatches>,
}

impl RegexHits<'_> {
    fn get(&mut self, path: &str) -> &regex::SetMatches {
        let set = self.set;
        self.hits.get_or_insert_with(|| set.matches(path))
    }
}

/// Which rule decided, and what it asks.
#[derive(Clone, Copy)]
pub struct Decision<'r> {
    /// `None`: no rule matched, the default policy decides.
    pub rule: Option<&'r Rule>,
    pub policy: &'r Policy,
}

impl Decision<'_> {
    /// `rule 3 (ops app)` or `the default policy`.
    pub fn label(&self) -> &str {
        self.rule.map_or("the default policy", |r| r.label.as_str())
    }

    /// The short name for a response header.
    pub fn name(&self) -> &str {
        self.rule.map_or("default", |r| r.name.as_str())
    }
}

impl Rules {
    /// No rules: every request needs a session, as before rules existed.
    pub fn none() -> Rules {
        Rules {
            rules: Vec::new(),
            default: Policy::Authenticated,
            regexes: RegexSet::empty(),
        }
    }

    /// Whether there is anything to decide beyond "needs a session".
    pub fn is_trivial(&self) -> bool {
        self.rules.is_empty() && matches!(self.default, Policy::Authenticated)
    }

    /// Compiles the rules; the first invalid one is reported with its
    /// position, key and reason.
    pub fn compile(specs: &[RuleSpec], default: PolicyKind) -> Result<Rules, RuleError> {
        let default = match default {
            PolicyKind::Public => Policy::Public,
            PolicyKind::Authenticated => Policy::Authenticated,
            PolicyKind::Deny => Policy::Deny,
            PolicyKind::Allow => {
                return Err(RuleError {
                    index: 0,
                    key: "default",
                    reason: "the default policy is public, authenticated or deny (write allow rules in access.rules)".into(),
                })
            }
        };
        let mut patterns = Vec::new();
        let rules = specs
            .iter()
            .enumerate()
            .map(|(i, s)| compile_rule(i, s, &mut patterns))
            .collect::<Result<_, _>>()?;
        let regexes = RegexSet::new(&patterns).map_err(|e| RuleError {
            index: 0,
            key: "path_regex",
            reason: format!("the expressions together: {e}"),
        })?;
        Ok(Rules {
            rules,
            default,
            regexes,
        })
    }

    /// The first rule matching `t`, else the default.
    pub fn decide(&self, t: &Target<'_>) -> Decision<'_> {
        let mut hits = RegexHits {
            set: &self.regexes,
            hits: None,
        };
        match self.rules.iter().find(|r| r.matches(t, &mut hits)) {
            Some(rule) => Decision {
                rule: Some(rule),
                policy: &rule.policy,
            },
            None => Decision {
                rule: None,
                policy: &self.default,
            },
        }
    }
}

fn compile_rule(index: usize, s: &RuleSpec, patterns: &mut Vec<String>) -> Result<Rule, RuleError> {
    let err = |key: &'static str, reason: String| RuleError { index, key, reason };
    let label = match &s.name {
        Some(n) => format!("rule {index} ({n})"),
        None => format!("rule {index}"),
    };
    if let Some(n) = &s.name {
        if n.is_empty() || n.chars().any(|c| c.is_control()) || n.len() > 128 {
            return Err(err("name", "1 to 128 printable characters".into()));
        }
    }
    let mut hosts = Vec::new();
    for h in &s.hosts {
        let lower = h.to_ascii_lowercase();
        let (pattern, bare) = match lower.strip_prefix("*.") {
            Some(rest) => (HostPattern::Suffix(format!(".{rest}")), rest.to_owned()),
            None => (HostPattern::Exact(lower.clone()), lower.clone()),
        };
        let ok = !bare.is_empty()
            && bare
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(err(
                "hosts",
                format!("{h:?} is not a host name or *.domain pattern (no port, no scheme)"),
            ));
        }
        hosts.push(pattern);
    }
    for p in &s.paths {
        if !p.starts_with('/') {
            return Err(err("paths", format!("{p:?} does not start with /")));
        }
        match normalize_path(p) {
            Ok(n) if n == *p || n.clone() + "/" == *p => {}
            _ => {
                return Err(err(
                    "paths",
                    format!("{p:?} is not a normalised path (no //, ., .., or %-escapes): requests are matched after normalisation"),
                ))
            }
        }
    }
    let path_regex = match &s.path_regex {
        Some(r) => {
            // Compiled alone first, so an error names its rule.
            Regex::new(r).map_err(|e| err("path_regex", e.to_string()))?;
            patterns.push(r.clone());
            Some(patterns.len() - 1)
        }
        None => None,
    };
    let mut methods = Vec::new();
    for m in &s.methods {
        if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(err("methods", format!("{m:?} is not an HTTP method")));
        }
        methods.push(m.to_ascii_uppercase());
    }
    let mut networks = Vec::new();
    for n in &s.networks {
        let net = n
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                err(
                    "networks",
                    format!("{n:?} is not an address or CIDR network"),
                )
            })?;
        networks.push(net.trunc());
    }
    let subjects_given =
        !(s.users.is_empty() && s.groups.is_empty() && s.realms.is_empty() && s.sources.is_empty());
    // Names are compared as written, so one a session could never carry
    // (a comma, a space at an end) would be a rule that never matches.
    let checked = |key: &'static str, list: &[String]| -> Result<Vec<String>, RuleError> {
        for v in list {
            check_group(v).map_err(|e: NameError| err(key, format!("{v:?}: {e}")))?;
        }
        Ok(list.to_vec())
    };
    let policy = match s.policy {
        PolicyKind::Allow => {
            if !subjects_given {
                return Err(err(
                    "policy",
                    "allow needs users, groups, realms or sources (use authenticated for any session)"
                        .into(),
                ));
            }
            let mut sources = Vec::new();
            for src in checked("sources", &s.sources)? {
                match src.to_ascii_lowercase().as_str() {
                    "kerberos" => sources.extend(["negotiate".to_owned(), "auth/krb5".to_owned()]),
                    other => sources.push(other.to_owned()),
                }
            }
            Policy::Allow {
                who: Subjects {
                    users: checked("users", &s.users)?,
                    groups: checked("groups", &s.groups)?,
                },
                realms: s.realms.clone(),
                sources,
            }
        }
        other if subjects_given => {
            return Err(err(
                "policy",
                format!("users, groups, realms and sources apply to allow rules only, not {other}"),
            ))
        }
        PolicyKind::Public => Policy::Public,
        PolicyKind::Authenticated => Policy::Authenticated,
        PolicyKind::Deny => Policy::Deny,
    };
    let mut conditions = Vec::new();
    if !s.hosts.is_empty() {
        conditions.push(format!("host {}", s.hosts.join(" | ")));
    }
    if !s.paths.is_empty() {
        conditions.push(format!("path {}", s.paths.join(" | ")));
    }
    if let Some(r) = &s.path_regex {
        conditions.push(format!("path ~ {r}"));
    }
    if !methods.is_empty() {
        conditions.push(format!("method {}", methods.join(" | ")));
    }
    if !s.networks.is_empty() {
        conditions.push(format!("client in {}", s.networks.join(" | ")));
    }
    Ok(Rule {
        name: s.name.clone().unwrap_or_else(|| format!("rule {index}")),
        label,
        hosts,
        paths: s.paths.clone(),
        path_regex,
        methods,
        networks,
        policy,
        conditions: if conditions.is_empty() {
            "every request".into()
        } else {
            conditions.join(", ")
        },
    })
}

/// Why a request path cannot be matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with /")]
    NotAbsolute,
    #[error("the path has an invalid %-escape")]
    BadEscape,
    #[error("the path decodes to bytes that are not UTF-8 text, or to a control character")]
    NotText,
    #[error("the path climbs above the root (..)")]
    AboveRoot,
    #[error("the path has a segment some servers read as `..` or `.` (`..;`, a backslash)")]
    Ambiguous,
}

/// The path as the proxy routes it: query and fragment cut, %-escapes
/// decoded, `//` merged, `.` and `..` resolved — what nginx does before
/// matching `location`s. Rules see this form, so `/public/../admin` and
/// `/%61dmin` are `/admin` to them as to the proxy; a rule matched on the
/// raw text could be walked around.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let raw = raw.split(['?', '#']).next().unwrap_or("");
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadEscape)?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEscape)?;
            decoded.push(b);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(decoded).map_err(|_| PathError::NotText)?;
    if text.chars().any(char::is_control) {
        return Err(PathError::NotText);
    }
    // nginx routes `/public/..;/admin` under /public, while Tomcat and
    // friends read `..;` as `..` (and Windows servers `\` as `/`): a rule
    // cannot know which the back end does, so such paths are refused.
    if text.contains('\\')
        || text
            .split('/')
            .any(|seg| seg.starts_with(".;") || seg.starts_with("..;"))
    {
        return Err(PathError::Ambiguous);
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in text.split('/').skip(1) {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(text.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    // A trailing slash (or a last `.`/`..`) names a directory; keep it.
    let last = text.rsplit('/').next().unwrap_or("");
    if out.is_empty() || last.is_empty() || last == "." || last == ".." {
        out.push('/');
    }
    Ok(out)
}

/// A host as rules compare it: lower-case, without port or trailing dot;
/// `None` when it is not a host name or address with an optional numeric
/// port (`app.example.com:?`, `a b`, `user@host` are not).
pub fn normalize_host(authority: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            a => Some(a.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match authority.split_once(':') {
            Some((h, port)) => (h, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && (authority.starts_with('[')
            || host.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }));
    ok.then(|| host.to_ascii_lowercase())
}

/// Why the URL a proxy reported cannot be matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an http(s) URL or a path")]
    NotAUrl,
    #[error("its host is not a host name or address with a numeric port")]
    BadHost,
    #[error(transparent)]
    Path(#[from] PathError),
}

/// The URL a proxy reports (`X-Original-URL`, or what `check-access` is
/// given): `(host, normalised path)`. An absolute `http(s)://host[:port]/…`
/// URL gives its host; a bare path (`/x?y`) none. Anything else —
/// userinfo, an empty or odd port, a path that does not start with `/` —
/// is refused: a lenient reading is one a request could be shaped to
/// slip past (`Host: app:?` made `/admin` read as `/`).
pub fn split_url(url: &str) -> Result<(Option<String>, String), UrlError> {
    if url.starts_with('/') {
        return Ok((None, normalize_path(url)?));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(UrlError::NotAUrl)?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.contains(['?', '#', '@']) {
        return Err(UrlError::BadHost);
    }
    let host = normalize_host(authority).ok_or(UrlError::BadHost)?;
    let path = if target.is_empty() {
        "/".to_owned()
    } else {
        normalize_path(target)?
    };
    Ok((Some(host), path))
}

#[cfg(test)]
mod tests;
