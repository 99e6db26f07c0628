//! Command dispatch.

mod demo;
mod init;
mod records;
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
    }
}
