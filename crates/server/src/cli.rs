//! Command line: `sessiond [serve] [flags]`, `sessiond user …`, `sessiond check-config`.
//!
//! SessionKeyServer's flags are accepted as written in its scripts
//! (`-d -l -p -pam-app -default -tls`). Its multi-letter flags take a single
//! dash, which clap would read as bundled short flags (`-pam-app` = `-p am-app`),
//! so [`translate_legacy_flags`] rewrites them to their `--` form first.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sessiond",
    version,
    about = "Authentication-session server",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, sessiond serves (SessionKeyServer-style invocation).
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage the `file` authenticator's users.
    User(UserArgs),
    /// Load and check the configuration, print the effective settings, and exit.
    CheckConfig(ServeArgs),
    /// Sign, verify or revoke mod_auth_tkt / plone.session tickets.
    Ticket(TicketArgs),
    /// Issue, check or revoke session tokens in the configured store.
    Token(TokenArgs),
    /// Make the running server reload its configuration (SIGHUP to the
    /// process in `server.pid_file`).
    Reload(StoreArgs),
    /// Write the man page and shell completions (for packaging).
    Generate(GenerateArgs),
    /// Tell which access rule decides a request to URL, and whether a
    /// user gets in (exit status 0 if let in, 1 if not).
    CheckAccess(CheckAccessArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write `sessiond.1` and `completions/` into.
    #[arg(long, default_value = "target/assets")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckAccessArgs {
    /// TOML configuration file with the `[access]` rules.
    #[arg(long, short = 'c', env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// The user asking (omit: someone without a session).
    #[arg(long)]
    pub user: Option<String>,
    /// The user's groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// The session's realm (default: the browser realm).
    #[arg(long)]
    pub realm: Option<String>,
    /// How the user logged in: auth/file, auth/ldap, negotiate, ticket, …
    #[arg(long, default_value = "auth/file")]
    pub source: String,
    /// The request's method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// The client's address.
    #[arg(long)]
    pub client: Option<std::net::IpAddr>,
    /// The URL the browser asks for (`https://app.example.com/path`).
    pub url: String,
}

/// The configuration file and the store: shared by `serve` and the commands
/// that work on the store itself, so those find the store the server uses.
#[derive(Debug, Args, Default, Clone)]
pub struct StoreArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Keep sessions in the crash-safe file store in this directory (SessionKeyServer's -d).
    #[arg(short = 'd', long = "data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store kind: memory, file, redis, redis-cluster, redis-sentinel, memcached or postgres.
    #[arg(long, value_name = "KIND")]
    pub store: Option<String>,
    /// Address of a shared store (store.url), e.g. redis://127.0.0.1:6379.
    #[arg(long = "store-url", value_name = "URL")]
    pub store_url: Option<String>,
}

impl StoreArgs {
    /// `serve` with these flags and no others.
    pub fn as_serve_args(&self) -> ServeArgs {
        ServeArgs {
            store: self.clone(),
            ..ServeArgs::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

impl TokenArgs {
    /// The store flags of whichever action was given.
    pub fn store(&self) -> &StoreArgs {
        match &self.action {
            TokenAction::Issue { store, .. }
            | TokenAction::Check { store, .. }
            | TokenAction::Revoke { store, .. } => store,
        }
    }
}

/// Tokens are read from standard input, never taken as arguments, where
/// `ps` and shell history would show them.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Issues a session for a user without a password (an administrator's
    /// act, e.g. for a batch job) under the realm's policy, superseding the
    /// user's older tokens like a login. Prints the token, user and source,
    /// as `/auth_token` does.
    Issue {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        realm: String,
        #[arg(long)]
        user: String,
        /// The session's source, as `/valid` reports it.
        #[arg(long, default_value = "cli")]
        source: String,
    },
    /// Checks the token on standard input, as `/valid` answers (without
    /// counting as activity). Exits 0 for YES, 1 otherwise.
    Check {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        realm: String,
    },
    /// Revokes the token on standard input. Prints OK, or INVALID and exits 1.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        realm: String,
    },
}

#[derive(Debug, Args)]
pub struct TicketArgs {
    #[command(subcommand)]
    pub action: TicketAction,
}

/// The ticket format: a realm of the configuration, or given in full.
#[derive(Debug, Args, Clone)]
pub struct TicketFormatArgs {
    /// Configuration file whose `[realms.<realm>.ticket]` to use.
    #[arg(long, short = 'c', env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Realm of the configuration (else the format flags below).
    #[arg(long)]
    pub realm: Option<String>,
    /// hmac-sha256, sha512, sha256 or md5.
    #[arg(long, default_value = "hmac-sha256")]
    pub digest: sessiond_core::ticket::DigestKind,
    /// File of secrets, one per line (the first signs).
    #[arg(long = "secrets-file", value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Environment variable holding the secrets, one per line.
    #[arg(long = "secrets-env", value_name = "VAR")]
    pub secrets_env: Option<String>,
    /// base64 or raw (how `sign` writes the ticket).
    #[arg(long, default_value = "base64")]
    pub encoding: sessiond_core::ticket::CookieEncoding,
    /// raw or percent (Paste/Pyramid) user ids.
    #[arg(long = "user-id", default_value = "raw")]
    pub user_id: sessiond_core::ticket::UserIdEncoding,
    /// Validity after issue, for `verify` (0 = none).
    #[arg(long, default_value = "2h")]
    pub timeout: String,
    /// Client address the ticket is bound to (default: none, 0.0.0.0).
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// Unix time to sign at / verify at (default: now).
    #[arg(long)]
    pub time: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum TicketAction {
    /// Prints a ticket (cookie value) for a user.
    Sign {
        #[command(flatten)]
        format: TicketFormatArgs,
        #[arg(long)]
        user: String,
        /// Comma-separated tokens.
        #[arg(long, default_value = "")]
        tokens: String,
        #[arg(long, default_value = "")]
        data: String,
    },
    /// Checks a ticket (cookie value; `-` reads it from stdin). Prints the
    /// user, tokens, data and issue time as JSON; exits 1 if it is not valid.
    Verify {
        #[command(flatten)]
        format: TicketFormatArgs,
        ticket: String,
    },
    /// Refuses every ticket of a user issued until now, in the store of the
    /// configuration (a shared store; for the file store, while sessiond is
    /// stopped). A running server does the same with
    /// `DELETE /v1/users/{realm}/{user}/tickets`.
    Revoke {
        #[arg(long, short = 'c', env = "SESSIOND_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        realm: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on; `*` means all interfaces (SessionKeyServer's -l).
    #[arg(short = 'l', long = "listen", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Port to listen on; 0 picks a free one (SessionKeyServer's -p).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// PAM service name (SessionKeyServer's -pam-app).
    #[arg(long = "pam-app", value_name = "NAME")]
    pub pam_app: Option<String>,
    /// Module used when a request names none (SessionKeyServer's -default).
    #[arg(long = "default", value_name = "MODULE")]
    pub default_module: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (may also hold the key) (SessionKeyServer's -tls).
    #[arg(long = "tls", value_name = "CERT_PEM")]
    pub tls: Option<PathBuf>,
    /// PEM private key, when not inside the -tls file.
    #[arg(long = "tls-key", value_name = "KEY_PEM")]
    pub tls_key: Option<PathBuf>,
    /// Password file of the `file` authenticator.
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Refuse passwords sent in URL query strings (require a POST body).
    #[arg(long)]
    pub refuse_query_credentials: bool,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// Password file to manage (default: the configured one, `sessiond-data/passwd`).
    #[arg(
        long = "password-file",
        short = 'f',
        global = true,
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,
    /// Data directory whose `passwd` file to manage.
    #[arg(short = 'd', long = "data-dir", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user. The password is read from standard input (first line), or
    /// asked for twice on a terminal; never from the command line.
    Add {
        name: String,
        /// The user's groups, comma-separated (`dev,ops`): access rules and
        /// `X-Remote-Groups` see them.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Set a user's groups (replacing the old ones; none given = no groups).
    Groups {
        name: String,
        #[arg(value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Change a user's password (read like `add`).
    Passwd { name: String },
    /// Delete a user.
    Del { name: String },
    /// List users (with their groups).
    List,
}

/// SessionKeyServer's single-dash long flags, and their `--` form here.
const LEGACY_FLAGS: &[(&str, &str)] = &[
    ("-pam-app", "--pam-app"),
    ("-default", "--default"),
    ("-tls", "--tls"),
];

/// Rewrites SessionKeyServer-style flags so clap can parse them.
pub fn translate_legacy_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            LEGACY_FLAGS
                .iter()
                .find(|(legacy, _)| *legacy == a)
                .map(|(_, modern)| (*modern).to_owned())
                .unwrap_or(a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let args = translate_legacy_flags(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn sessionkeyserver_invocation() {
        let cli = parse(&[
            "sessiond",
            "-l",
            "127.0.0.1",
            "-p",
            "4301",
            "-d",
            "key.db",
            "-pam-app",
            "login",
            "-default",
            "pam",
        ]);
        assert!(cli.command.is_none());
        let s = cli.serve;
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.port, Some(4301));
        assert_eq!(s.store.data_dir, Some(PathBuf::from("key.db")));
        assert_eq!(s.pam_app.as_deref(), Some("login"));
        assert_eq!(s.default_module.as_deref(), Some("pam"));
    }

    #[test]
    fn subcommands() {
        let cli = parse(&["sessiond", "serve", "-tls", "server.pem", "-p", "0"]);
        match cli.command {
            Some(Command::Serve(s)) => assert_eq!(s.tls, Some(PathBuf::from("server.pem"))),
            other => panic!("{other:?}"),
        }
        let cli = parse(&["sessiond", "user", "add", "alice", "-d", "data"]);
        assert!(matches!(
            cli.command,
            Some(Command::User(UserArgs {
                action: UserAction::Add { .. },
                ..
            }))
        ));
    }
}
