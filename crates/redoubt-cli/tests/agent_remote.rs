//! `redoubt agent` with a remote on shared storage: it syncs the remote when it starts and
//! after a change, and what the remote brings is readable through it and goes on to its peers.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/vault.rs"]
mod vault;

use agent::{Agent, arrives, eventually, free_port, pair, put_through};
use vault::{Vault, json_stdout};

const PASSPHRASE: &str = "correct horse battery staple";

/// Sets up remote `nas` in a fresh folder: added by `first`, joined by each of `others`.
fn shared_folder(first: &Vault, others: &[&Vault]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("shared").display().to_string();
    first
        .cmd()
        .args(["remote", "add", "nas", &url])
        .env("REDOUBT_REMOTE_PASSPHRASE", PASSPHRASE)
        .assert()
        .success();
    for v in others {
        v.cmd()
            .args(["remote", "join", "nas", &url])
            .env("REDOUBT_REMOTE_PASSPHRASE", PASSPHRASE)
            .assert()
            .success();
    }
    dir
}

/// `redoubt remote sync` on `v`'s file (no agent on it); its JSON report.
fn remote_sync(v: &Vault) -> serde_json::Value {
    json_stdout(v.cmd().args(["remote", "sync", "nas", "--json"]))
}

#[test]
fn an_agent_syncs_its_remote_at_start_and_after_each_change() {
    let (laptop, nas_reader) = (Vault::new(), Vault::new());
    laptop.put("alice", "wallet", "seed", b"before");
    let _storage = shared_folder(&laptop, &[&nas_reader]);
    // Written on another device while the laptop's agent is not running.
    nas_reader.put("alice", "wallet", "pin", b"1234");
    remote_sync(&nas_reader);

    let agent = Agent::start(&laptop, &[]);
    arrives(
        &agent,
        "alice/wallet/pin",
        "1234",
        "the agent synced at start",
    );
    // The merge is readable before the sync ends (its upload follows).
    let status = eventually("status shows the sync", || {
        let s = agent.status();
        s["remotes"][0]["last_sync_ms"].is_u64().then_some(s)
    });
    assert_eq!(status["remotes"][0]["name"], "nas", "{status}");
    assert!(status["remotes"][0]["last_sync_ms"].is_u64(), "{status}");
    assert!(status["remotes"][0]["last_error"].is_null(), "{status}");

    // A change through the agent reaches the storage with no sync command.
    put_through(&agent, "alice/wallet/seed", "after");
    eventually("the agent uploaded its change", || {
        remote_sync(&nas_reader);
        (nas_reader.get("alice", "wallet", "seed").as_deref() == Some(&b"after"[..])).then_some(())
    });
    let text = String::from_utf8(agent.cmd().arg("status").output().unwrap().stdout).unwrap();
    assert!(text.contains("remote nas: last synced "), "{text}");
}

#[test]
fn what_a_remote_brings_goes_on_to_the_agents_peers() {
    // The laptop syncs with the storage; the phone only with the laptop.
    let (laptop, phone, desktop) = (Vault::new(), Vault::new(), Vault::new());
    pair(&laptop, &phone);
    laptop.put("alice", "wallet", "seed", b"one");
    let _storage = shared_folder(&laptop, &[&desktop]);
    let port = free_port().to_string();
    let at = format!("/ip4/127.0.0.1/tcp/{port}");
    let on_laptop = Agent::start(&laptop, &["--listen", &at]);
    let on_phone = Agent::start(
        &phone,
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--peer",
            &on_laptop.addr,
        ],
    );
    arrives(
        &on_phone,
        "alice/wallet/seed",
        "one",
        "the phone synced with the laptop",
    );

    desktop.put("alice", "wallet", "seed", b"from the desktop");
    remote_sync(&desktop);
    // The laptop finds it at its next look at the storage, prompted here by a change of its own.
    put_through(&on_laptop, "alice/wallet/other", "x");
    arrives(
        &on_laptop,
        "alice/wallet/seed",
        "from the desktop",
        "the laptop merged the desktop's change from the storage",
    );
    arrives(
        &on_phone,
        "alice/wallet/seed",
        "from the desktop",
        "the laptop pushed what the storage brought on to the phone",
    );
}
