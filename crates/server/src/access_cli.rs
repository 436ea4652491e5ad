//! `sessiond check-access`: which access rule decides a request and why,
//! for an operator writing or debugging `[access]` — the same compiled
//! rules and the same decision `GET /auth` makes.

use crate::cli::CheckAccessArgs;
use crate::config::Config;
use anyhow::Context;
use sessiond_core::access::{split_url, Policy, Target, Who};
use sessiond_core::names::parse_group_list;
use std::process::ExitCode;

/// `config` is the server's effective configuration, checked whole the way
/// `serve` checks it (so its rules compile).
pub fn run(args: CheckAccessArgs, config: Config) -> anyhow::Result<ExitCode> {
    let rules = config.access.compile()?;
    let (host, path) = split_url(&args.url).with_context(|| format!("the URL {:?}", args.url))?;
    let host = host.with_context(|| format!("{:?}: give a whole http(s) URL", args.url))?;
    let method = args.method.to_ascii_uppercase();
    let t = Target {
        host: Some(&host),
        path: &path,
        method: Some(&method),
        client: args.client,
    };
    let d = rules.decide(&t);
    println!("{method} {} (host {host}, path {path})", args.url);
    match d.rule {
        Some(rule) => println!("decided by {}: {}", rule.label, rule.conditions),
        None => println!("decided by the default policy (no rule matched)"),
    }
    println!("policy: {}", d.policy);
    let (let_in, why) = match (d.policy, &args.user) {
        (Policy::Public, _) => (true, "public: no session needed".to_owned()),
        (Policy::Deny, _) => (false, "denied to everyone".to_owned()),
        (_, None) => (
            false,
            "needs a session: the browser is sent to log in (401)".to_owned(),
        ),
        (policy, Some(user)) => {
            let groups = parse_group_list(&args.groups.join(","))
                .map_err(|e| anyhow::anyhow!("--groups: {e}"))?;
            let realm = args
                .realm
                .clone()
                .unwrap_or_else(|| config.browser.realm.clone());
            let who = Who {
                user,
                groups: &groups,
                realm: &realm,
                source: &args.source,
            };
            match policy.admits(&who) {
                Ok(()) => (true, format!("{user} is let in")),
                Err(why) => (false, format!("{user} gets 403: {why}")),
            }
        }
    };
    println!("{}: {why}", if let_in { "ALLOWED" } else { "REFUSED" });
    Ok(if let_in {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
