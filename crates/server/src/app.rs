//! The running server's shared state, built once from the configuration.

use crate::config::{Config, StoreKind};
use crate::login::LoginGuard;
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use sessiond_auth::{Authenticator, PasswordFileAuthenticator};
use sessiond_core::token::secrets_equal;
use sessiond_core::Timestamp;
use sessiond_store::{FileStore, MemoryStore, SessionStore, StoreOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct App {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    /// Enabled authenticators by lower-case module name.
    pub modules: HashMap<String, Arc<dyn Authenticator>>,
    pub guard: LoginGuard,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The admin credential, if one is configured.
    admin_token: Option<String>,
    pub metrics: Option<PrometheusHandle>,
}

/// The wall clock, in the core's terms.
pub fn now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
}

impl App {
    pub fn build(config: Config, metrics: Option<PrometheusHandle>) -> anyhow::Result<App> {
        let opts = StoreOptions {
            superseded_retention: config.store.superseded_retention.0,
            touch_interval: config.store.touch_interval.0,
        };
        let store: Arc<dyn SessionStore> = match config.store.kind {
            StoreKind::Memory => Arc::new(MemoryStore::new(opts)),
            StoreKind::File => Arc::new(
                FileStore::open(&config.store.path, opts)
                    .with_context(|| format!("store.path = {}", config.store.path.display()))?,
            ),
        };
        let mut modules: HashMap<String, Arc<dyn Authenticator>> = HashMap::new();
        for name in &config.auth.modules {
            let key = name.to_ascii_lowercase();
            let module: Arc<dyn Authenticator> = match key.as_str() {
                "file" => Arc::new(
                    PasswordFileAuthenticator::open("file", &config.auth.password_file)
                        .with_context(|| {
                            format!(
                                "auth.password_file = {}",
                                config.auth.password_file.display()
                            )
                        })?,
                ),
                #[cfg(feature = "pam")]
                "pam" => {
                    use sessiond_auth::pam::{PamAuthenticator, PamService};
                    let service = if config.auth.pam_service_from_realm {
                        PamService::FromRealm
                    } else {
                        PamService::Fixed(config.auth.pam_service.clone())
                    };
                    Arc::new(PamAuthenticator::new("pam", service))
                }
                other => anyhow::bail!("auth.modules: unknown module {other:?}"),
            };
            modules.insert(key, module);
        }
        let admin_token = load_admin_token(&config)?;
        let guard = LoginGuard::new(&config.auth);
        let trusted_proxies = config.trusted_proxies()?;
        Ok(App {
            trusted_proxies,
            config,
            store,
            modules,
            guard,
            admin_token,
            metrics,
        })
    }

    pub fn has_admin(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Constant-time check of a presented admin credential.
    pub fn is_admin(&self, presented: &str) -> bool {
        self.admin_token
            .as_deref()
            .is_some_and(|expected| secrets_equal(expected.as_bytes(), presented.as_bytes()))
    }

    /// Describes the store for the start-up line.
    pub fn store_description(&self) -> String {
        match self.config.store.kind {
            StoreKind::Memory => "memory".into(),
            StoreKind::File => format!(
                "file {}",
                self.config
                    .store
                    .path
                    .join(sessiond_store::file::DB_FILE)
                    .display()
            ),
        }
    }
}

/// The admin credential from `server.admin_token_file` or `SESSIOND_ADMIN_TOKEN`
/// (never from the command line, where `ps` would show it).
fn load_admin_token(config: &Config) -> anyhow::Result<Option<String>> {
    let token = match (
        &config.server.admin_token_file,
        std::env::var("SESSIOND_ADMIN_TOKEN"),
    ) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("server.admin_token_file = {}", path.display()))?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        }
        (None, Ok(v)) => Some(v.trim().to_owned()),
        (None, Err(_)) => None,
    };
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
