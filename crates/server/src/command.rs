//! The `sessiond` command: parse the command line, build the effective
//! configuration (file, environment, then flags) and run what was asked.

use crate::cli::{Cli, Command, ServeArgs};
use crate::config::{Config, StoreKind};
use crate::{access_cli, app, cli, generate_cli, serve, ticket_cli, tls, token_cli, user_cli};
use anyhow::Context;
use clap::Parser;
use std::io::IsTerminal;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse_from(cli::translate_legacy_flags(std::env::args()));
    let success = |()| std::process::ExitCode::SUCCESS;
    let result = match cli.command {
        None => serve(cli.serve).map(success),
        Some(Command::Serve(args)) => serve(args).map(success),
        Some(Command::CheckConfig(args)) => check_config(args).map(success),
        Some(Command::Ticket(args)) => ticket_cli::run(args).map(success),
        // check and revoke answer in the exit status too, for scripts
        Some(Command::Token(args)) => {
            effective_config(&args.store().as_serve_args()).and_then(|c| token_cli::run(args, c))
        }
        Some(Command::Reload(args)) => reload(&args).map(success),
        Some(Command::Generate(args)) => generate_cli::run(args).map(success),
        // allowed or not, in the exit status too
        Some(Command::CheckAccess(args)) => {
            let store = cli::StoreArgs {
                config: args.config.clone(),
                ..cli::StoreArgs::default()
            };
            effective_config(&store.as_serve_args()).and_then(|c| access_cli::run(args, c))
        }
        Some(Command::User(args)) => Config::load(None)
            .and_then(|c| user_cli::run(args, c.auth.password_file))
            .map(success),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sessiond: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Configuration from file and environment, then command-line flags on top.
fn effective_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut c = Config::load(args.store.config.as_deref())?;
    if let Some(dir) = &args.store.data_dir {
        c.store.kind = StoreKind::File;
        c.store.path = dir.clone();
        if args.password_file.is_none() && !c.auth.password_file.is_absolute() {
            c.auth.password_file = dir.join("passwd");
        }
    }
    if let Some(kind) = &args.store.store {
        c.store.kind = StoreKind::parse(kind).ok_or_else(|| {
            anyhow::anyhow!("--store: unknown store {kind:?} ({})", StoreKind::NAMES)
        })?;
    }
    c.resolve_store_url()?;
    if let Some(url) = &args.store.store_url {
        if sessiond_store::url_carries_password(url) {
            eprintln!(
                "sessiond: warning: --store-url carries a password, which every user can read \
                 in the process list; use store.url_file or SESSIOND_STORE__URL"
            );
        }
        c.store.url = Some(url.clone());
        c.store.url_file = None;
    }
    if args.listen.is_some() || args.port.is_some() {
        let current = c.bind_addr()?;
        let host = match args.listen.as_deref() {
            Some("*") => "0.0.0.0".to_owned(),
            Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            Some(h) => h.to_owned(),
            None => match current.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            },
        };
        c.server.bind = format!("{host}:{}", args.port.unwrap_or(current.port()));
    }
    if let Some(app) = &args.pam_app {
        c.auth.pam_service = app.clone();
        c.auth.pam_service_from_realm = false;
    }
    if let Some(m) = &args.default_module {
        c.auth.default_module = m.clone();
    }
    if let Some(cert) = &args.tls {
        c.server.tls_cert = Some(cert.clone());
    }
    if let Some(key) = &args.tls_key {
        c.server.tls_key = Some(key.clone());
    }
    if let Some(f) = &args.password_file {
        c.auth.password_file = f.clone();
    }
    if args.refuse_query_credentials {
        c.server.refuse_query_credentials = true;
    }
    c.validate().with_context(|| match &args.store.config {
        Some(path) => format!("invalid configuration ({})", path.display()),
        None => "invalid configuration".to_owned(),
    })?;
    Ok(c)
}

/// `sessiond reload`: SIGHUP to the server whose PID file the
/// configuration names. (Written by hand rather than with a crate: one
/// `kill(2)` through the `nix` crate.)
fn reload(args: &cli::StoreArgs) -> anyhow::Result<()> {
    let c = Config::load(args.config.as_deref())?;
    let path = c.server.pid_file.context(
        "server.pid_file is not set: set it, or under systemd use `systemctl reload sessiond`",
    )?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("server.pid_file = {}: is sessiond running?", path.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{}: not a process id", path.display()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("cannot signal process {pid} (from {})", path.display()))?;
    println!("sent SIGHUP to sessiond (pid {pid}); its log says whether the reload was taken");
    Ok(())
}

/// The PID file of a running server, removed when it stops.
struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    fn write(path: Option<&std::path::Path>) -> anyhow::Result<PidFile> {
        if let Some(p) = path {
            std::fs::write(p, format!("{}\n", std::process::id()))
                .with_context(|| format!("server.pid_file = {}", p.display()))?;
        }
        Ok(PidFile(path.map(ToOwned::to_owned)))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Prints the effective configuration as TOML (usable as a config file).
fn check_config(args: ServeArgs) -> anyhow::Result<()> {
    let c = effective_config(&args)?;
    print!(
        "{}",
        toml::to_string(&c.redacted()).context("cannot print the configuration")?
    );
    println!("# configuration is valid");
    Ok(())
}

/// Logs go to stderr: human-readable, or one JSON object per line with
/// `SESSIOND_LOG_FORMAT=json` (for log collectors). `SESSIOND_LOG` filters.
fn init_logging() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("SESSIOND_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("SESSIOND_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        Ok("text") | Err(_) => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => anyhow::bail!("SESSIOND_LOG_FORMAT: {other:?} is not \"text\" or \"json\""),
    }
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = effective_config(&args)?;
    if let Some(keytab) = &config.kerberos.keytab {
        // GSSAPI reads the acceptor keytab from the environment, process-wide;
        // set before any thread starts.
        std::env::set_var("KRB5_KTNAME", format!("FILE:{}", keytab.display()));
        if config.delegates() {
            // Constrained delegation asks the KDC as sessiond: its TGT comes
            // from the same key (MIT's client keytab) and is kept in memory,
            // never in a cache file on disk (crates/auth/src/s4u.rs).
            std::env::set_var("KRB5_CLIENT_KTNAME", format!("FILE:{}", keytab.display()));
            std::env::set_var("KRB5CCNAME", "MEMORY:sessiond-service");
        }
    }
    init_logging()?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let tls = match &config.server.tls_cert {
            Some(cert) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                cert,
                config.server.tls_key.as_deref(),
            )?)),
            None => None,
        };
        let bind = config.bind_addr()?;
        let app = Arc::new(app::App::build(config, Some(metrics)).await?);
        // A socket systemd passed (socket activation) wins over server.bind.
        let listener = match crate::systemd::activated_listener()? {
            Some(l) => l,
            None => tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind} (server.bind / -l / -p)"))?,
        };
        let local = listener.local_addr()?;
        let shutdown = serve::ShutdownSignal::install()?;
        // Before the announcement, so whoever reads it finds the PID file.
        let _pid_file = PidFile::write(app.config.server.pid_file.as_deref())?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // One line on stdout, like SessionKeyServer's; tests read the port from it.
        println!(
            "sessiond {} is listening on {scheme}://{local} (store: {}, modules: {})",
            env!("CARGO_PKG_VERSION"),
            app.store_description(),
            app.config.auth.modules.join(",")
        );
        crate::systemd::ready(&format!("listening on {scheme}://{local}"));
        if !local.ip().is_loopback() && tls.is_none() {
            tracing::warn!("serving plain HTTP on a non-loopback address: passwords and tokens travel in clear");
        }
        // SIGHUP reads the configuration again the way the start did.
        let reload: serve::Reloader = Box::new(move || effective_config(&args));
        serve::run(app, listener, tls, shutdown, reload).await
    })
}
