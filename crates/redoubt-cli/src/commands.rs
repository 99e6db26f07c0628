//! Command dispatch.

mod agent;
mod agent_client;
mod agent_pair;
mod agent_remotes;
mod agent_requests;
mod agent_sync;
mod clip;
mod demo;
mod demo_agents;
mod export;
mod generate;
mod history;
mod import;
pub(crate) mod init;
mod pair;
mod passwd;
mod peers;
pub(crate) mod records;
mod remote;
mod serve;
mod sync;
mod sync_file;

use anyhow::Result;

use crate::{
    cli::{Cli, Command},
    store::vault_path,
};

/// Runs one command.
pub(crate) fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Demo => return demo::run(),
        Command::Completions(args) => return completions(args.shell),
        Command::Man => return man(),
        Command::Clip(args) => return clip::hold(args),
        _ => {}
    }
    let path = vault_path(cli.vault)?;
    // A running agent of this vault answers what goes through it, with no password asked.
    if agent_client::route(&path, &cli.command)? {
        return Ok(());
    }
    match cli.command {
        Command::Init(args) => init::run(&path, &args),
        Command::Put(args) => records::put(&path, &args),
        Command::Get(args) => records::get(&path, &args),
        Command::Rm(args) => records::rm(&path, &args),
        Command::List(args) => records::list(&path, &args),
        Command::Find(args) => records::find(&path, &args),
        Command::History(args) => history::list(&path, &args),
        Command::Restore(args) => history::restore(&path, &args),
        Command::Generate(args) => generate::run(&path, &args),
        Command::Import(args) => import::run(&path, &args),
        Command::Completions(_) | Command::Man | Command::Clip(_) => Ok(()),
        Command::Passwd(args) => passwd::run(&path, &args),
        Command::Export(args) => export::run(&path, &args),
        Command::SyncFile(args) => sync_file::run(&path, &args),
        Command::Demo => demo::run(),
        Command::Id => peers::id(&path),
        Command::Agent(args) => agent::run(&path, &args),
        Command::Status(args) => agent_client::status(&path, &args),
        Command::Lock => agent_client::lock(&path),
        Command::Unlock => agent_client::unlock(&path),
        Command::Allow(args) => peers::allow(&path, &args),
        Command::Deny(args) => peers::deny(&path, &args),
        Command::Peers(args) => peers::list(&path, &args),
        Command::Sync(args) => sync::run(&path, &args),
        Command::Pair(args) => pair::run(&path, &args),
        Command::Remote(command) => remote::run(&path, command),
    }
}

/// `redoubt completions SHELL`: the script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<()> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "redoubt", &mut script);
    write_stdout(&script)
}

/// The manual page that build.rs made with clap_mangen from the same [`Cli`].
const MAN_PAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/redoubt.1"));

/// `redoubt man`: the manual page (roff) on stdout.
fn man() -> Result<()> {
    write_stdout(MAN_PAGE)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
