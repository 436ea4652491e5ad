//! Configuration: built-in defaults, then a TOML file, then `SESSIOND_*`
//! environment variables (`SESSIOND_SERVER__BIND=…`), then command-line flags.
//!
//! Every value is checked at start-up; an invalid one stops the server with
//! the file, the key and the reason.

mod access;
mod browser;
mod kerberos;
mod ldap;
pub mod secret;
mod tickets;

pub use access::AccessConfig;
pub use browser::{BrowserConfig, CookieConfig, SameSite};
pub use kerberos::{DelegationConfig, GroupSource, KerberosConfig, PrincipalMapping};
pub use ldap::LdapConfig;
pub use tickets::TicketConfig;

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sessiond_core::duration::format_duration;
use sessiond_core::{parse_duration, RealmPolicy};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A cookie `Domain` must be a host name (a leading dot is tolerated):
/// anything else would make every `Set-Cookie` of the realm unwritable, found
/// only when a request needs one.
pub(super) fn check_cookie_domain(key: &str, domain: &str) -> anyhow::Result<()> {
    let host = domain.strip_prefix('.').unwrap_or(domain);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !ok {
        bail!("{key}: {domain:?} is not a domain name (letters, digits, - and . only)");
    }
    Ok(())
}

/// A duration written in FreeIPA's syntax (`1h30m`) or as whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => sessiond_core::duration::duration_from_secs(s)
                .map(Span)
                .map_err(serde::de::Error::custom),
            Raw::Text(t) => parse_duration(&t)
                .map(Span)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    /// Policy for every realm not listed under `realms`.
    pub realm_defaults: RealmConfig,
    /// Per-realm overrides, keyed by the exact (case-sensitive) realm text.
    pub realms: BTreeMap<String, RealmConfig>,
    pub browser: BrowserConfig,
    pub kerberos: KerberosConfig,
    pub ldap: LdapConfig,
    /// Access rules for forward auth (`GET /auth`).
    pub access: AccessConfig,
    /// Where audit events go.
    pub audit: AuditConfig,
}

/// `[audit]`: one JSON event per security-relevant action.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub sink: AuditSink,
    /// The file of `sink = "file"` (append-only, mode 0600, reopened on SIGHUP).
    pub path: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            sink: AuditSink::Stderr,
            path: None,
        }
    }
}

/// Where audit events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditSink {
    /// Standard error, beside the log (a line of JSON each).
    Stderr,
    /// An append-only file (`audit.path`).
    File,
    /// The local syslog (`/dev/log`), facility authpriv.
    Syslog,
    /// Nowhere (counters only).
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// PEM file with the certificate chain (and possibly the key): serve HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key, if not in `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Longest time one request may take, including reading its body.
    pub request_timeout: Span,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Refuse `/auth_token` and `/pam_token` requests whose password is in the URL.
    pub refuse_query_credentials: bool,
    /// File holding the admin credential that unlocks `/stored_token` (first
    /// line). `SESSIOND_ADMIN_TOKEN` may give it instead. Unset = no admin API.
    pub admin_token_file: Option<PathBuf>,
    /// Where the running server writes its process id (removed when it
    /// stops), for `sessiond reload`. Unset: no PID file (under systemd,
    /// `systemctl reload sessiond`).
    pub pid_file: Option<PathBuf>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// names the real client, for login limits and session records.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    Memory,
    File,
    Redis,
    RedisCluster,
    RedisSentinel,
    Memcached,
    Postgres,
}

impl StoreKind {
    pub const NAMES: &'static str =
        "memory, file, redis, redis-cluster, redis-sentinel, memcached, postgres";

    pub fn parse(name: &str) -> Option<StoreKind> {
        Some(match name {
            "memory" => StoreKind::Memory,
            "file" => StoreKind::File,
            "redis" => StoreKind::Redis,
            "redis-cluster" => StoreKind::RedisCluster,
            "redis-sentinel" => StoreKind::RedisSentinel,
            "memcached" => StoreKind::Memcached,
            "postgres" | "postgresql" => StoreKind::Postgres,
            _ => return None,
        })
    }

    /// Whether the store lives in another service, reached through `store.url`.
    pub fn is_shared(self) -> bool {
        !matches!(self, StoreKind::Memory | StoreKind::File)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Data directory of the `file` store.
    pub path: PathBuf,
    /// Where a shared store lives: `redis://…` or `rediss://…` (redis); node
    /// URLs, comma-separated (redis-cluster); sentinel URLs, comma-separated
    /// (redis-sentinel, with `sentinel_master`); `host:port`, `memcache://…` or
    /// `unix:///path`, comma-separated (memcached); `postgres://…` (postgres).
    pub url: Option<String>,
    /// A file holding `url` (first line), for addresses with a password:
    /// kept out of the configuration file, the environment of every process
    /// and, unlike `--store-url`, the process list. (`SESSIOND_STORE__URL`
    /// is the environment's way.)
    pub url_file: Option<PathBuf>,
    /// PEM file of the CA(s) that signed a `rediss://` server's certificate,
    /// when it is not one the system trusts.
    pub tls_ca_file: Option<PathBuf>,
    /// Namespace in a shared store: the key prefix (redis, memcached) or the
    /// schema (postgres). Deployments sharing one server use different ones.
    pub prefix: String,
    /// The master name the sentinels monitor (redis-sentinel).
    pub sentinel_master: Option<String>,
    /// Replicas that must acknowledge a write that must survive a failover
    /// (revocations, supersede marks, ticket not-before marks, key slots)
    /// before it is answered (Redis `WAIT`). Default: 1 with redis-sentinel,
    /// 0 (off) with redis; not available on redis-cluster.
    pub wait_replicas: Option<u32>,
    /// How long such a write waits for its acknowledgements before it is
    /// answered as a store failure (503).
    pub wait_timeout: Span,
    /// How long superseded tokens keep answering SUPERCEDED after the user's latest login.
    pub superseded_retention: Span,
    /// Most frequent refresh of a session's last-access time on validation.
    pub touch_interval: Span,
    /// How often expired and superseded sessions are purged.
    pub sweep_interval: Span,
    /// `[store.cache]`: checks answered from this process's memory in front
    /// of a shared store, kept correct by the store's invalidations.
    pub cache: StoreCacheConfig,
}

/// The near cache (docs/stores.md, "Near cache"; decision 0022).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreCacheConfig {
    /// Off by default: with it on, a revocation made on another instance
    /// takes effect here after the invalidation arrives (about a
    /// millisecond on Redis and PostgreSQL), or, on memcached, after up to
    /// `max_age`.
    pub enabled: bool,
    /// Sessions kept at most (~500 bytes each).
    pub capacity: usize,
    /// The oldest answer the cache gives. On memcached, which has no
    /// invalidations, this is how long another instance's revocation may
    /// go unseen here (default 1 s); on Redis and PostgreSQL only a safety
    /// net (default 30 s).
    pub max_age: Option<Span>,
}

impl Default for StoreCacheConfig {
    fn default() -> Self {
        StoreCacheConfig {
            enabled: false,
            capacity: 100_000,
            max_age: None,
        }
    }
}

impl StoreCacheConfig {
    /// `max_age` as set, or the default for `kind`.
    pub fn max_age_for(&self, kind: StoreKind) -> Duration {
        self.max_age.map_or(
            if kind == StoreKind::Memcached {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(30)
            },
            |s| s.0,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Modules clients may select with `module=`.
    pub modules: Vec<String>,
    /// Module used when a request names none (SessionKeyServer's `-default`).
    pub default_module: String,
    /// The `file` module's password file.
    pub password_file: PathBuf,
    /// PAM service name (SessionKeyServer's `-pam-app`).
    pub pam_service: String,
    /// Use the request's realm text as the PAM service, as SessionKeyServer did
    /// without `-pam-app`. Lets clients choose the PAM stack: off by default,
    /// and only with `pam_services` listing the services realms may name.
    pub pam_service_from_realm: bool,
    /// The PAM services a realm may name when `pam_service_from_realm` is on
    /// (required then: `su`, `sudo` or `login` must never be a client's pick).
    pub pam_services: Vec<String>,
    /// Failed logins for one user name within `failure_window` before it is blocked (0 = off).
    pub max_failures_per_user: u32,
    /// Failed logins from one client address within `failure_window` before it is blocked (0 = off).
    pub max_failures_per_address: u32,
    pub failure_window: Span,
    /// Password checks running at once; more wait their turn (within the
    /// request timeout). Each argon2id check holds ~19 MiB, so an unbounded
    /// burst of logins could exhaust memory.
    pub max_concurrent_checks: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RealmConfig {
    pub idle_timeout: Option<Span>,
    pub max_lifetime: Option<Span>,
    pub credential_skew: Span,
    pub supersede: bool,
    /// Session cookie attributes for this realm (else `[browser.cookie]`).
    pub cookie: Option<CookieConfig>,
    /// Accept and offer Negotiate in this realm (else `kerberos.negotiate`).
    pub negotiate: Option<bool>,
    /// Principal → user name in this realm (else `kerberos.principal_mapping`).
    pub principal_mapping: Option<PrincipalMapping>,
    /// Stateless signed tickets issued and accepted in this realm.
    pub ticket: Option<TicketConfig>,
    /// Tickets for back ends on the user's behalf (constrained delegation).
    pub delegation: Option<DelegationConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:4431".into(),
            tls_cert: None,
            tls_key: None,
            request_timeout: Span(Duration::from_secs(30)),
            max_body_bytes: 64 * 1024,
            refuse_query_credentials: false,
            admin_token_file: None,
            pid_file: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Memory,
            path: PathBuf::from("sessiond-data"),
            url: None,
            url_file: None,
            tls_ca_file: None,
            prefix: "sessiond".into(),
            sentinel_master: None,
            wait_replicas: None,
            wait_timeout: Span(Duration::from_secs(1)),
            superseded_retention: Span(Duration::from_secs(24 * 3600)),
            touch_interval: Span(Duration::from_secs(60)),
            sweep_interval: Span(Duration::from_secs(300)),
            cache: StoreCacheConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        let mut modules = vec!["file".to_owned()];
        if cfg!(feature = "pam") {
            modules.push("pam".to_owned());
        }
        AuthConfig {
            modules,
            default_module: "file".into(),
            password_file: PathBuf::from("sessiond-data/passwd"),
            pam_service: "sessiond".into(),
            pam_service_from_realm: false,
            pam_services: Vec::new(),
            max_failures_per_user: 5,
            max_failures_per_address: 50,
            failure_window: Span(Duration::from_secs(300)),
            max_concurrent_checks: 16,
        }
    }
}

impl Default for RealmConfig {
    fn default() -> Self {
        let p = RealmPolicy::default();
        RealmConfig {
            idle_timeout: None,
            max_lifetime: None,
            credential_skew: Span(p.credential_skew),
            supersede: p.supersede,
            cookie: None,
            negotiate: None,
            principal_mapping: None,
            ticket: None,
            delegation: None,
        }
    }
}

/// The session policy of every realm: `[realms.X]`, the browser realm's
/// own defaults, `[realm_defaults]` for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Policies {
    realms: BTreeMap<String, RealmPolicy>,
    browser_realm: String,
    browser: RealmPolicy,
    default: RealmPolicy,
}

impl Policies {
    /// The policy new sessions of `realm` get.
    pub fn get(&self, realm: &str) -> RealmPolicy {
        match self.realms.get(realm) {
            Some(p) => p.clone(),
            None if realm == self.browser_realm => self.browser.clone(),
            None => self.default.clone(),
        }
    }
}

impl RealmConfig {
    pub fn policy(&self) -> RealmPolicy {
        RealmPolicy {
            idle_timeout: self.idle_timeout.map(|s| s.0),
            max_lifetime: self.max_lifetime.map(|s| s.0),
            credential_skew: self.credential_skew.0,
            supersede: self.supersede,
        }
    }
}

/// `SESSIOND_*` variables that are not configuration keys (`SESSIOND_TEST_*`
/// are the test suite's own and ignored too).
const NON_CONFIG_ENV: &[&str] = &[
    "config",
    "admin_token",
    "log",
    "log_format",
    "credential_keys",
    "credential_readers",
    "ldap_bind_password",
];

impl Config {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("SESSIOND_")
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    !NON_CONFIG_ENV.contains(&k.as_str()) && !k.starts_with("test_")
                })
                .split("__"),
        );
        let config: Config = figment.extract().map_err(describe_figment_error)?;
        Ok(config)
    }

    /// Reads `store.url_file` into `store.url`.
    pub fn resolve_store_url(&mut self) -> anyhow::Result<()> {
        let Some(path) = &self.store.url_file else {
            return Ok(());
        };
        if self.store.url.is_some() {
            bail!("store.url_file: set store.url or store.url_file, not both");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("store.url_file = {}", path.display()))?;
        let url = text.lines().next().unwrap_or("").trim();
        if url.is_empty() {
            bail!("store.url_file = {}: the file is empty", path.display());
        }
        self.store.url = Some(url.to_owned());
        Ok(())
    }

    /// The configuration as `check-config` prints it: store addresses
    /// without their passwords.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.store.url = match c.store.url_file {
            // Read from the file: printed as the file, so the output loads again.
            Some(_) => None,
            None => c.store.url.as_deref().map(sessiond_store::redact_url),
        };
        c
    }

    /// Checks what types alone cannot; called after command-line overrides.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.bind_addr()?;
        self.trusted_proxies()?;
        if self.auth.modules.is_empty() {
            bail!("auth.modules: at least one authentication module must be enabled");
        }
        for m in &self.auth.modules {
            match m.to_ascii_lowercase().as_str() {
                "file" => {}
                "pam" if cfg!(feature = "pam") => {}
                "krb5" if cfg!(feature = "kerberos") => {}
                "ldap" => self.ldap.validate()?,
                "krb5" => {
                    bail!(
                        "auth.modules: \"krb5\" needs a sessiond built with `--features kerberos`"
                    )
                }
                "pam" => {
                    bail!("auth.modules: \"pam\" needs a sessiond built with `--features pam`")
                }
                other => {
                    bail!("auth.modules: unknown module {other:?} (known: file, pam, krb5, ldap)")
                }
            }
        }
        if self.auth.pam_service_from_realm {
            if self.auth.pam_services.is_empty() {
                bail!(
                    "auth.pam_service_from_realm = true: list the PAM services realms may name in \
                     auth.pam_services (an open choice lets a client pick `su`, which lets anyone \
                     in as anyone when sessiond runs as root)"
                );
            }
            if let Some(bad) = self.auth.pam_services.iter().find(|s| {
                s.is_empty()
                    || s.contains('/')
                    || s.chars().any(|c| c.is_control() || c.is_whitespace())
            }) {
                bail!("auth.pam_services: {bad:?} is not a PAM service name");
            }
        }
        if !self.module_enabled(&self.auth.default_module) {
            bail!(
                "auth.default_module: {:?} is not one of the enabled modules {:?}",
                self.auth.default_module,
                self.auth.modules
            );
        }
        if self.store.kind.is_shared() && self.store.url.as_deref().unwrap_or("").is_empty() {
            bail!(
                "store.url: the {:?} store needs the address of its server",
                self.store.kind
            );
        }
        match (self.store.kind, &self.store.sentinel_master) {
            (StoreKind::RedisSentinel, None) => {
                bail!("store.sentinel_master: the redis-sentinel store needs the master name the sentinels monitor")
            }
            (StoreKind::RedisSentinel, Some(_)) | (_, None) => {}
            (kind, Some(_)) => {
                bail!("store.sentinel_master: only for the redis-sentinel store, not {kind:?}")
            }
        }
        if self.store.wait_replicas.unwrap_or(0) > 0
            && !matches!(self.store.kind, StoreKind::Redis | StoreKind::RedisSentinel)
        {
            bail!(
                "store.wait_replicas: only for the redis and redis-sentinel stores, not {:?}",
                self.store.kind
            );
        }
        if self.store.prefix.is_empty() {
            bail!("store.prefix: must not be empty");
        }
        let cache = &self.store.cache;
        if cache.enabled {
            match self.store.kind {
                StoreKind::Redis
                | StoreKind::RedisCluster
                | StoreKind::RedisSentinel
                | StoreKind::Memcached
                | StoreKind::Postgres => {}
                StoreKind::Memory | StoreKind::File => bail!(
                    "store.cache: the {:?} store answers from this process already; the near cache is for shared stores",
                    self.store.kind
                ),
            }
            if cache.capacity == 0 {
                bail!("store.cache.capacity: at least 1");
            }
            let age = cache.max_age_for(self.store.kind);
            if age.is_zero() || age > Duration::from_secs(3600) {
                bail!("store.cache.max_age: more than 0 and at most 1h");
            }
        }
        let loopback = self.bind_addr()?.ip().is_loopback();
        self.browser.validate(loopback)?;
        for (name, realm) in &self.realms {
            if let Some(c) = &realm.cookie {
                c.validate(&format!("realms.{name}.cookie"), loopback)?;
            }
        }
        for (name, realm) in &self.realms {
            if let Some(t) = &realm.ticket {
                t.validate(&format!("realms.{name}.ticket"), loopback)?;
            }
            if let Some(d) = &realm.delegation {
                d.validate(&format!("realms.{name}.delegation"), &self.kerberos.service)?;
                if self.kerberos.keytab.is_none() {
                    bail!("realms.{name}.delegation: set kerberos.keytab (sessiond's own tickets come from its key)");
                }
            }
        }
        self.access.compile()?;
        if self.audit.sink == AuditSink::File && self.audit.path.is_none() {
            bail!("audit.sink = \"file\": set audit.path");
        }
        for (user, groups) in &self.kerberos.groups {
            for g in groups {
                sessiond_core::names::check_group(g)
                    .map_err(|e| anyhow::anyhow!("kerberos.groups.{user:?}: {g:?}: {e}"))?;
            }
        }
        if self.kerberos.groups_from == Some(GroupSource::Ldap) {
            self.ldap
                .validate()
                .context("kerberos.groups_from = \"ldap\" reads the [ldap] settings")?;
            if self.ldap.bind_dn.is_none() || self.ldap.search_base.is_none() {
                bail!("kerberos.groups_from = \"ldap\": needs the LDAP service account (ldap.bind_dn, ldap.search_base) to find users who did not log in through LDAP");
            }
            if self.ldap.group_settings().is_none() {
                bail!("kerberos.groups_from = \"ldap\": set ldap.group_attribute or ldap.group_search_base");
            }
        }
        if self.kerberos.negotiate && !cfg!(feature = "kerberos") {
            bail!("kerberos.negotiate: needs a sessiond built with `--features kerberos`");
        }
        if let Some((name, _)) = self
            .realms
            .iter()
            .find(|(_, r)| r.negotiate == Some(true) && !cfg!(feature = "kerberos"))
        {
            bail!("realms.{name}.negotiate: needs a sessiond built with `--features kerberos`");
        }
        if self.server.tls_key.is_some() && self.server.tls_cert.is_none() {
            bail!("server.tls_key: set server.tls_cert (-tls) too");
        }
        for (key, span) in [
            ("store.sweep_interval", self.store.sweep_interval),
            ("server.request_timeout", self.server.request_timeout),
            ("auth.failure_window", self.auth.failure_window),
        ] {
            if span.0.is_zero() {
                bail!("{key}: must be more than zero");
            }
        }
        if self.auth.max_concurrent_checks == 0 {
            bail!("auth.max_concurrent_checks: must be at least 1");
        }
        if self.server.max_body_bytes == 0 {
            bail!("server.max_body_bytes: must be more than 0");
        }
        if self.realm_defaults.ticket.is_some() {
            bail!("realm_defaults.ticket: tickets are configured per realm, under [realms.<name>.ticket]");
        }
        for (name, realm) in std::iter::once(("realm_defaults".to_owned(), &self.realm_defaults))
            .chain(
                self.realms
                    .iter()
                    .map(|(k, v)| (format!("realms.{k:?}"), v)),
            )
        {
            for (key, span) in [
                ("idle_timeout", realm.idle_timeout),
                ("max_lifetime", realm.max_lifetime),
            ] {
                if span.is_some_and(|s| s.0.as_secs() == 0) {
                    bail!("{name}.{key}: must be at least one second (omit it for no limit)");
                }
            }
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        self.server
            .bind
            .parse()
            .with_context(|| format!("server.bind: {:?} is not an address:port", self.server.bind))
    }

    /// `server.trusted_proxies`, parsed: a plain address means just that address.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.server
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "server.trusted_proxies: {p:?} is not an IP address or CIDR range"
                        )
                    })
            })
            .collect()
    }

    pub fn module_enabled(&self, name: &str) -> bool {
        self.auth
            .modules
            .iter()
            .any(|m| m.eq_ignore_ascii_case(name))
    }

    /// The policy for `realm`: its own section, or the defaults.
    pub fn realm_policy(&self, realm: &str) -> RealmPolicy {
        self.policies().get(realm)
    }

    /// Every realm's session policy, for the running server to hold (and
    /// a reload to replace).
    pub fn policies(&self) -> Policies {
        Policies {
            realms: self
                .realms
                .iter()
                .map(|(name, r)| (name.clone(), r.policy()))
                .collect(),
            browser_realm: self.browser.realm.clone(),
            // The browser realm without a table of its own: sessions that end.
            browser: RealmPolicy {
                idle_timeout: Some(browser::BROWSER_IDLE_TIMEOUT),
                max_lifetime: Some(browser::BROWSER_MAX_LIFETIME),
                supersede: false,
                ..self.realm_defaults.policy()
            },
            default: self.realm_defaults.policy(),
        }
    }

    /// Whether `realm` accepts and offers `Authorization: Negotiate`.
    pub fn negotiate_in(&self, realm: &str) -> bool {
        self.realms
            .get(realm)
            .and_then(|r| r.negotiate)
            .unwrap_or(self.kerberos.negotiate)
    }

    /// `[realms.X.delegation]` of `realm`, if any.
    pub fn delegation_in(&self, realm: &str) -> Option<&DelegationConfig> {
        self.realms.get(realm).and_then(|r| r.delegation.as_ref())
    }

    /// Whether any realm lists delegation targets: sessiond then needs
    /// tickets of its own, and Negotiate accepts with a credential that
    /// also initiates.
    pub fn delegates(&self) -> bool {
        self.realms
            .values()
            .any(|r| r.delegation.as_ref().is_some_and(|d| !d.targets.is_empty()))
    }

    /// How principals become user names in `realm`.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    pub fn principal_mapping_in(&self, realm: &str) -> PrincipalMapping {
        self.realms
            .get(realm)
            .and_then(|r| r.principal_mapping)
            .unwrap_or(self.kerberos.principal_mapping)
    }

    /// The session cookie's attributes in `realm`.
    pub fn cookie(&self, realm: &str) -> &CookieConfig {
        self.realms
            .get(realm)
            .and_then(|r| r.cookie.as_ref())
            .unwrap_or(&self.browser.cookie)
    }
}

/// Names of the cookies sessiond sets: letters, digits, `-` and `_`.
pub fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
}

/// Reports each error as `source: key: reason`, where the source is the file
/// or the environment variable the bad value came from.
fn describe_figment_error(err: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(figment::Source::File(path)) => path.display().to_string(),
                    _ => m.name.to_string(),
                })
                .unwrap_or_else(|| "configuration".to_owned());
            format!("{source}: {}: {}", e.path.join("."), e.kind)
        })
        .collect();
    anyhow::anyhow!("invalid configuration: {}", lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.toml");
        std::fs::write(&path, toml).unwrap();
        let c = Config::load(Some(&path))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.bind_addr().unwrap().to_string(), "127.0.0.1:4431");
        assert_eq!(c.realm_policy("any"), RealmPolicy::default());
    }

    #[test]
    fn durations_and_realms() {
        let c = load_str(
            r#"
            [realm_defaults]
            idle_timeout = "30 minutes"
            [realms."web app"]
            idle_timeout = "1h30m"
            max_lifetime = 86400
            supersede = false
            "#,
        )
        .unwrap();
        let p = c.realm_policy("web app");
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(5400)));
        assert_eq!(p.max_lifetime, Some(Duration::from_secs(86400)));
        assert!(!p.supersede);
        assert_eq!(
            c.realm_policy("other").idle_timeout,
            Some(Duration::from_secs(1800))
        );
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let err = load_str("[realm_defaults]\nidle_timeout = \"5 fortnights\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_timeout"), "{err}");
        assert!(err.contains("fortnights"), "{err}");
        assert!(err.contains("sessiond.toml"), "{err}");
        let err = load_str("[server]\nbnid = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnid"), "{err}");
        let err = load_str("[server]\nbind = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.bind"), "{err}");
        let err = load_str("[auth]\ndefault_module = \"ldap\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.default_module"), "{err}");
        let err = load_str("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.trusted_proxies: \"proxy\""), "{err}");
        let err = load_str("[store]\nsweep_interval = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("store.sweep_interval: must be more than zero"),
            "{err}"
        );
        let err = load_str("[realms.x]\nidle_timeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("realms.\"x\".idle_timeout"), "{err}");
    }
}
