//! The real `redoubt` binary, driven as a user drives it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, ensure};

/// The password of every vault the suite makes.
pub(crate) const PASSWORD: &str = "reliability";

/// The `redoubt` binary: `REDOUBT_BIN`, or the one built beside this binary.
pub(crate) fn binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("REDOUBT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("redoubt");
    ensure!(
        bin.exists(),
        "no redoubt binary beside {} (build it with `cargo build --release -p redoubt-cli`, or set REDOUBT_BIN)",
        me.display()
    );
    Ok(bin)
}

/// A `redoubt` command with the environment every process of the suite gets: the test KDF
/// allowed (the vaults use 8 KiB and one pass, to stay fast), default logging.
pub(crate) fn command(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("REDOUBT_INSECURE_TEST_KDF", "1")
        .env_remove("RUST_LOG");
    c
}
