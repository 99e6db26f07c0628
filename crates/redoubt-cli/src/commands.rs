//! Command dispatch.

mod demo;
mod init;
mod pair;
mod peers;
mod records;
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
    if let Command::Demo = cli.command {
        return demo::run();
    }
    let path = vault_path(cli.vault)?;
    match cli.command {
        Command::Init(args) => init::run(&path, &args),
        Command::Put(args) => records::put(&path, &args),
        Command::Get(args) => records::get(&path, &args),
        Command::Rm(args) => records::rm(&path, &args),
        Command::List(args) => records::list(&path, &args),
        Command::SyncFile(args) => sync_file::run(&path, &args),
        Command::Demo => demo::run(),
        Command::Id => peers::id(&path),
        Command::Serve(args) => serve::run(&path, &args),
        Command::Allow(args) => peers::allow(&path, &args),
        Command::Deny(args) => peers::deny(&path, &args),
        Command::Peers(args) => peers::list(&path, &args),
        Command::Sync(args) => sync::run(&path, &args),
        Command::Pair(args) => pair::run(&path, &args),
    }
}
