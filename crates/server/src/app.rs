//! The running server's shared state, built once from the configuration.

use crate::config::{secret, Config, StoreKind};
use crate::throttle::LoginGuard;
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use sessiond_auth::{Authenticator, PasswordFileAuthenticator};
use sessiond_core::token::secrets_equal;
use sessiond_store::{
    FileStore, MemcachedStore, MemoryStore, NearCacheConfig, PostgresStore, RedisStore,
    RedisTarget, ReplicaAcks, Store, StoreOptions,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The part of the running configuration a reload replaces at once: built
/// whole from a validated configuration, swapped in one step, so a request
/// sees either the old set or the new one, never a mix.
pub struct Live {
    /// Ticket settings of each realm that has `[realms.X.ticket]`.
    pub tickets: HashMap<String, Arc<crate::tickets::TicketRealm>>,
    /// `[access]`, compiled.
    pub access: sessiond_core::access::Rules,
    /// The admin credential, if one is configured.
    admin_token: Option<String>,
    credential_readers: Vec<String>,
    /// Enabled authenticators by lower-case module name.
    modules: HashMap<String, Arc<dyn Authenticator>>,
    /// Seals the credentials sessions keep (delegated Kerberos tickets).
    keyring: Arc<sessiond_core::keyring::Keyring>,
    /// No key file: the key was made at start and lives only in memory.
    keyring_is_ephemeral: bool,
    /// Where Kerberos logins get their groups (`kerberos.groups`, and LDAP
    /// with `kerberos.groups_from`).
    kerberos_groups: Vec<Arc<dyn sessiond_auth::GroupLookup>>,
    /// The policy each realm's new sessions get.
    policies: crate::config::Policies,
}

impl Live {
    /// Builds everything a reload may change; any failure leaves the
    /// running set untouched. `previous` is the set in force, whose
    /// throwaway credential key a reload keeps: without a configured key
    /// file, replacing it would make every sealed credential unreadable.
    pub fn build(config: &Config, previous: Option<&Live>) -> anyhow::Result<Live> {
        let loopback = config.bind_addr()?.ip().is_loopback();
        let mut tickets = HashMap::new();
        for (realm, r) in &config.realms {
            if let Some(t) = &r.ticket {
                let tr = crate::tickets::TicketRealm::load(realm, t, loopback)?;
                tickets.insert(realm.clone(), Arc::new(tr));
            }
        }
        let keys = load_keyring(config)?;
        let keyring_is_ephemeral = keys.is_none();
        let keyring = match (keys, previous) {
            (Some(keys), _) => Arc::new(keys),
            (None, Some(previous)) if previous.keyring_is_ephemeral => previous.keyring.clone(),
            (None, _) => Arc::new(sessiond_core::keyring::Keyring::ephemeral()),
        };
        let mut kerberos_groups: Vec<Arc<dyn sessiond_auth::GroupLookup>> = Vec::new();
        if !config.kerberos.groups.is_empty() {
            kerberos_groups.push(Arc::new(sessiond_auth::StaticGroups(
                config.kerberos.groups.clone().into_iter().collect(),
            )));
        }
        if config.kerberos.groups_from == Some(crate::config::GroupSource::Ldap) {
            kerberos_groups.push(Arc::new(ldap_module(config)?));
        }
        Ok(Live {
            tickets,
            access: config.access.compile()?,
            admin_token: load_admin_token(config)?,
            credential_readers: load_credential_readers(config)?,
            modules: match previous {
                None => build_modules(config)?,
                // `auth` takes a restart (the login limits, the password
                // file's watcher), so a reload keeps the modules it has
                // and renews only the LDAP one, whose settings it applies.
                Some(previous) => {
                    let mut modules = previous.modules.clone();
                    if modules.contains_key("ldap") {
                        modules.insert("ldap".into(), Arc::new(ldap_module(config)?));
                    }
                    modules
                }
            },
            keyring_is_ephemeral,
            keyring,
            kerberos_groups,
            policies: config.policies(),
        })
    }
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub guard: Arc<LoginGuard>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What a reload (SIGHUP) replaces as a whole (see [`Live`]).
    live: arc_swap::ArcSwap<Live>,
    store_description: String,
    /// Unfinished multi-leg Negotiate exchanges, per connection.
    #[cfg(feature = "kerberos")]
    pub negotiate: sessiond_auth::kerberos::NegotiateAcceptor,
    /// Back ends' tickets from protocol transition, per session and target.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    pub delegated_tickets: crate::delegation::TicketCache,
    pub metrics: Option<PrometheusHandle>,
    /// Kerberos realms whose principals `strip-realm` maps to bare names.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    pub krb_local_realms: Vec<String>,

    /// Where audit events go.
    pub audit: crate::audit::Audit,
}

impl App {
    pub async fn build(config: Config, metrics: Option<PrometheusHandle>) -> anyhow::Result<App> {
        let (store, store_description) = open_store(&config.store).await?;
        if store.users.is_none() {
            // Known now, not per request: these routes answer 501 for the
            // life of the process (http::extract::Users).
            tracing::warn!(
                store = store.kind(),
                "this store cannot list a user's sessions: GET/DELETE /v1/users/{{realm}}/{{user}}/sessions, \
                 'my sessions' and 'end other sessions' answer 501; ending one session, logout and \
                 DELETE /v1/users/{{user}}/sessions work"
            );
        }
        let guard = Arc::new(LoginGuard::new(&config.auth, store.failures.clone()));
        let trusted_proxies = config.trusted_proxies()?;
        let live = Live::build(&config, None)?;
        let krb_local_realms = config.kerberos.effective_local_realms();
        let kerberos_used = config.module_enabled("krb5")
            || config.kerberos.negotiate
            || config.realms.values().any(|r| r.negotiate == Some(true));
        if kerberos_used && krb_local_realms.is_empty() {
            tracing::warn!(
                "kerberos.local_realms is empty and krb5.conf names no default_realm: \
                 strip-realm strips no realm, so users are named alice@REALM; \
                 set kerberos.local_realms"
            );
        }
        let audit = crate::audit::Audit::open(&config.audit)?;
        Ok(App {
            live: arc_swap::ArcSwap::from_pointee(live),
            audit,
            krb_local_realms,
            // With delegation targets somewhere, Negotiate accepts tickets
            // for sessiond's own service only, with a credential that also
            // initiates: each login's ticket is then S4U2Proxy evidence.
            #[cfg(feature = "kerberos")]
            negotiate: if config.delegates() {
                sessiond_auth::kerberos::NegotiateAcceptor::delegating(&config.kerberos.service)
            } else {
                sessiond_auth::kerberos::NegotiateAcceptor::new()
            },
            delegated_tickets: Default::default(),
            store_description,
            trusted_proxies,
            config,
            store,
            guard,
            metrics,
        })
    }

    /// The groups of a Kerberos user (`krb5` module, Negotiate). A source
    /// that cannot answer is logged and gives none: missing groups can only
    /// narrow what rules let through, never widen it.
    pub async fn kerberos_groups(&self, user: &str) -> Vec<String> {
        let mut groups = Vec::new();
        let live = self.live();
        for source in &live.kerberos_groups {
            match source.groups(user).await {
                Ok(g) => groups.extend(g),
                Err(e) => {
                    tracing::error!(user, error = %e, "cannot read the groups of a Kerberos user; going on without them")
                }
            }
        }
        groups
    }

    /// The authenticator of `module` (lower-case), if it is enabled.
    pub fn module(&self, module: &str) -> Option<Arc<dyn Authenticator>> {
        self.live.load().modules.get(module).cloned()
    }

    /// The policy a new session of `realm` gets.
    pub fn realm_policy(&self, realm: &str) -> sessiond_core::RealmPolicy {
        self.live.load().policies.get(realm)
    }

    /// The reloadable part, as it is now (hold it for one request: a
    /// reload swaps in a new one, it does not change this one).
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// The ticket settings of `realm`, if it is a ticket realm.
    pub fn ticket_realm(&self, realm: &str) -> Option<Arc<crate::tickets::TicketRealm>> {
        self.live.load().tickets.get(realm).cloned()
    }

    /// Every ticket realm's name, sorted.
    pub fn ticket_realms(&self) -> Vec<String> {
        let mut names: Vec<String> = self.live.load().tickets.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn has_admin(&self) -> bool {
        self.live.load().admin_token.is_some()
    }

    /// Constant-time check of a presented admin credential.
    pub fn is_admin(&self, presented: &str) -> bool {
        self.live
            .load()
            .admin_token
            .as_deref()
            .is_some_and(|expected| secrets_equal(expected.as_bytes(), presented.as_bytes()))
    }

    /// Whether `presented` is a back end allowed to fetch credentials.
    pub fn is_credential_reader(&self, presented: &str) -> bool {
        // every comparison runs, in constant time each
        self.live
            .load()
            .credential_readers
            .iter()
            .fold(false, |found, r| {
                found | secrets_equal(r.as_bytes(), presented.as_bytes())
            })
    }

    pub fn has_credential_readers(&self) -> bool {
        !self.live.load().credential_readers.is_empty()
    }

    /// Applies a reloaded configuration: everything [`Live`] holds is
    /// rebuilt from `new` and swapped in at once, or — when any of it fails
    /// — nothing is. Returns the settings that differ from the running
    /// ones but take effect only after a restart.
    pub fn reload(&self, new: &Config) -> anyhow::Result<Vec<&'static str>> {
        let live = Live::build(new, Some(&self.live()))?;
        self.live.store(Arc::new(live));
        let old = &self.config;
        let mut restart = Vec::new();
        let differs = |a: String, b: String| a != b;
        for (key, changed) in [
            ("server.bind", old.server.bind != new.server.bind),
            (
                "store",
                differs(format!("{:?}", old.store), format!("{:?}", new.store)),
            ),
            (
                "auth",
                differs(format!("{:?}", old.auth), format!("{:?}", new.auth)),
            ),
            (
                "realms (cookie, negotiate, principal_mapping)",
                differs(realm_rest(old), realm_rest(new)),
            ),
            (
                "browser",
                differs(format!("{:?}", old.browser), format!("{:?}", new.browser)),
            ),
            (
                "kerberos",
                differs(
                    format!("{:?}", old.kerberos.principal_mapping),
                    format!("{:?}", new.kerberos.principal_mapping),
                ) || old.kerberos.negotiate != new.kerberos.negotiate,
            ),
            (
                "audit",
                differs(format!("{:?}", old.audit), format!("{:?}", new.audit)),
            ),
        ] {
            if changed {
                restart.push(key);
            }
        }
        Ok(restart)
    }

    /// Seals login credentials for the session of `user` in `realm` (base64).
    pub fn seal_credentials(&self, realm: &str, user: &str, ccache: &[u8]) -> String {
        use base64::Engine;
        let sealed = self
            .live
            .load()
            .keyring
            .seal(ccache, &credential_binding(realm, user));
        base64::engine::general_purpose::STANDARD.encode(sealed)
    }

    /// Opens what [`App::seal_credentials`] sealed.
    pub fn open_credentials(
        &self,
        realm: &str,
        user: &str,
        sealed: &str,
    ) -> anyhow::Result<Vec<u8>> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .context("stored credentials are not base64")?;
        Ok(self
            .live
            .load()
            .keyring
            .open(&bytes, &credential_binding(realm, user))?)
    }

    /// The store and where it is, without any password.
    pub fn store_description(&self) -> &str {
        &self.store_description
    }
}

/// Opens the configured store. Shared stores are connected to (and, for
/// PostgreSQL, migrated) before the server starts listening, so a wrong
/// address fails at start-up with the key to fix.
pub async fn open_store(config: &crate::config::StoreConfig) -> anyhow::Result<(Store, String)> {
    let near = config.cache.enabled.then(|| {
        (
            NearCacheConfig {
                capacity: config.cache.capacity,
                max_age: config.cache.max_age_for(config.kind),
            },
            format!(
                ", near cache of {} sessions (answers at most {:?} old)",
                config.cache.capacity,
                config.cache.max_age_for(config.kind)
            ),
        )
    });
    let opts = StoreOptions {
        superseded_retention: config.superseded_retention.0,
        touch_interval: config.touch_interval.0,
    };
    let url = config.url.clone().unwrap_or_default();
    let context = || format!("store.url for the {:?} store", config.kind);
    Ok(match config.kind {
        StoreKind::Memory => (
            Arc::new(MemoryStore::new(opts)).into_store(),
            "memory".into(),
        ),
        StoreKind::File => {
            let store = FileStore::open(&config.path, opts)
                .with_context(|| format!("store.path = {}", config.path.display()))?;
            let description = format!("file {}", store.path().display());
            (Arc::new(store).into_store(), description)
        }
        StoreKind::Redis | StoreKind::RedisCluster | StoreKind::RedisSentinel => {
            let list = || url.split(',').map(|n| n.trim().to_owned()).collect();
            let target = match config.kind {
                StoreKind::RedisCluster => RedisTarget::Cluster(list()),
                StoreKind::RedisSentinel => RedisTarget::Sentinel {
                    sentinels: list(),
                    master: config.sentinel_master.clone().unwrap_or_default(),
                },
                _ => RedisTarget::Standalone(url.clone()),
            };
            // With Sentinel a failover is expected, so writes that must
            // survive one wait for a replica unless told otherwise.
            let default_acks = u32::from(config.kind == StoreKind::RedisSentinel);
            let acks = ReplicaAcks {
                replicas: config.wait_replicas.unwrap_or(default_acks),
                timeout: config.wait_timeout.0,
            };
            let ca = match &config.tls_ca_file {
                Some(path) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("store.tls_ca_file = {}", path.display()))?,
                ),
                None => None,
            };
            let store = RedisStore::connect_with_ca(&target, &config.prefix, opts.clone(), ca)
                .await
                .with_context(context)?
                .with_replica_acks(acks)
                .await
                .context("store.wait_replicas")?;
            let mut description = format!("{} prefix {}", store.description(), config.prefix);
            if acks.replicas > 0 {
                description += &format!(", revocations wait for {} replica(s)", acks.replicas);
            }
            let store = Arc::new(store);
            match near {
                Some((cache, note)) => {
                    let (front, inv) = store.clone().into_store().with_near_cache(cache, &opts);
                    store.spawn_invalidations(inv)?;
                    (front, description + &note)
                }
                None => (store.into_store(), description),
            }
        }
        StoreKind::Memcached => {
            let store = MemcachedStore::connect(&url, &config.prefix, opts.clone())
                .await
                .with_context(context)?;
            let description = format!("{} prefix {}", store.description(), config.prefix);
            let store = Arc::new(store).into_store();
            match near {
                // no invalidations: max_age is the whole bound
                Some((cache, note)) => {
                    let (front, inv) = store.with_near_cache(cache, &opts);
                    inv.restored();
                    (front, description + &note)
                }
                None => (store, description),
            }
        }
        StoreKind::Postgres => {
            let store = PostgresStore::connect(&url, &config.prefix, opts.clone())
                .await
                .with_context(context)?;
            let description = store.description().to_owned();
            let store = Arc::new(store);
            match near {
                Some((cache, note)) => {
                    let (front, inv) = store.clone().into_store().with_near_cache(cache, &opts);
                    store.spawn_invalidations(inv);
                    (front, description + &note)
                }
                None => (store.into_store(), description),
            }
        }
    })
}

/// The admin credential from `server.admin_token_file` or `SESSIOND_ADMIN_TOKEN`
/// (never from the command line, where `ps` would show it).
fn load_admin_token(config: &Config) -> anyhow::Result<Option<String>> {
    let token = secret::read(
        config.server.admin_token_file.as_deref(),
        "server.admin_token_file",
        "SESSIOND_ADMIN_TOKEN",
    )?
    .map(|text| secret::first_line(&text));
    match token {
        Some(t) if t.len() < 16 => {
            anyhow::bail!(
                "admin credential: must be at least 16 characters (got {})",
                t.len()
            )
        }
        other => Ok(other),
    }
}

/// A configured principal mapping, in the auth crate's terms.
#[cfg(feature = "kerberos")]
pub fn to_auth_mapping(
    mapping: crate::config::PrincipalMapping,
    local_realms: &[String],
) -> sessiond_auth::kerberos::PrincipalMapping {
    use crate::config::PrincipalMapping as P;
    use sessiond_auth::kerberos::PrincipalMapping as K;
    match mapping {
        P::StripRealm => K::StripRealm(local_realms.to_vec()),
        P::Keep => K::Keep,
    }
}

/// The realm settings a reload does not apply (policies and tickets it
/// does), for comparing two configurations.
fn realm_rest(config: &Config) -> String {
    let rest = |r: &crate::config::RealmConfig| {
        format!("{:?} {:?} {:?}", r.cookie, r.negotiate, r.principal_mapping)
    };
    let realms: Vec<String> = config
        .realms
        .iter()
        .map(|(name, r)| format!("{name}: {}", rest(r)))
        .collect();
    format!("{} {realms:?}", rest(&config.realm_defaults))
}

/// What sealed credentials are bound to: their owner.
fn credential_binding(realm: &str, user: &str) -> Vec<u8> {
    format!("sessiond-credentials-v1\0{realm}\0{user}").into_bytes()
}

/// The configured credential keys; `None` when none are configured.
fn load_keyring(config: &Config) -> anyhow::Result<Option<sessiond_core::keyring::Keyring>> {
    use sessiond_core::keyring::Keyring;
    let Some(text) = secret::read(
        config.kerberos.credential_keys_file.as_deref(),
        "kerberos.credential_keys_file",
        "SESSIOND_CREDENTIAL_KEYS",
    )?
    else {
        return Ok(None);
    };
    Keyring::from_hex_lines(&text)
        .map(Some)
        .context("credential keys (kerberos.credential_keys_file / SESSIOND_CREDENTIAL_KEYS)")
}

/// The enabled authenticators, by lower-case module name.
fn build_modules(config: &Config) -> anyhow::Result<HashMap<String, Arc<dyn Authenticator>>> {
    let mut modules: HashMap<String, Arc<dyn Authenticator>> = HashMap::new();
    for name in &config.auth.modules {
        let key = name.to_ascii_lowercase();
        let module: Arc<dyn Authenticator> = match key.as_str() {
            "file" => Arc::new(
                PasswordFileAuthenticator::open("file", &config.auth.password_file).with_context(
                    || {
                        format!(
                            "auth.password_file = {}",
                            config.auth.password_file.display()
                        )
                    },
                )?,
            ),
            #[cfg(feature = "pam")]
            "pam" => {
                use sessiond_auth::pam::{PamAuthenticator, PamService};
                let service = if config.auth.pam_service_from_realm {
                    PamService::FromRealm {
                        allowed: config.auth.pam_services.clone(),
                    }
                } else {
                    PamService::Fixed(config.auth.pam_service.clone())
                };
                Arc::new(PamAuthenticator::new("pam", service))
            }
            "ldap" => Arc::new(ldap_module(config)?),
            #[cfg(feature = "kerberos")]
            "krb5" => Arc::new(sessiond_auth::kerberos::Krb5PasswordAuthenticator::new(
                "krb5",
                &config.kerberos.service,
                {
                    let config = config.clone();
                    let local = config.kerberos.effective_local_realms();
                    Box::new(move |realm: &str| {
                        to_auth_mapping(config.principal_mapping_in(realm), &local)
                    })
                },
            )),
            other => anyhow::bail!("auth.modules: unknown module {other:?}"),
        };
        modules.insert(key, module);
    }
    Ok(modules)
}

fn load_credential_readers(config: &Config) -> anyhow::Result<Vec<String>> {
    let readers = secret::read(
        config.kerberos.credential_readers_file.as_deref(),
        "kerberos.credential_readers_file",
        "SESSIOND_CREDENTIAL_READERS",
    )?
    .map(|text| secret::lines(&text))
    .unwrap_or_default();
    if let Some(short) = readers.iter().find(|r| r.len() < 16) {
        anyhow::bail!(
            "credential readers: each credential must be at least 16 characters (one has {})",
            short.len()
        );
    }
    Ok(readers)
}

fn ldap_module(config: &Config) -> anyhow::Result<sessiond_auth::ldap::LdapAuthenticator> {
    use sessiond_auth::ldap::{DnLookup, LdapAuthenticator, LdapSettings};
    let l = &config.ldap;
    let lookup = match (&l.user_dn_template, &l.search_base) {
        (Some(template), _) => DnLookup::Template(template.clone()),
        (None, Some(base)) => {
            let password = secret::read(
                l.bind_password_file.as_deref(),
                "ldap.bind_password_file",
                "SESSIOND_LDAP_BIND_PASSWORD",
            )?
            .map(|text| secret::first_line(&text))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "ldap: search-then-bind needs ldap.bind_password_file or SESSIOND_LDAP_BIND_PASSWORD"
                )
            })?;
            DnLookup::Search {
                bind_dn: l.bind_dn.clone().unwrap_or_default(),
                bind_password: sessiond_auth::Password::new(password),
                base: base.clone(),
                filter: l.search_filter.clone(),
            }
        }
        (None, None) => anyhow::bail!("ldap: no user_dn_template or search_base"),
    };
    let ca_pem = match &l.ca_file {
        Some(path) => Some(
            std::fs::read(path).with_context(|| format!("ldap.ca_file = {}", path.display()))?,
        ),
        None => None,
    };
    LdapAuthenticator::new(
        "ldap",
        LdapSettings {
            url: l.url.clone(),
            starttls: l.starttls,
            ca_pem,
            lookup,
            timeout: l.timeout.0,
            name_attribute: (!l.name_attribute.is_empty()).then(|| l.name_attribute.clone()),
            groups: l.group_settings(),
        },
    )
    .map_err(|e| anyhow::anyhow!("ldap.ca_file: {e}"))
}
