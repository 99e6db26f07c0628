//! `redoubt`: a peer-to-peer secret synchronization node.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod live;
mod output;
mod secrets;
mod store;

use std::process::ExitCode;

use clap::{Parser, error::ErrorKind};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined by ": ".
            eprintln!("redoubt: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as clap makes them; a usage error becomes one line on stderr, exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            // clap puts details (such as which argument is missing) on indented lines.
            let message = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect::<Vec<_>>()
                .join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("redoubt: error: {message} (see `redoubt --help`)");
            ExitCode::from(2)
        }
    }
}
