//! `sessiond ticket sign|verify|revoke`: tickets for scripts, with the same
//! codec as the server. Secrets come from a file or the environment only.

use crate::cli::{TicketAction, TicketArgs, TicketFormatArgs};
use crate::config::{Config, Span, TicketConfig};
use crate::tickets::TicketRealm;
use anyhow::{bail, Context};
use sessiond_core::parse_duration;
use std::io::Read;
use std::time::Duration;

pub fn run(args: TicketArgs) -> anyhow::Result<()> {
    match args.action {
        TicketAction::Sign {
            format,
            user,
            tokens,
            data,
        } => {
            let realm = realm_of(&format)?;
            let tokens: Vec<String> = tokens
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            let value = realm
                .issue(&user, &data, &tokens, format.ip, at(&format))
                .context("cannot sign")?;
            println!("{value}");
            Ok(())
        }
        TicketAction::Verify { format, ticket } => {
            let realm = realm_of(&format)?;
            let ticket = if ticket == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s.trim().to_owned()
            } else {
                ticket
            };
            let accepted = realm
                .check(&ticket, format.ip, i64::from(at(&format)))
                .map_err(|e| anyhow::anyhow!("not valid: {e}"))?;
            let t = accepted.ticket;
            println!(
                "{}",
                serde_json::json!({
                    "user": t.user,
                    "tokens": t.tokens,
                    "user_data": t.user_data,
                    "issued": t.issued,
                    "refresh_due": accepted.refresh,
                })
            );
            Ok(())
        }
        TicketAction::Revoke {
            config,
            realm,
            user,
        } => revoke(config, &realm, &user),
    }
}

fn at(format: &TicketFormatArgs) -> u32 {
    format
        .time
        .unwrap_or_else(|| u32::try_from(crate::clock::now().0).unwrap_or(u32::MAX))
}

/// The realm's settings from the configuration, or from the flags.
fn realm_of(f: &TicketFormatArgs) -> anyhow::Result<TicketRealm> {
    if let Some(realm) = &f.realm {
        let config = Config::load(f.config.as_deref())?;
        let Some(cfg) = config.realms.get(realm).and_then(|r| r.ticket.as_ref()) else {
            bail!("--realm {realm:?}: the configuration has no [realms.{realm}.ticket]");
        };
        return TicketRealm::load(realm, cfg, true);
    }
    let timeout = parse_duration(&f.timeout).context("--timeout")?;
    let cfg = TicketConfig {
        digest: f.digest,
        secrets_file: f.secrets_file.clone(),
        secrets_env: f.secrets_env.clone(),
        cookie_encoding: f.encoding,
        user_id: f.user_id,
        timeout: Span(timeout),
        bind_address: f.ip.is_some(),
        clock_skew: Span(Duration::from_secs(300)),
        ..TicketConfig::default()
    };
    TicketRealm::load("(command line)", &cfg, true).map_err(|e| {
        let text = e.to_string();
        let text = text.replace("realms.(command line).ticket.", "--");
        anyhow::anyhow!("{}", text.replace("secrets_", "secrets-"))
    })
}

fn revoke(config: Option<std::path::PathBuf>, realm: &str, user: &str) -> anyhow::Result<()> {
    let mut config = Config::load(config.as_deref())?;
    config.resolve_store_url()?;
    if config.store.kind == crate::config::StoreKind::Memory {
        bail!("the memory store lives inside the running server: use DELETE /v1/users/{{realm}}/{{user}}/tickets");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (store, _) = crate::app::open_store(&config.store).await.context(
            "cannot open the store (the file store is locked while sessiond runs: \
             use DELETE /v1/users/{realm}/{user}/tickets then)",
        )?;
        let nb = crate::tickets::revoke(store.tickets.as_ref(), realm, user).await?;
        println!(
            "tickets of {user:?} in {realm:?} issued before {} are refused",
            nb.0
        );
        Ok(())
    })
}
