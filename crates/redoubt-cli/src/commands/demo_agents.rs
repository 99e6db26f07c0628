//! The demo's second act: the same two vaults, each now owned by a `redoubt agent` process,
//! keep each other in sync by themselves. The demo only talks to the agents' control sockets,
//! as `redoubt put` and `redoubt get` would, and never runs a sync.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use redoubt_control::{Request, Response, SecretBytes, Target};

use crate::{control::Connection, secrets::PASSWORD_ENV};

/// How long the demo waits for a change to reach the other agent before it calls it a
/// failure (the agents push a few milliseconds after a change).
const PATIENCE: Duration = Duration::from_secs(30);

/// One device's agent: a child process owning the vault file.
pub(crate) struct AgentProcess {
    name: &'static str,
    vault: PathBuf,
    child: Child,
    addr: String,
}

impl AgentProcess {
    /// Starts `redoubt agent` on `vault` (unlocked with `password`, which the demo made up),
    /// listening on loopback, dialing `peer` if given; returns once it printed its address.
    pub(crate) fn start(
        name: &'static str,
        vault: &Path,
        password: &str,
        peer: Option<&str>,
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the redoubt binary")?;
        let mut command = Command::new(exe);
        command
            .arg("--vault")
            .arg(vault)
            .args([
                "agent",
                "--no-discovery",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ])
            // The demo's passwords are made up; a real agent asks for its password.
            .env(PASSWORD_ENV, password)
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(peer) = peer {
            command.args(["--peer", peer]);
        }
        let mut child = command.spawn().context("starting redoubt agent")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("the agent's output")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the agent's address")?;
        let Some(addr) = line.strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the {name}'s agent did not start (it printed {line:?})");
        };
        let addr = addr.trim_end().to_owned();
        outln!("  {name:<7} agent (pid {}) listening on {addr}", child.id());
        Ok(Self {
            name,
            vault: vault.to_owned(),
            child,
            addr,
        })
    }

    /// Where peers dial it.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    fn ask(&self, request: &Request) -> Result<Response> {
        let mut connection = Connection::to_agent_of(&self.vault)?
            .with_context(|| format!("the {}'s agent is not running", self.name))?;
        connection.ask(request, |_| Ok(()))
    }

    /// `redoubt put --force` through the agent's socket.
    pub(crate) fn put(&self, client: &str, vault: &str, record: &str, value: &str) -> Result<()> {
        self.ask(&Request::Put {
            target: target(client, vault, record),
            value: SecretBytes::new(value.as_bytes().to_vec()),
            force: true,
        })?;
        outln!(
            "  {:<7} put {client}/{vault}/{record} ({} bytes) through its agent",
            self.name,
            value.len()
        );
        Ok(())
    }

    /// `redoubt rm` through the agent's socket.
    pub(crate) fn rm(&self, client: &str, vault: &str, record: &str) -> Result<()> {
        self.ask(&Request::Rm(target(client, vault, record)))?;
        outln!(
            "  {:<7} rm  {client}/{vault}/{record} through its agent",
            self.name
        );
        Ok(())
    }

    /// Waits until `client/vault/record` reads as `want` (`None`: absent) through this agent,
    /// and says how long it took; nobody runs a sync meanwhile.
    pub(crate) fn wait_for(
        &self,
        client: &str,
        vault: &str,
        record: &str,
        want: Option<&str>,
    ) -> Result<bool> {
        let started = Instant::now();
        let exists = Request::Exists(target(client, vault, record));
        loop {
            let now = match self.ask(&exists)? {
                Response::Flag(false) => None,
                Response::Flag(true) => {
                    match self.ask(&Request::Get(target(client, vault, record))) {
                        Ok(Response::Value(v)) => Some(v),
                        // Deleted between the two questions: ask again.
                        _ => None,
                    }
                }
                other => bail!("the {}'s agent answered {other:?}", self.name),
            };
            let arrived = match (&now, want) {
                (None, None) => true,
                (Some(v), Some(w)) => v.expose() == w.as_bytes(),
                _ => false,
            };
            if arrived {
                let what = if want.is_some() {
                    "reads"
                } else {
                    "no longer has"
                };
                outln!(
                    "  {:<7} {what} {client}/{vault}/{record} {} ms later, by itself",
                    self.name,
                    started.elapsed().as_millis()
                );
                return Ok(true);
            }
            if started.elapsed() > PATIENCE {
                outln!(
                    "  {:<7} still does not see the change to {client}/{vault}/{record} after {} s",
                    self.name,
                    PATIENCE.as_secs()
                );
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the agent as Ctrl-C would, and waits for it to exit.
    pub(crate) fn stop(mut self) -> Result<()> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32)
            .context("the agent's process id")?;
        rustix::process::kill_process(pid, rustix::process::Signal::INT)
            .context("stopping the agent")?;
        let status = self.child.wait().context("waiting for the agent")?;
        if !status.success() {
            bail!("the {}'s agent exited with {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        // Stopped already, or the demo failed: never leave an agent behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn target(client: &str, vault: &str, record: &str) -> Target {
    Target {
        client: client.as_bytes().to_vec(),
        vault: vault.as_bytes().to_vec(),
        record: record.as_bytes().to_vec(),
    }
}
