//! `sessiond user add|passwd|groups|del|list`: manage the `file` authenticator.

use crate::cli::{UserAction, UserArgs};
use anyhow::{bail, Context};
use sessiond_auth::password_file::{self, read_entries};
use sessiond_auth::Password;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

pub fn run(args: UserArgs, configured: PathBuf) -> anyhow::Result<()> {
    let path = match (args.password_file, args.data_dir) {
        (Some(f), _) => f,
        (None, Some(d)) => d.join("passwd"),
        (None, None) => configured,
    };
    match args.action {
        UserAction::Add { name, groups } => {
            let pw = read_new_password()?;
            password_file::add_user(&path, &name, &pw, &groups)?;
            println!("added user {name} to {}", path.display());
        }
        UserAction::Groups { name, groups } => {
            password_file::set_groups(&path, &name, &groups)?;
            let now = &read_entries(&path)?[&name].groups;
            println!("{name}: groups [{}] in {}", now.join(", "), path.display());
        }
        UserAction::Passwd { name } => {
            let pw = read_new_password()?;
            password_file::set_password(&path, &name, &pw)?;
            println!("changed the password of {name} in {}", path.display());
        }
        UserAction::Del { name } => {
            password_file::delete_user(&path, &name)?;
            println!("deleted user {name} from {}", path.display());
        }
        UserAction::List => {
            for (name, entry) in read_entries(&path)? {
                if entry.groups.is_empty() {
                    println!("{name}");
                } else {
                    println!("{name} ({})", entry.groups.join(", "));
                }
            }
        }
    }
    Ok(())
}

/// Reads a password from a terminal (twice, hidden) or the first line of stdin.
fn read_new_password() -> anyhow::Result<Password> {
    let pw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if pw.is_empty() {
        bail!("the password is empty (pipe it on standard input, e.g. `echo 'pw' | sessiond user add NAME`)");
    }
    Ok(Password::new(pw))
}
