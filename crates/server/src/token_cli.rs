//! `sessiond token issue|check|revoke`: the token operations for operators
//! and scripts, on the store the server uses (found with the same flags and
//! configuration as `serve`).
//!
//! They work on the store directly rather than through a running server, so
//! they need no admin credential on the wire and work while the server is
//! down; the price is that the memory store (inside the server process) is
//! out of reach, and the file store only while no server holds its lock.
//! Shared stores (Redis, memcached, PostgreSQL) work at any time.

use crate::app::open_store;
use crate::cli::{TokenAction, TokenArgs};
use crate::clock::now;
use crate::config::{Config, StoreKind};
use anyhow::{bail, Context};
use sessiond_core::names::{check_name, check_text};
use sessiond_core::session::{NewSession, Validity};
use sessiond_core::{Identity, Token};
use sessiond_store::SessionStore;
use std::io::BufRead;
use std::process::ExitCode;

pub fn run(args: TokenArgs, config: Config) -> anyhow::Result<ExitCode> {
    if config.store.kind == StoreKind::Memory {
        bail!(
            "the memory store lives inside the running server, out of reach of this command: \
             use the server's /auth_token, /valid and /revoke, or a file or shared store (-d DIR, --store)"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (store, _) = open_store(&config.store).await.context(
            "cannot open the store (a running sessiond holds the file store's lock: \
             stop it first, or use its HTTP endpoints)",
        )?;
        match args.action {
            TokenAction::Issue {
                realm,
                user,
                source,
                ..
            } => issue(&*store, &config, &realm, &user, &source).await,
            TokenAction::Check { realm, .. } => check(&*store, &realm, &read_token()?).await,
            TokenAction::Revoke { realm, .. } => revoke(&*store, &realm, &read_token()?).await,
        }
    })
}

async fn issue(
    store: &dyn SessionStore,
    config: &Config,
    realm: &str,
    user: &str,
    source: &str,
) -> anyhow::Result<ExitCode> {
    check_text("--realm", realm)?;
    check_name("--user", user)?;
    check_name("--source", source)?;
    let token = Token::generate();
    let new = NewSession {
        realm: realm.to_owned(),
        policy: config.realm_policy(realm),
        identity: Identity::new(user, source),
        credential_end: None,
        client_addr: None,
        device: Some("sessiond token issue".to_owned()),
        credentials: None,
    };
    let record = store
        .create(token.hash(), new, now())
        .await
        .context("cannot store the session")?;
    print!("{}\n{}", token.expose(), record.identity.sks_record_text());
    Ok(ExitCode::SUCCESS)
}

async fn check(store: &dyn SessionStore, realm: &str, token: &Token) -> anyhow::Result<ExitCode> {
    let answer = store
        .peek(token.hash(), realm, now())
        .await
        .context("cannot read the store")?;
    Ok(match answer {
        Validity::Current(r) => {
            print!("YES\n{}", r.identity.sks_record_text());
            ExitCode::SUCCESS
        }
        Validity::Superseded(r) => {
            print!("SUPERCEDED\n{}", r.identity.sks_record_text());
            ExitCode::FAILURE
        }
        Validity::Expired(_) | Validity::Unknown => {
            println!("NO");
            ExitCode::FAILURE
        }
    })
}

async fn revoke(store: &dyn SessionStore, realm: &str, token: &Token) -> anyhow::Result<ExitCode> {
    let revoked = store
        .revoke(token.hash(), realm, now())
        .await
        .context("cannot write the store")?;
    Ok(match revoked {
        Some(_) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        None => {
            println!("INVALID");
            ExitCode::FAILURE
        }
    })
}

/// The token from the first line of standard input.
fn read_token() -> anyhow::Result<Token> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the token from standard input")?;
    let text = line.trim();
    if text.is_empty() {
        bail!("no token on standard input (the first line is read)");
    }
    Ok(Token::from_client(text))
}
