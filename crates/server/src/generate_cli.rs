//! `sessiond generate --out DIR`: the man page and shell completions,
//! generated from the command-line definition itself (clap_mangen,
//! clap_complete), so they cannot drift from the flags. The Debian package
//! ships them (`packaging/build-deb.sh`).

use crate::cli::{Cli, GenerateArgs};
use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let out = &args.out;
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("cannot create {}", completions.display()))?;
    let cmd = Cli::command().name("sessiond");
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .context("cannot render the man page")?;
    let man = out.join("sessiond.1");
    std::fs::write(&man, page).with_context(|| format!("cannot write {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "sessiond", &completions)
            .with_context(|| format!("cannot write the {shell} completions"))?;
    }
    println!("wrote {} and {}/", man.display(), completions.display());
    Ok(())
}
