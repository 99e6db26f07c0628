//! `redoubt pair` through a running agent: offering and joining from the agent's node with no
//! password, the user confirming on `redoubt pair`'s terminal (stdin here), declines on either
//! side, and a `redoubt pair` that hangs up cancelling its offer.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/pair_host.rs"]
mod pair_host;
#[path = "support/vault.rs"]
mod vault;

use std::process::Output;

use agent::{Agent, arrives, eventually, free_port, put_through, value};
use pair_host::{Host, code_check, joined};
use vault::{Vault, fails_with, json_stdout};

/// `redoubt pair` on the agent's vault, through the agent (no password in its environment),
/// its user answering `stdin`.
fn pair_through(agent: &Agent<'_>, args: &[&str], stdin: &str) -> Host {
    let mut cmd = agent.vault.process();
    cmd.env("XDG_RUNTIME_DIR", agent.runtime.path())
        .env_remove("REDOUBT_PASSWORD")
        .args(["pair", "--no-discovery"])
        .args(args);
    Host::run(cmd, stdin)
}

/// `redoubt pair CODE --addr ADDR` of `host` by `cmd`, its user answering `stdin`.
fn join(mut cmd: assert_cmd::Command, host: &Host, yes: bool, stdin: &str) -> Output {
    cmd.args(["pair", &host.code, "--addr", &host.addr, "--no-discovery"]);
    if yes {
        cmd.arg("--yes");
    }
    cmd.write_stdin(stdin.to_string()).output().unwrap()
}

/// The peers `cmd` (a `peers --json` on one vault) lists.
fn grants_of(cmd: &mut assert_cmd::Command) -> Vec<serde_json::Value> {
    json_stdout(cmd.args(["peers", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// The agent on the offering device runs the pairing; its user confirms on the terminal of
/// `redoubt pair` (here stdin) with no password; the new device, with no agent, joins and
/// imports; afterwards a put on the agent reaches it, and the agent plans to sync with it.
#[test]
fn pair_offered_through_the_agent_pairs_and_then_syncs() {
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "seed", b"correct horse");
    a.put("bob", "vpn", "key", b"stays home");
    let (a_id, b_id) = (a.id(), b.id());
    let agent_a = Agent::start(&a, &[]);
    let host = pair_through(&agent_a, &["--client", "alice"], "y\n");
    assert_eq!(host.addr, agent_a.addr, "the agent's node offers");
    let stdout = joined(join(b.cmd(), &host, true, ""), &a_id, false);
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
    assert_eq!(
        code_check(&host_out),
        code_check(&stdout),
        "one string on both"
    );
    assert!(
        host_err.contains(&format!("pair with device {b_id}? code check: ")),
        "the host's user was asked: {host_err}"
    );
    assert!(!host_err.to_lowercase().contains("password"), "{host_err}");
    assert!(host_out.contains("sharing: alice"), "{host_out}");
    assert!(host_out.contains(&format!("paired: {b_id} may now read and write alice")));
    assert!(
        host_out.contains("served the import: 1 records"),
        "{host_out}"
    );
    assert_eq!(
        b.get("alice", "wallet", "seed").as_deref(),
        Some(&b"correct horse"[..])
    );
    assert_eq!(b.get("bob", "vpn", "key"), None);
    // Both vaults hold the grants; the agent syncs with the new peer from now on.
    let granted = grants_of(&mut agent_a.cmd());
    assert!(
        granted.iter().any(|g| g["peer"] == b_id.as_str()),
        "{granted:?}"
    );
    assert!(
        grants_of(&mut b.cmd())
            .iter()
            .any(|g| g["peer"] == a_id.as_str())
    );
    let planned = agent_a.status()["peers"].clone();
    assert!(
        planned
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer"] == b_id.as_str()),
        "{planned}"
    );
    put_through(&agent_a, "alice/wallet/after", "written after pairing");
    b.cmd().args(["sync", &agent_a.addr]).assert().success();
    assert_eq!(
        b.get("alice", "wallet", "after").as_deref(),
        Some(&b"written after pairing"[..])
    );
    assert!(agent_a.stop().success());
}

/// The agent on the joining device joins; its user types the code and confirms on `redoubt
/// pair`'s stdin; the agent imports, learns where the host is, and pushes a later put to it.
#[test]
fn pair_joined_through_the_agent_imports_and_then_pushes() {
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "seed", b"correct horse");
    let (a_id, b_id) = (a.id(), b.id());
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut cmd = a.process();
    cmd.args(["pair", "--listen", &listen, "--no-discovery", "--yes"]);
    let host = Host::run(cmd, "");
    let host_addr = host.addr.clone();
    let agent_b = Agent::start(&b, &[]);
    let mut cmd = agent_b.cmd();
    cmd.args(["pair", "-", "--addr", &host.addr, "--no-discovery"])
        .write_stdin(format!("{}\ny\n", host.code));
    let stdout = joined(cmd.output().unwrap(), &a_id, true);
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
    assert_eq!(code_check(&host_out), code_check(&stdout));
    assert!(host_out.contains(&format!("paired: {b_id}")), "{host_out}");
    assert_eq!(
        value(&agent_b, "alice/wallet/seed").as_deref(),
        Some("correct horse")
    );
    // The agent knows where the host answered, and syncs with it by itself.
    let known = eventually("B plans to sync with A", || {
        let peers = agent_b.status()["peers"].clone();
        peers
            .as_array()?
            .iter()
            .find(|p| p["peer"] == a_id.as_str())
            .cloned()
    });
    assert_eq!(known["addresses"][0], host_addr.as_str(), "{known}");
    let agent_a = Agent::start(&a, &["--listen", &listen]);
    put_through(&agent_b, "alice/wallet/pin", "4921");
    arrives(&agent_a, "alice/wallet/pin", "4921", "A has B's put");
    assert!(agent_b.stop().success());
    assert!(agent_a.stop().success());
}

/// Answering no on either side through an agent grants nothing on either device; a
/// `redoubt pair` that hangs up cancels its offer, so the code no longer pairs.
#[test]
fn declining_or_hanging_up_through_the_agent_grants_nothing() {
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "seed", b"correct horse");
    let a_id = a.id();
    let agent_a = Agent::start(&a, &[]);
    let nothing_granted = || {
        assert_eq!(
            grants_of(&mut agent_a.cmd()),
            Vec::<serde_json::Value>::new()
        );
        assert_eq!(grants_of(&mut b.cmd()), Vec::<serde_json::Value>::new());
        assert_eq!(b.get("alice", "wallet", "seed"), None);
    };
    let join = |host: &Host, yes: bool, stdin: &str| join(b.cmd(), host, yes, stdin);

    // The host's user, through the agent, says no.
    let host = pair_through(&agent_a, &[], "n\n");
    let out = join(&host, true, "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("declined"));
    let (ok, host_out, host_err) = host.finish();
    assert!(!ok, "{host_out}");
    assert!(
        host_err.contains("redoubt: error: declined device"),
        "{host_err}"
    );
    nothing_granted();

    // The joiner's user says no; the host, through the agent, said yes.
    let host = pair_through(&agent_a, &["--yes"], "");
    let out = join(&host, false, "n\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("declined device {a_id}")),
        "{stderr}"
    );
    let (ok, _, host_err) = host.finish();
    assert!(!ok);
    assert!(host_err.contains("declined"), "{host_err}");
    nothing_granted();

    // `redoubt pair` is killed once it shows the code: the agent cancels the offer.
    let host = pair_through(&agent_a, &["--yes"], "");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &host.pid().to_string()])
        .status();
    let (code, addr) = (host.code.clone(), host.addr.clone());
    let _ = host.finish();
    let refused = eventually("the offer is cancelled", || {
        let out = b
            .cmd()
            .args(["pair", &code, "--addr", &addr, "--no-discovery", "--yes"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "a cancelled offer paired");
        // Until the agent noticed the hang-up, an attempt may end otherwise (declined).
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (stderr.contains("no pairing with that code is open") || stderr.contains("expired"))
            .then_some(stderr)
    });
    assert!(refused.starts_with("redoubt: error: "), "{refused}");
    nothing_granted();
    // A locked agent pairs nothing (and asks no password: `redoubt unlock` does).
    agent_a.cmd().arg("lock").assert().success();
    fails_with(agent_a.cmd().args(["pair", "--yes"]), "is locked");
    agent_a
        .cmd()
        .arg("unlock")
        .env("REDOUBT_PASSWORD", vault::PASSWORD)
        .assert()
        .success();
    // The agent pairs again afterwards: the cancelled conversation left nothing running.
    let host = pair_through(&agent_a, &["--yes"], "");
    let out = join(&host, true, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(host.finish().0);
    assert!(agent_a.stop().success());
}

/// A second offer while one runs is refused; `redoubt lock` during a pairing ends it (the
/// pairing held the node, which would have kept the key in memory), its code stops working,
/// and after `redoubt unlock` a new pairing runs. An absurd `--ttl` is refused up front.
#[test]
fn a_lock_during_a_pairing_ends_it_and_a_second_offer_is_refused() {
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "seed", b"correct horse");
    let a_id = a.id();
    let agent_a = Agent::start(&a, &[]);
    let host = pair_through(&agent_a, &[], "");
    let mut second = agent_a.cmd();
    second.args(["pair", "--no-discovery"]);
    fails_with(&mut second, "a pairing already runs on this agent");
    let long = agent_a
        .cmd()
        .args(["pair", "--no-discovery", "--ttl", "18446744073709551615"])
        .output()
        .unwrap();
    assert!(!long.status.success());
    assert!(String::from_utf8_lossy(&long.stderr).contains("--ttl"));
    let (code, addr) = (host.code.clone(), host.addr.clone());
    agent_a.cmd().arg("lock").assert().success();
    let (ok, _out, err) = host.finish();
    assert!(!ok, "the pairing ended with an error");
    assert!(err.contains("locked"), "{err}");
    assert_eq!(agent_a.status()["locked"], true);
    let refused = b
        .cmd()
        .args(["pair", &code, "--addr", &addr, "--no-discovery", "--yes"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "nothing listens for that pairing"
    );
    assert!(grants_of(&mut b.cmd()).is_empty());
    let mut unlock = agent_a.cmd();
    unlock
        .arg("unlock")
        .env("REDOUBT_PASSWORD", vault::PASSWORD)
        .assert()
        .success();
    let again = pair_through(&agent_a, &[], "y\n");
    let stdout = joined(join(b.cmd(), &again, true, ""), &a_id, false);
    assert!(!code_check(&stdout).is_empty());
    let (ok, out, err) = again.finish();
    assert!(ok, "{out} {err}");
    assert!(agent_a.stop().success());
}

/// A remote the host shares with a device that joins through its agent is stored by the
/// agent's node and synced by the agent at once, with no restart (before, the agent read its
/// remotes only when the vault opened).
#[test]
fn a_remote_shared_to_an_agent_is_synced_without_a_restart() {
    let (a, b) = (Vault::new(), Vault::new());
    a.put("alice", "wallet", "seed", b"correct horse");
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("nas").display().to_string();
    a.cmd()
        .args(["remote", "add", "nas", &url, "--client", "alice"])
        .env("REDOUBT_REMOTE_PASSPHRASE", "recovery words")
        .assert()
        .success();
    let agent_b = Agent::start(&b, &[]);
    assert_eq!(agent_b.status()["remotes"], serde_json::json!([]));
    let mut cmd = a.process();
    cmd.args(["pair", "--client", "alice", "--no-discovery", "--yes"]);
    let host = Host::run(cmd, "");
    let mut cmd = agent_b.cmd();
    cmd.args([
        "pair",
        &host.code,
        "--addr",
        &host.addr,
        "--no-discovery",
        "--yes",
    ]);
    joined(cmd.output().unwrap(), &a.id(), false);
    let (ok, host_out, host_err) = host.finish();
    assert!(ok, "{host_out} {host_err}");
    assert!(host_out.contains("remote nas shared"), "{host_out}");
    let status = eventually("B's agent syncs the shared remote", || {
        let s = agent_b.status();
        (s["remotes"][0]["name"] == "nas" && s["remotes"][0]["last_sync_ms"].is_u64()).then_some(s)
    });
    assert!(status["remotes"][0]["last_error"].is_null(), "{status}");
    assert!(agent_b.stop().success());
    let listed = b.cmd().args(["remote", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("nas\t"));
}
