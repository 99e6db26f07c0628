//! A running `redoubt agent` in its own runtime directory, and waiting for what it does,
//! shared by the agent test files.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use super::vault::{Vault, json_stdout};

/// How long a test waits for something that should happen soon (never asserted as a time).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `redoubt agent` with its own runtime directory; SIGKILLed on drop if it still
/// runs.
pub struct Agent<'a> {
    pub vault: &'a Vault,
    pub child: Child,
    pub runtime: tempfile::TempDir,
    pub addr: String,
}

impl<'a> Agent<'a> {
    pub fn start(vault: &'a Vault, extra: &[&str]) -> Self {
        let runtime = tempfile::tempdir().unwrap();
        let mut child = vault
            .process()
            .env("XDG_RUNTIME_DIR", runtime.path())
            .args(["agent", "--no-discovery"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim_end()
            .to_string();
        Self {
            vault,
            child,
            runtime,
            addr,
        }
    }

    /// A command on the agent's vault that finds the agent, with no password to give.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = self.vault.cmd();
        c.env("XDG_RUNTIME_DIR", self.runtime.path())
            .env_remove("REDOUBT_PASSWORD");
        c
    }

    pub fn dir(&self) -> PathBuf {
        self.runtime.path().join("redoubt")
    }

    pub fn socket(&self) -> PathBuf {
        let mut found: Vec<_> = std::fs::read_dir(self.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found.pop().unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        json_stdout(self.cmd().args(["status", "--json"]))
    }

    /// SIGINT, and the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// A TCP port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some`, for at most [`PATIENCE`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stores `value` at `path` through `agent` (replacing what is there).
pub fn put_through(agent: &Agent<'_>, path: &str, value: &str) {
    agent
        .cmd()
        .args(["put", "--force", path])
        .write_stdin(value)
        .assert()
        .success();
}

/// Waits until `agent` holds `value` at `path` (`what` names the wait in a failure).
pub fn arrives(agent: &Agent<'_>, path: &str, want: &str, what: &str) {
    eventually(what, || {
        (value(agent, path)?.as_str() == want).then_some(())
    });
}

/// The value at `path` through `agent`, if there is one.
pub fn value(agent: &Agent<'_>, path: &str) -> Option<String> {
    let out = agent.cmd().args(["get", path]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}
