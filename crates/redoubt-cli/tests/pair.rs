//! `redoubt pair` and `redoubt sync --peer` end to end, between real processes.

#[path = "support/vault.rs"]
mod vault;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
};

use vault::Vault;

/// A running `redoubt pair` offering `args`; reads its address and code from stdout.
struct Host {
    child: Child,
    addr: String,
    code: String,
    rest: BufReader<std::process::ChildStdout>,
}

impl Host {
    fn start(v: &Vault, args: &[&str]) -> Self {
        let mut child = v
            .process()
            .args(["pair", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-discovery"])
            .args(args)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut code) = (None, None);
        let mut line = String::new();
        while code.is_none() {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "pair ended early");
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
        }
    }

    /// Waits for the host to exit; returns its status, remaining stdout and stderr.
    fn finish(mut self) -> (bool, String, String) {
        let mut out = String::new();
        let mut line = String::new();
        while self.rest.read_line(&mut line).unwrap_or(0) > 0 {
            out.push_str(&line);
            line.clear();
        }
        let output = self.child.wait_with_output().unwrap();
        (
            output.status.success(),
            out,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

#[test]
fn a_code_pairs_two_vaults_and_the_new_one_imports() {
    let desktop = Vault::new();
    desktop.put("alice", "wallet", "seed", b"correct horse");
    desktop.put("bob", "vpn", "key", b"stays home");
    let phone = Vault::new();
    let (desktop_id, phone_id) = (desktop.id(), phone.id());
    let host = Host::start(&desktop, &["--client", "alice", "--yes"]);
    assert_eq!(host.code.len(), 12, "NN-DDDD-DDDD: {}", host.code);
    let out = phone
        .cmd()
        .args(["pair", &host.code, "--addr", &host.addr, "--no-discovery"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "paired: {desktop_id} may now read and write alice"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("imported: added 1"), "{stdout}");
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
    assert!(host_err.len() > 1000, "trace logs were written");
    assert!(!host_err.contains("correct horse") && !host_out.contains("correct horse"));
    assert!(
        host_out.contains(&format!("paired: {phone_id}")),
        "{host_out}"
    );
    assert!(
        host_out.contains("served the import: 1 records"),
        "{host_out}"
    );
    assert_eq!(
        phone.get("alice", "wallet", "seed").as_deref(),
        Some(&b"correct horse"[..])
    );
    assert_eq!(phone.get("bob", "vpn", "key"), None);
    // Both sides recorded read and write for the other, saved in their vaults.
    for (v, peer) in [(&desktop, phone_id), (&phone, desktop_id)] {
        let peers =
            String::from_utf8_lossy(&v.cmd().arg("peers").output().unwrap().stdout).into_owned();
        assert!(
            peers.contains(&peer) && peers.contains("alice") && peers.contains("read,write"),
            "{peers}"
        );
    }
}

#[test]
fn a_wrong_code_fails_on_both_sides_and_changes_nothing() {
    let desktop = Vault::new();
    desktop.put("alice", "wallet", "seed", b"correct horse");
    let phone = Vault::new();
    let host = Host::start(&desktop, &["--yes"]);
    let nameplate = &host.code[..2];
    let wrong = if host.code.ends_with("0000") {
        format!("{nameplate}-0000-0001")
    } else {
        format!("{nameplate}-0000-0000")
    };
    let out = phone
        .cmd()
        .args(["pair", &wrong, "--addr", &host.addr, "--no-discovery"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong code"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let (ok, _, host_err) = host.finish();
    assert!(!ok);
    assert!(host_err.contains("wrong code"), "{host_err}");
    assert_eq!(phone.get("alice", "wallet", "seed"), None);
    for v in [&desktop, &phone] {
        let peers = v.cmd().args(["peers", "--json"]).output().unwrap().stdout;
        assert_eq!(String::from_utf8_lossy(&peers).trim(), "[]");
    }
}

/// `sync --peer PEER_ID` finds a serving peer on the local network by mDNS (the server listens
/// on every interface; mDNS announces the LAN ones). Needs an interface that carries
/// multicast, as any LAN has.
#[test]
fn sync_by_peer_id_finds_the_peer_by_mdns() {
    let (a, b) = (Vault::new(), Vault::new());
    let (a_id, b_id) = (a.id(), b.id());
    for (v, peer) in [(&a, &b_id), (&b, &a_id)] {
        v.cmd()
            .args(["allow", peer, "--client", "alice", "--read", "--write"])
            .assert()
            .success();
    }
    a.put("alice", "v", "from-a", b"a");
    let mut server = a
        .process()
        .args(["serve", "--listen", "/ip4/0.0.0.0/tcp/0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    let out = b
        .cmd()
        .args(["sync", "--peer", &a_id, "--client", "alice", "--wait", "15"])
        .output()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.get("alice", "v", "from-a").as_deref(), Some(&b"a"[..]));
    // With discovery off, --peer is refused at once.
    let out = b
        .cmd()
        .args(["sync", "--peer", &a_id, "--no-discovery"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
