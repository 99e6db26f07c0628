//! The real `redoubt` binary, driven as a user drives it: vaults made with `init`, records put
//! and read with `put`, `get` and `list`, grants given with `allow`, and `serve` started,
//! signalled and killed.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

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

/// A vault file that the commands open through `REDOUBT_VAULT`; or, seen through an agent
/// ([`Vault::through_agent`]), the agent that owns it.
#[derive(Clone)]
pub(crate) struct Vault {
    bin: PathBuf,
    path: PathBuf,
    /// The agent's runtime directory (its socket's parent's parent), when the commands go
    /// through it.
    runtime: Option<PathBuf>,
}

impl Vault {
    /// Creates the vault with `redoubt init` and the fast test KDF.
    pub(crate) fn init(bin: &Path, path: PathBuf) -> Result<Self> {
        let vault = Self {
            bin: bin.to_path_buf(),
            path,
            runtime: None,
        };
        vault.run(&["init", "--kdf-memory-kib", "8", "--kdf-iterations", "1"])?;
        Ok(vault)
    }

    /// The same vault, its commands going through the agent whose runtime directory
    /// (`XDG_RUNTIME_DIR`) is `runtime`. They get no password: with no agent there they fail
    /// rather than open the file themselves.
    pub(crate) fn through_agent(&self, runtime: &Path) -> Self {
        Self {
            runtime: Some(runtime.to_path_buf()),
            ..self.clone()
        }
    }

    /// A command on this vault (stdin closed unless the caller sets it).
    pub(crate) fn cmd(&self) -> Command {
        let mut c = command(&self.bin);
        c.env("REDOUBT_VAULT", &self.path).stdin(Stdio::null());
        match &self.runtime {
            Some(runtime) => c
                .env("XDG_RUNTIME_DIR", runtime)
                .env_remove("REDOUBT_PASSWORD"),
            None => c.env("REDOUBT_PASSWORD", PASSWORD),
        };
        c
    }

    /// A command on this vault that holds the password whichever way [`Vault::cmd`] goes (for
    /// starting an agent).
    pub(crate) fn cmd_with_password(&self) -> Command {
        let mut c = self.cmd();
        c.env("REDOUBT_PASSWORD", PASSWORD);
        c
    }

    /// Runs `redoubt ARGS` to its end; its stdout, or an error naming its status and stderr.
    pub(crate) fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.cmd().args(args).output()?;
        ensure!(
            out.status.success(),
            "`redoubt {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// This vault's peer id.
    pub(crate) fn id(&self) -> Result<String> {
        Ok(self.run(&["id"])?.trim().to_string())
    }

    /// Grants `peer` rights on `client`.
    pub(crate) fn allow(&self, peer: &str, client: &str, read: bool, write: bool) -> Result<()> {
        let mut args = vec!["allow", peer, "--client", client];
        args.extend(read.then_some("--read"));
        args.extend(write.then_some("--write"));
        self.run(&args).map(drop)
    }

    /// Stores `value` at `client/vault/record`, through stdin.
    pub(crate) fn put(&self, client: &str, vault: &str, record: &str, value: &[u8]) -> Result<()> {
        let mut child = self
            .cmd()
            .args(["put", "--force", client, vault, record])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(value)?;
        }
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "`redoubt put {client} {vault} {record}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// The value `redoubt get` prints; an error when it fails (no such record, or the vault
    /// does not open).
    pub(crate) fn get(&self, client: &str, vault: &str, record: &str) -> Result<Vec<u8>> {
        let out = self.cmd().args(["get", client, vault, record]).output()?;
        ensure!(
            out.status.success(),
            "`redoubt get {client} {vault} {record}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(out.stdout)
    }

    /// The lines of `redoubt list CLIENT` (location, size and stamp of each live record); none
    /// when the vault holds no such client.
    pub(crate) fn list(&self, client: &str) -> Result<Vec<String>> {
        let out = self.cmd().args(["list", client]).output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("no client") {
                return Ok(Vec::new());
            }
            bail!(
                "`redoubt list {client}` failed ({}): {}",
                out.status,
                err.trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

/// A running `redoubt serve` on loopback (mDNS off); killed on drop if still running.
pub(crate) struct Server {
    child: Child,
    /// Its address, ending with `/p2p/PEER_ID`.
    pub(crate) addr: String,
    /// Kept open: serve must not meet a closed stdout.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `serve` on `vault` and waits for its `listening on` line.
    pub(crate) fn start(vault: &Vault) -> Result<Self> {
        let mut child = vault
            .cmd()
            .args(["serve", "--no-discovery"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(addr) = line.strip_prefix("listening on ") else {
            let _ = child.kill();
            let status = child.wait()?;
            bail!("serve printed {line:?} first, not `listening on ADDR` ({status})");
        };
        Ok(Self {
            addr: addr.trim_end().to_string(),
            child,
            _stdout: stdout,
        })
    }

    /// SIGKILL, and reap it.
    pub(crate) fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM (through `kill(1)`; the suite has no unsafe code to call kill(2)).
    pub(crate) fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed: {status}");
        Ok(())
    }

    /// Waits up to `limit` for serve to exit: its status, or `None` if it still runs.
    pub(crate) fn wait_for_exit(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
