//! A running `redoubt pair` that offers a pairing (with or without an agent), shared by the
//! pairing test files.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    thread::JoinHandle,
};

use super::vault::Vault;

/// A running `redoubt pair` offering; reads its address and code from stdout. Its stderr
/// (trace logs) is drained all along, so that a full pipe never stalls it.
pub struct Host {
    child: Child,
    pub addr: String,
    pub code: String,
    /// Its stdout after the code line.
    pub rest: BufReader<std::process::ChildStdout>,
    stderr: JoinHandle<String>,
}

impl Host {
    /// `redoubt pair` on `v`, listening on loopback, offering `args`.
    pub fn start(v: &Vault, args: &[&str]) -> Self {
        Self::start_answering(v, args, "")
    }

    /// A host whose user answers `stdin` (one line) when asked.
    pub fn start_answering(v: &Vault, args: &[&str], stdin: &str) -> Self {
        let mut cmd = v.process();
        cmd.args(["pair", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-discovery"])
            .args(args);
        Self::run(cmd, stdin)
    }

    /// `cmd` (a `redoubt pair` offering), its user answering `stdin`.
    pub fn run(mut cmd: Command, stdin: &str) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).unwrap();
        }
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut code) = (None, None);
        let mut line = String::new();
        while code.is_none() {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("pair ended early ({status}): {}", stderr.join().unwrap());
            }
            if let Some(a) = line.strip_prefix("listening on ") {
                addr.get_or_insert(a.trim().to_string());
            }
            if let Some(c) = line.strip_prefix("code: ") {
                code = Some(c.trim().to_string());
            }
        }
        Self {
            child,
            addr: addr.expect("a listening line"),
            code: code.unwrap_or_default(),
            rest: out,
            stderr,
        }
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the host to exit; returns its status, remaining stdout and stderr.
    pub fn finish(mut self) -> (bool, String, String) {
        let mut out = String::new();
        let mut line = String::new();
        while self.rest.read_line(&mut line).unwrap_or(0) > 0 {
            out.push_str(&line);
            line.clear();
        }
        let status = self.child.wait().unwrap();
        (status.success(), out, self.stderr.join().unwrap())
    }
}

/// The `code check: NNN NNN` line a device printed.
pub fn code_check(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("code check: "))
        .unwrap_or_else(|| panic!("no code check in {stdout:?}"))
        .to_string()
}

/// Asserts that a `redoubt pair CODE` paired with `host_id` on client `alice` and imported one
/// record, and when `asked` that its user was asked and told it waits for the other device;
/// its stdout.
pub fn joined(out: std::process::Output, host_id: &str, asked: bool) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout} {stderr}");
    let paired = format!("paired: {host_id} may now read and write alice");
    assert!(stdout.contains(&paired), "{stdout}");
    assert!(stdout.contains("imported: added 1"), "{stdout}");
    if asked {
        let question = format!("pair with device {host_id}? code check: ");
        assert!(stderr.contains(&question), "{stderr}");
        let waiting = "waiting for the other device to confirm";
        assert!(stderr.contains(waiting), "{stderr}");
    }
    stdout
}
