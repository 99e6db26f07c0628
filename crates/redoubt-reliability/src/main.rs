//! Redoubt's reliability suite: each failure repeated many times, counted.
//!
//! `scripts/reliability.sh [--quick]` builds and runs it. Every part prints one line
//! `NAME: PASSED/TOTAL`; the last line is `reliability: all passed` or `reliability: FAILED`,
//! and the exit status follows it.

#![forbid(unsafe_code)]

mod agents;
mod crash;
mod cuts;
mod hostile;
mod kill_after_push;
mod load;
mod redoubt;
mod remote_storage;
mod rng;
mod sigterm;
mod soak;

use std::time::Instant;

use anyhow::Result;
use clap::Parser;

/// Redoubt's reliability suite.
#[derive(Parser)]
struct Cli {
    /// Run each part briefly (as CI does).
    #[arg(long)]
    quick: bool,
    /// Run only the parts whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

/// How one part went.
pub(crate) struct Tally {
    passed: usize,
    total: usize,
    first_failure: Option<String>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            passed: 0,
            total: 0,
            first_failure: None,
        }
    }

    /// Records one run.
    pub(crate) fn record(&mut self, result: Result<()>) {
        self.total += 1;
        match result {
            Ok(()) => self.passed += 1,
            Err(e) => {
                if self.first_failure.is_none() {
                    self.first_failure = Some(format!("run {}: {e:#}", self.total));
                }
            }
        }
    }
}

type Part = fn(bool) -> Result<Tally>;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let parts: [(&str, Part); 9] = [
        ("crash-during-save", crash::run),
        ("kill-after-push", kill_after_push::run),
        ("sigterm-stops-serve", sigterm::run),
        ("connection-cuts", cuts::run),
        ("hostile-peer", hostile::run),
        ("convergence-soak", soak::run),
        ("load-100-sessions", load::run),
        ("remote-storage-3-devices", remote_storage::run),
        ("agents-kill-restart", agents::run),
    ];
    let mut all = true;
    for (name, part) in parts {
        if cli.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let start = Instant::now();
        let tally = match part(cli.quick) {
            Ok(t) => t,
            Err(e) => {
                let mut t = Tally::new();
                t.record(Err(e));
                t
            }
        };
        eprintln!("({name} took {:.1} s)", start.elapsed().as_secs_f64());
        if let Some(f) = &tally.first_failure {
            eprintln!("{name}: first failure: {f}");
        }
        println!("{name}: {}/{}", tally.passed, tally.total);
        all &= tally.passed == tally.total && tally.total > 0;
    }
    if all {
        println!("reliability: all passed");
        Ok(())
    } else {
        println!("reliability: FAILED");
        std::process::exit(1)
    }
}
