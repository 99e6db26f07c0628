//! `redoubt`: a peer-to-peer secret synchronization node.

#![forbid(unsafe_code)]

/// `println!` that never panics: a failed write to stdout (a closed pipe above all) returns
/// the error from the enclosing function, and `main` turns a broken pipe into a quiet exit
/// with status 141 (what shells show for a process killed by SIGPIPE).
macro_rules! outln {
    ($($arg:tt)*) => {
        if let Err(e) = {
            use std::io::Write as _;
            writeln!(std::io::stdout(), $($arg)*)
        } {
            return Err(anyhow::Error::from(e).into());
        }
    };
}

mod cli;
mod commands;
mod control;
mod live;
mod output;
mod paths;
mod secrets;
mod store;

use std::process::ExitCode;

use clap::{Parser, error::ErrorKind};

/// The status of a command that stopped because its stdout was closed: 128 + SIGPIPE (13), as
/// shells report a process that SIGPIPE ended.
const BROKEN_PIPE_STATUS: u8 = 141;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, None),
    };
    if let Some((sub, message)) = bad_path(&cli) {
        use clap::CommandFactory;
        let e = cli::Cli::command().error(ErrorKind::ValueValidation, message);
        return usage_error(&e, Some(sub));
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE_STATUS),
        Err(e) => {
            eprintln!("redoubt: error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`: every command
/// writes through [`outln!`] and ends with status 141. This hook is the net under that: a
/// library's `println!` (or an `eprintln!`) that panics on a closed stdout (or stderr) ends
/// the same way, without a panic message.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe")
            && (message.contains("stdout") || message.contains("stderr"))
        {
            std::process::exit(i32::from(BROKEN_PIPE_STATUS));
        }
        default(info);
    }));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// One line: the error and its causes, joined by ": ". A cause that an error already prints
/// (such as `Is a directory (os error 21)` inside an I/O error's own message) is not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Help and version print as clap makes them; a usage error becomes one line on stderr, exit 2,
/// pointing at the help of the subcommand it concerns.
fn usage_error(e: &clap::Error, sub: Option<&str>) -> ExitCode {
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
            let help = match sub
                .map(str::to_string)
                .or_else(|| subcommand_of_usage(&text))
            {
                Some(sub) => format!("redoubt {sub} --help"),
                None => "redoubt --help".to_string(),
            };
            eprintln!("redoubt: error: {message} (see `{help}`)");
            ExitCode::from(2)
        }
    }
}

/// A location argument that names no secret: the subcommand and what is wrong.
fn bad_path(cli: &cli::Cli) -> Option<(&'static str, String)> {
    use cli::Command;
    let (sub, at) = match &cli.command {
        Command::Put(a) => ("put", &a.at),
        Command::Get(a) => ("get", &a.at),
        Command::Rm(a) => ("rm", a),
        _ => return None,
    };
    at.target().err().map(|e| (sub, e))
}

/// The subcommand a clap error's `Usage: redoubt SUB ...` line names, if it names one.
fn subcommand_of_usage(text: &str) -> Option<String> {
    let usage = text.lines().find_map(|l| l.strip_prefix("Usage: "))?;
    let mut words = usage.split_whitespace();
    words.next()?;
    let sub = words.next()?;
    use clap::CommandFactory;
    cli::Cli::command()
        .get_subcommands()
        .any(|c| c.get_name() == sub)
        .then(|| sub.to_string())
}
