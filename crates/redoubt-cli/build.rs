//! Writes the manual page `redoubt.1` into OUT_DIR from the same command-line definition the
//! binary parses (`redoubt man` prints it).

#[allow(dead_code, unreachable_pub)]
#[path = "src/cli.rs"]
mod cli;

fn main() -> std::io::Result<()> {
    use clap::CommandFactory;
    println!("cargo:rerun-if-changed=src/cli.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| {
        std::io::Error::other("OUT_DIR is not set (build scripts run under cargo)")
    })?);
    let mut page = Vec::new();
    clap_mangen::Man::new(cli::Cli::command()).render(&mut page)?;
    std::fs::write(out.join("redoubt.1"), page)
}
