//! `redoubt pair` and `redoubt sync --peer` end to end, between real processes.

#[path = "support/pair_host.rs"]
mod pair_host;
#[path = "support/vault.rs"]
mod vault;

use std::{
    io::{BufRead, BufReader, Read},
    process::Stdio,
};

use pair_host::{Host, code_check, joined};
use vault::Vault;

/// Neither vault records a grant for the other, and the phone did not import.
fn nothing_granted(desktop: &Vault, phone: &Vault) {
    assert_eq!(phone.get("alice", "wallet", "seed"), None);
    for v in [desktop, phone] {
        let peers = v.cmd().args(["peers", "--json"]).output().unwrap().stdout;
        assert_eq!(String::from_utf8_lossy(&peers).trim(), "[]");
    }
}

/// Both users accept: the host with --yes, the joiner on stdin (after the code, read from
/// stdin too); both print the same code check, and the joiner says it waits for the host.
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
        .args(["pair", "-", "--addr", &host.addr, "--no-discovery"])
        .write_stdin(format!("{}\ny\n", host.code))
        .output()
        .unwrap();
    let stdout = joined(out, &desktop_id, true);
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
    let check = code_check(&stdout);
    assert_eq!(code_check(&host_out), check, "both devices show one string");
    assert!(
        check.len() == 7 && check.chars().filter(char::is_ascii_digit).count() == 6,
        "{check}"
    );
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

/// Before, the joiner was never asked: proving the code was enough. Now its user answering
/// no (on stdin) leaves both vaults without a grant, and the host fails too.
#[test]
fn the_joiner_declining_changes_nothing_on_either_side() {
    let desktop = Vault::new();
    desktop.put("alice", "wallet", "seed", b"correct horse");
    let phone = Vault::new();
    let desktop_id = desktop.id();
    let host = Host::start(&desktop, &["--yes"]);
    let out = phone
        .cmd()
        .args(["pair", &host.code, "--addr", &host.addr, "--no-discovery"])
        .write_stdin("n\n")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pair with device {desktop_id}?")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("redoubt: error: declined device {desktop_id}")),
        "{stderr}"
    );
    let (ok, host_out, host_err) = host.finish();
    assert!(!ok, "{host_out}");
    assert!(host_err.contains("declined"), "{host_err}");
    assert_eq!(
        code_check(&host_out),
        code_check(&String::from_utf8_lossy(&out.stdout))
    );
    nothing_granted(&desktop, &phone);
}

/// The host's user answering no (on stdin) fails the joiner, which accepted with --yes, with
/// "declined", and changes nothing on either side.
#[test]
fn the_host_declining_changes_nothing_on_either_side() {
    let desktop = Vault::new();
    desktop.put("alice", "wallet", "seed", b"correct horse");
    let phone = Vault::new();
    let host = Host::start_answering(&desktop, &[], "n\n");
    let out = phone
        .cmd()
        .args([
            "pair",
            &host.code,
            "--addr",
            &host.addr,
            "--no-discovery",
            "--yes",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("declined"), "{stderr}");
    let (ok, host_out, host_err) = host.finish();
    assert!(!ok, "{host_out}");
    assert!(
        host_err.contains("redoubt: error: declined device"),
        "{host_err}"
    );
    assert!(
        host_err.contains("code check: "),
        "the host's user was asked: {host_err}"
    );
    nothing_granted(&desktop, &phone);
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
    let mut out = BufReader::new(server.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    // Keep reading: serve prints one line per interface, and a closed pipe would make its
    // next line fail and end it (the test's old flake, "connection closed by the peer").
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
    });
    let out = b
        .cmd()
        .args(["sync", "--peer", &a_id, "--client", "alice", "--wait", "15"])
        .output()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let _ = drain.join();
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

/// Issue 17: without mDNS, the host's hint is a command that works when typed as printed, and
/// the QR payload is printed as text too.
#[test]
fn the_hosts_hint_works_literally_without_mdns() {
    let desktop = Vault::new();
    desktop.put("alice", "wallet", "seed", b"correct horse");
    let phone = Vault::new();
    let mut host = Host::start(&desktop, &["--yes"]);
    let (mut payload, mut hint) = (None, None);
    let mut line = String::new();
    while hint.is_none() {
        line.clear();
        assert!(host.rest.read_line(&mut line).unwrap() > 0, "no hint");
        if let Some(p) = line.strip_prefix("qr payload: ") {
            payload = Some(p.trim().to_string());
        }
        if let Some(h) = line.strip_prefix("on the other device run: ") {
            hint = Some(h.split("   (").next().unwrap().to_string());
        }
    }
    let (payload, hint) = (payload.expect("a payload line"), hint.unwrap());
    assert!(payload.starts_with("redoubt-pair:"), "{payload}");
    assert_eq!(hint, format!("redoubt pair '{payload}'"));
    // Typed as shown (the binary's path for `redoubt`), with --yes for this device's user.
    let bin = assert_cmd::cargo::cargo_bin("redoubt");
    let command = format!(
        "{} {} --yes --no-discovery",
        bin.display(),
        &hint["redoubt ".len()..]
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .env("REDOUBT_VAULT", &phone.path)
        .env("REDOUBT_PASSWORD", vault::PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("imported: added 1"), "{stdout}");
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
}

/// Pairing version 3: the host's remote for the shared client travels with the welcome (its
/// storage key sealed under the pairing), the one carrying another client does not; the new
/// device can `remote sync` it at once, with no recovery passphrase.
#[test]
fn a_remote_of_the_shared_clients_travels_with_the_pairing_and_then_syncs() {
    let desktop = Vault::new();
    desktop.put("alice", "wallet", "seed", b"correct horse");
    desktop.put("bob", "vpn", "key", b"stays home");
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| dir.path().join(name).display().to_string();
    for (name, client) in [("nas", "alice"), ("bobs", "bob")] {
        desktop
            .cmd()
            .args(["remote", "add", name, &url(name), "--client", client])
            .env("REDOUBT_REMOTE_PASSPHRASE", "recovery words")
            .assert()
            .success();
    }
    let phone = Vault::new();
    let host = Host::start(&desktop, &["--client", "alice", "--yes"]);
    let out = phone
        .cmd()
        .args([
            "pair",
            &host.code,
            "--addr",
            &host.addr,
            "--no-discovery",
            "--yes",
        ])
        .env_remove("REDOUBT_REMOTE_PASSPHRASE")
        .output()
        .unwrap();
    let stdout = joined(out, &desktop.id(), false);
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
    assert!(
        stdout.contains(&format!("remote nas joined: {}", url("nas"))),
        "{stdout}"
    );
    assert!(!stdout.contains("bobs"), "{stdout}");
    assert!(host_out.contains("remote nas shared"), "{host_out}");
    assert!(host_out.contains("remote bobs not shared"), "{host_out}");
    let listed = phone.cmd().args(["remote", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.starts_with("nas\t") && !listed.contains("bobs"),
        "{listed}"
    );

    desktop.put("alice", "wallet", "pin", b"4921");
    desktop
        .cmd()
        .args(["remote", "sync", "nas"])
        .assert()
        .success();
    let synced = phone
        .cmd()
        .args(["remote", "sync", "nas", "--json"])
        .output()
        .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    assert_eq!(
        phone.get("alice", "wallet", "pin").as_deref(),
        Some(&b"4921"[..])
    );
    assert_eq!(phone.get("bob", "vpn", "key"), None);
}
