//! The remote-sync commands end to end: `id`, `allow`, `deny`, `peers`, `serve` and `sync`
//! between real `redoubt` processes on loopback.

#[path = "support/vault.rs"]
mod vault;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
};

use vault::{Vault, fails_with, json_stdout, report};

/// A running `redoubt serve`, stopped on drop (SIGINT by `stop`, SIGKILL otherwise).
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(v: &Vault) -> Self {
        Self::start_logging(v, Stdio::null())
    }

    /// Starts `serve` logging at the most verbose level into `stderr`.
    fn start_logging(v: &Vault, stderr: Stdio) -> Self {
        let mut child = v
            .process()
            .arg("serve")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(stderr)
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
        Self { child, addr }
    }

    fn stop(mut self) {
        self.interrupt();
    }

    fn interrupt(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exits cleanly on SIGINT: {status}");
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

fn sync_json(v: &Vault, args: &[&str]) -> serde_json::Value {
    json_stdout(v.cmd().arg("sync").args(args).arg("--json"))
}

/// Each vault grants the other read and write on `client`; returns their peer ids.
fn allow_each_other(a: &Vault, b: &Vault, client: &str) -> (String, String) {
    let (a_id, b_id) = (a.id(), b.id());
    for (v, peer) in [(a, &b_id), (b, &a_id)] {
        v.cmd()
            .args(["allow", peer, "--client", client, "--read", "--write"])
            .assert()
            .success();
    }
    (a_id, b_id)
}

#[test]
fn id_allow_peers_and_deny() {
    let a = Vault::new();
    let b = Vault::new();
    let b_id = b.id();
    assert!(b_id.starts_with("12D3KooW"), "{b_id}");
    assert_ne!(a.id(), b_id);
    fails_with(
        a.cmd().args(["allow", &b_id, "--client", "alice"]),
        "--read, --write",
    );
    fails_with(
        a.cmd()
            .args(["allow", "not-a-peer", "--client", "alice", "--read"]),
        "invalid peer id",
    );
    a.cmd()
        .args(["allow", &b_id, "--client", "alice", "--read"])
        .assert()
        .success();
    a.cmd()
        .args(["allow", &b_id, "--client", "alice", "--write"])
        .assert()
        .success()
        .stdout(format!("{b_id}\talice\tread,write\n"));
    a.cmd()
        .args(["allow", &b_id, "--client", "bob", "--read"])
        .assert()
        .success();
    a.cmd()
        .arg("peers")
        .assert()
        .success()
        .stdout(format!("{b_id}\talice\tread,write\n{b_id}\tbob\tread\n"));
    let out = a.cmd().args(["peers", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["peer"], b_id.as_str());
    assert_eq!(
        (json[0]["read"].as_bool(), json[0]["write"].as_bool()),
        (Some(true), Some(true))
    );
    a.cmd()
        .args(["deny", &b_id, "--client", "bob"])
        .assert()
        .success()
        .stdout(format!("revoked 1 grant(s) of {b_id}\n"));
    a.cmd().args(["deny", &b_id]).assert().success();
    a.cmd().arg("peers").assert().success().stdout("");
}

#[test]
fn serve_and_sync_converge_both_ways() {
    let a = Vault::new();
    let b = Vault::new();
    let (a_id, _) = allow_each_other(&a, &b, "alice");
    a.put("alice", "wallet", "seed", b"from-a");
    b.put("alice", "wallet", "pin", b"from-b");

    let server = Server::start(&a);
    assert!(
        server.addr.starts_with("/ip4/127.0.0.1/tcp/")
            && server.addr.ends_with(&format!("/p2p/{a_id}")),
        "{}",
        server.addr
    );
    // A local write goes through the running server (an agent): no password asked. (Client
    // "bob" is shared with no one, so the syncs below do not move it.)
    a.cmd()
        .env_remove("REDOUBT_PASSWORD")
        .args(["put", "bob", "x", "y"])
        .write_stdin("z")
        .assert()
        .success();

    let out = sync_json(&b, &[&server.addr, "--client", "alice"]);
    assert_eq!(report(&out["pulled"]), [1, 0, 0, 0, 0]);
    assert_eq!(report(&out["pushed"]), [1, 0, 0, 0, 0]);
    assert_eq!(b.get("alice", "wallet", "seed").unwrap(), b"from-a");

    b.cmd()
        .args(["rm", "alice", "wallet", "seed"])
        .assert()
        .success();
    let out = sync_json(&b, &[&server.addr, "--push-only"]);
    assert!(out["pulled"].is_null());
    assert_eq!(report(&out["pushed"])[2], 1, "the deletion was pushed");
    let out = sync_json(&b, &[&server.addr, "--pull-only", "--import"]);
    assert!(out["pushed"].is_null());
    assert_eq!(report(&out["pulled"]), [0, 0, 0, 0, 0]);

    server.stop();
    assert_eq!(
        a.get("alice", "wallet", "pin").unwrap(),
        b"from-b",
        "serve saved the push"
    );
    assert_eq!(a.get("alice", "wallet", "seed"), None, "and the deletion");
}

#[test]
fn sync_errors_are_one_clear_line() {
    let a = Vault::new();
    let b = Vault::new();
    let a_id = a.id();
    a.put("alice", "wallet", "seed", b"never-sent");
    let server = Server::start(&a);
    // Our own table comes first: without a write grant for the peer, its records cannot come
    // in, and the command says which grant is missing and how to add it.
    fails_with(
        b.cmd().args(["sync", &server.addr, "--client", "alice"]),
        &format!(
            "no write grant for peer {a_id} on client \"alice\" in this vault, so its records \
             cannot come in: `redoubt allow {a_id} --client alice --write` would add it"
        ),
    );
    fails_with(
        b.cmd()
            .args(["sync", &server.addr, "--client", "alice", "--push-only"]),
        &format!("`redoubt allow {a_id} --client alice --read` would add it"),
    );
    b.cmd()
        .args(["allow", &a_id, "--client", "alice", "--read", "--write"])
        .assert()
        .success();
    // Then the peer's: it grants us nothing.
    fails_with(
        b.cmd().args(["sync", &server.addr, "--client", "alice"]),
        "permission denied by peer",
    );
    b.cmd().arg("list").assert().success().stdout("");
    fails_with(b.cmd().args(["sync", "nonsense"]), "is not a multiaddr");
    fails_with(
        b.cmd().args(["sync", "/ip4/127.0.0.1/tcp/9"]),
        "/p2p/PEER_ID",
    );
    let addr = server.addr.clone();
    server.stop();
    fails_with(b.cmd().args(["sync", &addr]), "did not answer at");
    fails_with(
        b.cmd().args(["sync", &addr, "--pull-only", "--push-only"]),
        "cannot be used with",
    );
}

#[test]
fn sync_names_the_direction_that_failed_and_keeps_the_other() {
    let a = Vault::new();
    let b = Vault::new();
    let b_id = b.id();
    a.cmd()
        .args(["allow", &b_id, "--client", "alice", "--read"])
        .assert()
        .success();
    for client in ["bob", "carol"] {
        a.cmd()
            .args(["allow", &b_id, "--client", client, "--read", "--write"])
            .assert()
            .success();
    }
    let a_id = a.id();
    for client in ["alice", "bob", "carol"] {
        b.cmd()
            .args(["allow", &a_id, "--client", client, "--read", "--write"])
            .assert()
            .success();
    }
    a.put("alice", "wallet", "seed", b"from-a");
    b.put("bob", "vpn", "key", b"from-b");
    let server = Server::start(&a);
    // Read but no write on alice: the pull lands, the push is refused and says so.
    fails_with(
        b.cmd().args(["sync", &server.addr, "--client", "alice"]),
        "push (the pull before it completed and was saved): permission denied by peer",
    );
    assert_eq!(b.get("alice", "wallet", "seed").unwrap(), b"from-a");
    // Only b holds bob: nothing to pull, and the push creates it on a.
    let out = sync_json(&b, &[&server.addr, "--client", "bob"]);
    assert_eq!(report(&out["pulled"]), [0, 0, 0, 0, 0]);
    assert_eq!(report(&out["pushed"])[0], 1);
    // Neither holds carol (a grant exists; existence is never told to an unauthorized peer):
    // that is an error, not silence.
    fails_with(
        b.cmd().args(["sync", &server.addr, "--client", "carol"]),
        "client not found",
    );
    server.stop();
    assert_eq!(a.get("bob", "vpn", "key").unwrap(), b"from-b");
}

/// The reproduction from issue 11: A holds c1 and c2 and grants B read and write on c1 only;
/// B grants A write on both. Before the fix, A's plain `sync` pushed c2 to B on B's word.
#[test]
fn plain_sync_moves_only_what_our_own_table_allows_both_ways() {
    let a = Vault::new();
    let b = Vault::new();
    let (a_id, b_id) = (a.id(), b.id());
    a.cmd()
        .args(["allow", &b_id, "--client", "c1", "--read", "--write"])
        .assert()
        .success();
    for client in ["c1", "c2"] {
        b.cmd()
            .args(["allow", &a_id, "--client", client, "--read", "--write"])
            .assert()
            .success();
    }
    a.put("c1", "v", "shared", b"a-c1");
    a.put("c2", "v", "private", b"a-c2");
    b.put("c1", "v", "from-b", b"b-c1");
    b.put("c2", "v", "from-b", b"b-c2");
    let server = Server::start(&b);
    let out = sync_json(&a, &[&server.addr]);
    assert_eq!(report(&out["pulled"])[0], 1, "A took B's c1 record only");
    assert_eq!(report(&out["pushed"])[0], 1, "B took A's c1 record only");
    // An explicit client without our grant fails before anything moves.
    fails_with(
        a.cmd().args(["sync", &server.addr, "--client", "c2"]),
        &format!("no write grant for peer {b_id} on client \"c2\""),
    );
    server.stop();
    assert_eq!(b.get("c1", "v", "shared").unwrap(), b"a-c1");
    assert_eq!(b.get("c2", "v", "private"), None, "A's c2 never left A");
    assert_eq!(a.get("c1", "v", "from-b").unwrap(), b"b-c1");
    assert_eq!(a.get("c2", "v", "from-b"), None, "B's c2 never entered A");
}

/// Issue 11's reproduction to the letter: B grants A write (not read) on c1 and c2. A's plain
/// sync pulls nothing (B lets it read nothing, and says so) and pushes c1 only.
#[test]
fn a_peer_that_asks_for_everything_gets_only_what_we_granted() {
    let a = Vault::new();
    let b = Vault::new();
    let (a_id, b_id) = (a.id(), b.id());
    a.cmd()
        .args(["allow", &b_id, "--client", "c1", "--read", "--write"])
        .assert()
        .success();
    for client in ["c1", "c2"] {
        b.cmd()
            .args(["allow", &a_id, "--client", client, "--write"])
            .assert()
            .success();
    }
    a.put("c1", "v", "r1", b"a-c1");
    a.put("c2", "v", "r2", b"a-c2");
    let server = Server::start(&b);
    let out = a
        .cmd()
        .args(["sync", &server.addr, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report(&json["pulled"]), [0, 0, 0, 0, 0]);
    assert_eq!(report(&json["pushed"])[0], 1, "c1 only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note: nothing pulled: permission denied by peer"),
        "{stderr}"
    );
    server.stop();
    assert_eq!(b.get("c1", "v", "r1").unwrap(), b"a-c1");
    assert_eq!(b.get("c2", "v", "r2"), None, "B does not hold A's c2");
}

#[test]
fn no_secret_in_logs_even_at_trace_level() {
    const CANARY: &[u8] = b"canary-5c1e7a9d-never-logged";
    let dir = tempfile::tempdir().unwrap();
    let a = Vault::new();
    let b = Vault::new();
    allow_each_other(&a, &b, "alice");
    a.put("alice", "wallet", "from-a", CANARY);
    b.put("alice", "wallet", "from-b", CANARY);
    let log = dir.path().join("serve.log");
    let server = Server::start_logging(&a, Stdio::from(std::fs::File::create(&log).unwrap()));
    let out = b
        .cmd()
        .env("RUST_LOG", "trace")
        .args(["sync", &server.addr])
        .output()
        .unwrap();
    assert!(out.status.success());
    server.stop();
    let served = std::fs::read(&log).unwrap();
    assert!(
        served.len() > 1000,
        "trace logging was on ({} bytes)",
        served.len()
    );
    for (name, bytes) in [
        ("serve log", &served),
        ("sync stderr", &out.stderr),
        ("sync stdout", &out.stdout),
    ] {
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY),
            "the secret appeared in the {name}"
        );
    }
    assert_eq!(a.get("alice", "wallet", "from-b").unwrap(), CANARY);
}

/// Issue 17: a client made after the grants were recorded is not skipped without a word, and
/// each refusal or mistake says what fixes it.
#[test]
fn sync_says_what_it_skips_and_what_fixes_each_error() {
    let a = Vault::new();
    let b = Vault::new();
    let (a_id, b_id) = allow_each_other(&a, &b, "alice");
    a.put("alice", "wallet", "seed", b"from-a");
    a.put("bob", "vpn", "key", b"a's bob");
    b.put("bob", "vpn", "key", b"made after pairing");
    let server = Server::start(&a);

    // The import skips b's client bob, and says so.
    let out = b.cmd().args(["sync", &server.addr]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "note: client \"bob\" is not shared with {a_id} (this vault grants it no rights), so \
             this sync skips it: `redoubt allow {a_id} --client bob --read --write` shares it"
        )),
        "{err}"
    );

    // With our grants in place, the peer's refusal names the grant to add on its side.
    b.cmd()
        .args(["allow", &a_id, "--client", "bob", "--read", "--write"])
        .assert()
        .success();
    fails_with(
        b.cmd().args(["sync", &server.addr, "--client", "bob"]),
        &format!("on that device, `redoubt allow {b_id} --client bob --read`"),
    );

    // A reachable address whose peer has another id.
    let port_part = server.addr.split("/p2p/").next().unwrap();
    let wrong = format!("{port_part}/p2p/{b_id}");
    let c = Vault::new();
    c.cmd()
        .args(["allow", &b_id, "--client", "alice", "--read", "--write"])
        .assert()
        .success();
    fails_with(
        c.cmd().args(["sync", &wrong, "--client", "alice"]),
        &format!("is peer {a_id}, not {b_id}: check the address"),
    );
    // A peer id where an address goes; a --peer that is no peer id.
    fails_with(b.cmd().args(["sync", &a_id]), &format!("--peer {a_id}"));
    let out = b
        .cmd()
        .args(["sync", "--peer", "notapeer"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("\"notapeer\" is not a peer id"), "{err}");
    assert!(!err.contains("multihash"), "{err}");
    // A port in use reads with its cause.
    let port = port_part.rsplit('/').next().unwrap();
    fails_with(
        b.cmd()
            .args(["serve", "--listen", &format!("/ip4/127.0.0.1/tcp/{port}")]),
        "Address already in use",
    );
    server.stop();
}

#[test]
fn serve_logs_no_libp2p_info_line_by_default() {
    let a = Vault::new();
    let mut child = a
        .process()
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("libp2p"), "{err}");
}

/// What `serve` acknowledged is in the vault file at once: a server killed with SIGKILL right
/// after a push (no save at exit, no signal handler) keeps the pushed records, and the vault
/// opens.
#[test]
fn a_killed_serve_keeps_what_it_acknowledged() {
    let a = Vault::new();
    let b = Vault::new();
    allow_each_other(&a, &b, "alice");
    b.put("alice", "wallet", "pin", b"pushed");
    b.put("alice", "mail", "pw", b"pushed too");
    let mut server = Server::start(&a);
    let out = sync_json(&b, &[&server.addr, "--push-only"]);
    assert_eq!(report(&out["pushed"]), [2, 0, 0, 0, 0]);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    assert_eq!(a.get("alice", "wallet", "pin").unwrap(), b"pushed");
    assert_eq!(a.get("alice", "mail", "pw").unwrap(), b"pushed too");
}
