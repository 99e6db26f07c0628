//! `redoubt`: a peer-to-peer secret synchronization node.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod output;
mod secrets;
mod store;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined by ": ".
            eprintln!("redoubt: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
