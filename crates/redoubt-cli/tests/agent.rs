//! `redoubt agent`: commands through its control socket with no password, `lock`, `unlock`,
//! the idle lock, the socket's refusal of other users, and the bounded wait without an agent.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/vault.rs"]
mod vault;

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use agent::{Agent, PATIENCE, arrives, eventually, free_port, pair, put_through, stdout_of, value};
use vault::{Vault, fails_with, json_stdout};

#[test]
fn commands_go_through_the_agent_with_no_password() {
    let v = Vault::new();
    let agent = Agent::start(&v, &[]);
    assert!(agent.addr.contains("/p2p/12D3KooW"), "{}", agent.addr);
    // The socket is private: 0600 in a 0700 directory.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&agent.dir()), 0o700);
    assert_eq!(mode(&agent.socket()), 0o600);

    agent
        .cmd()
        .args(["put", "alice", "wallet", "seed"])
        .write_stdin("s3cret")
        .assert()
        .success()
        .stdout("");
    assert_eq!(
        stdout_of(agent.cmd().args(["get", "alice/wallet/seed"])),
        "s3cret"
    );
    // A second put over it needs --force, as without an agent.
    fails_with(
        agent
            .cmd()
            .args(["put", "alice", "wallet", "seed"])
            .write_stdin("other"),
        "already holds a secret; pass --force",
    );
    agent
        .cmd()
        .args(["put", "--force", "alice", "wallet", "pin"])
        .write_stdin("4921")
        .assert()
        .success();
    let list = stdout_of(agent.cmd().arg("list"));
    let lines: Vec<_> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("alice\twallet\tpin\t4\t"), "{list}");
    assert!(lines[1].starts_with("alice\twallet\tseed\t6\t"), "{list}");
    let json = json_stdout(agent.cmd().args(["list", "--json"]));
    assert_eq!(json[1]["record"], "seed");
    fails_with(agent.cmd().args(["list", "bob"]), "no client \"bob\"");
    agent
        .cmd()
        .args(["rm", "alice/wallet/pin"])
        .assert()
        .success();
    fails_with(
        agent.cmd().args(["get", "alice/wallet/pin"]),
        "no record at alice/wallet/pin",
    );
    assert_eq!(stdout_of(agent.cmd().arg("list")).lines().count(), 1);

    // id, allow, peers and deny too.
    let id = stdout_of(agent.cmd().arg("id"));
    assert!(agent.addr.ends_with(id.trim_end()), "{id} {}", agent.addr);
    let peer = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";
    assert_eq!(
        stdout_of(
            agent
                .cmd()
                .args(["allow", peer, "--client", "alice", "--read"])
        ),
        format!("{peer}\talice\tread\n")
    );
    assert_eq!(
        stdout_of(
            agent
                .cmd()
                .args(["allow", peer, "--client", "alice", "--write"])
        ),
        format!("{peer}\talice\tread,write\n")
    );
    assert_eq!(
        stdout_of(agent.cmd().arg("peers")),
        format!("{peer}\talice\tread,write\n")
    );
    assert_eq!(agent.status()["peers"][0]["peer"], peer);
    assert_eq!(
        stdout_of(agent.cmd().args(["deny", peer])),
        format!("revoked 1 grant(s) of {peer}\n")
    );
    assert_eq!(stdout_of(agent.cmd().args(["peers", "--json"])), "[]\n");
    // A granted peer is one the agent syncs with, until it holds no grant.
    assert_eq!(agent.status()["peers"], serde_json::json!([]));

    // Stopped by SIGINT: cleanly, the socket gone, everything on disk.
    let socket = agent.socket();
    assert!(agent.stop().success());
    assert!(!socket.exists());
    assert_eq!(
        v.get("alice", "wallet", "seed").as_deref(),
        Some(&b"s3cret"[..])
    );
    assert_eq!(v.get("alice", "wallet", "pin"), None);
}

/// `history` and `restore` go through the agent with no password and print what they print
/// on the file; the restore is committed (readable through `get`) and never shows a value.
#[test]
fn history_and_restore_go_through_the_agent() {
    let v = Vault::new();
    let agent = Agent::start(&v, &[]);
    for value in ["first-canary", "second-canary"] {
        agent
            .cmd()
            .args(["put", "--force", "alice", "wallet", "seed"])
            .write_stdin(value)
            .assert()
            .success();
    }
    let versions = json_stdout(agent.cmd().args(["history", "alice/wallet/seed", "--json"]));
    let versions = versions.as_array().unwrap();
    let status: Vec<_> = versions
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["current", "overwritten"]);
    let listing = stdout_of(agent.cmd().args(["history", "alice/wallet/seed"]));
    assert!(!listing.contains("canary"), "{listing}");
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        listing.lines().next().unwrap().ends_with("\tcurrent"),
        "{listing}"
    );

    let first = versions[1]["version"].as_str().unwrap();
    let out = stdout_of(
        agent
            .cmd()
            .args(["restore", "alice", "wallet", "seed", &first[..8]]),
    );
    assert!(out.starts_with("restored alice/wallet/seed to "), "{out}");
    assert!(!out.contains("canary"), "{out}");
    assert_eq!(
        stdout_of(agent.cmd().args(["get", "alice/wallet/seed"])),
        "first-canary"
    );
    fails_with(
        agent
            .cmd()
            .args(["restore", "alice", "wallet", "seed", "00000000"]),
        "has no version 00000000",
    );
    fails_with(
        agent.cmd().args(["history", "alice/wallet/nothing"]),
        "no record at alice/wallet/nothing",
    );
    // The agent's answers match the file's once it is gone.
    let through_agent = stdout_of(agent.cmd().args(["history", "alice/wallet/seed", "--json"]));
    drop(agent);
    assert_eq!(
        stdout_of(v.cmd().args(["history", "alice/wallet/seed", "--json"])),
        through_agent
    );
}

#[test]
fn lock_wipes_the_key_and_unlock_asks_for_the_password_again() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"kept");
    let agent = Agent::start(&v, &[]);
    assert_eq!(agent.status()["locked"], false);
    agent.cmd().arg("lock").assert().success();
    assert_eq!(agent.status()["locked"], true);
    fails_with(
        agent.cmd().args(["get", "alice/wallet/seed"]),
        "locked: run `redoubt unlock`",
    );
    fails_with(
        agent.cmd().args(["put", "alice/wallet/x"]).write_stdin("v"),
        "locked",
    );
    // The locked agent still holds the file: a command that does not go through it waits and
    // then says the vault is in use (not tested here: 10 s); `id` is public and answers.
    assert!(
        agent
            .addr
            .ends_with(stdout_of(agent.cmd().arg("id")).trim_end())
    );
    // A wrong password leaves it locked.
    fails_with(
        agent.cmd().arg("unlock").env("REDOUBT_PASSWORD", "wrong"),
        "wrong password",
    );
    assert_eq!(agent.status()["locked"], true);
    agent
        .cmd()
        .arg("unlock")
        .env("REDOUBT_PASSWORD", vault::PASSWORD)
        .assert()
        .success();
    assert_eq!(agent.status()["locked"], false);
    assert_eq!(
        stdout_of(agent.cmd().args(["get", "alice/wallet/seed"])),
        "kept"
    );
    // It listens where it listened before.
    assert_eq!(agent.status()["listening"][0], agent.addr.as_str());
    assert!(agent.stop().success());
}

#[test]
fn an_idle_agent_locks_itself() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"kept");
    let agent = Agent::start(&v, &["--lock-after", "1s"]);
    assert_eq!(agent.status()["lock_after_seconds"], 1);
    // `status` does not count as use, so polling it lets the agent go idle.
    let deadline = Instant::now() + PATIENCE;
    while agent.status()["locked"] != true {
        assert!(Instant::now() < deadline, "the agent never locked itself");
        std::thread::sleep(Duration::from_millis(100));
    }
    fails_with(agent.cmd().args(["get", "alice/wallet/seed"]), "locked");
    agent
        .cmd()
        .arg("unlock")
        .env("REDOUBT_PASSWORD", vault::PASSWORD)
        .assert()
        .success();
    assert_eq!(
        stdout_of(agent.cmd().args(["get", "alice/wallet/seed"])),
        "kept"
    );
}

#[test]
fn without_an_agent_status_lock_and_unlock_say_so() {
    let v = Vault::new();
    let runtime = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = v.cmd();
        c.env("XDG_RUNTIME_DIR", runtime.path());
        c
    };
    assert_eq!(
        json_stdout(cmd().args(["status", "--json"]))["agent"],
        false
    );
    fails_with(cmd().arg("lock"), "no agent runs on");
    fails_with(cmd().arg("unlock"), "no agent runs on");
    // A second agent on the same vault is refused while the first runs.
    let agent = Agent::start(&v, &[]);
    fails_with(
        agent
            .cmd()
            .arg("agent")
            .env("REDOUBT_PASSWORD", vault::PASSWORD),
        "an agent already runs on",
    );
}

/// Connects to the socket named by `REDOUBT_TEST_SOCKET`, sends a `status` request and prints
/// the agent's answer: run by `a_connection_from_another_user_is_refused` in a child process
/// under another uid (ignored otherwise).
#[test]
#[ignore = "a helper that another test runs as another user"]
fn helper_ask_status() {
    let Some(path) = std::env::var_os("REDOUBT_TEST_SOCKET") else {
        return;
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request =
        redoubt_control::message::encode_request(&redoubt_control::Request::Status).unwrap();
    // A refused connection may be closed before the request is written: the answer is there
    // to read all the same.
    let _ = stream.write_all(&request);
    // One response frame (the agent keeps the connection open for another request).
    let mut head = [0u8; redoubt_control::HEADER_LEN];
    stream.read_exact(&mut head).unwrap();
    let mut payload = vec![0u8; redoubt_control::frame::header(&head).unwrap()];
    stream.read_exact(&mut payload).unwrap();
    let response = redoubt_control::message::decode_response(&payload).unwrap();
    println!("ANSWER {response:?}");
}

/// Runs [`helper_ask_status`] against `socket`, as `uid` when given; its output.
fn ask_status_as(socket: &Path, uid: Option<u32>) -> String {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "helper_ask_status",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("REDOUBT_TEST_SOCKET", socket);
    if let Some(uid) = uid {
        c.uid(uid).gid(uid);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn a_connection_from_another_user_is_refused() {
    if effective_uid() != 0 {
        eprintln!("skipped: switching to another uid needs root");
        return;
    }
    let v = Vault::new();
    let agent = Agent::start(&v, &[]);
    let socket = agent.socket();
    // Open the way to the socket for everyone (what a careless or hostile setup might do), so
    // that only the agent's peer-credential check stands between another user and it.
    for dir in socket.ancestors().skip(1).take(3) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The agent's own user is answered...
    let mine = ask_status_as(&socket, None);
    assert!(mine.contains("ANSWER Text("), "{mine}");
    assert!(mine.contains("\\\"locked\\\":false"), "{mine}");
    // ...another (nobody, 65534) gets a refusal and nothing else.
    let theirs = ask_status_as(&socket, Some(65534));
    assert!(theirs.contains("ANSWER Error { kind: Refused"), "{theirs}");
    assert!(theirs.contains("not uid 65534"), "{theirs}");
    assert!(!theirs.contains("peer_id"), "{theirs}");
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective uid.
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn without_an_agent_two_commands_wait_for_each_other() {
    let v = Vault::new();
    let runtime = tempfile::tempdir().unwrap();
    // The first command opens the vault, then waits for its secret on stdin.
    let mut first = v
        .process()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["put", "--force", "alice/wallet/seed"])
        .env("REDOUBT_CLIENT", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let file = std::fs::File::open(&v.path).unwrap();
        if matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)) {
            break;
        }
        drop(file);
        assert!(
            Instant::now() < deadline,
            "the first command never opened the vault"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second one waits for it (it has the vault file open to look at its lock)...
    let second = v
        .process()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["get", "alice/wallet/seed"])
        .env("REDOUBT_CLIENT", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let vault_file = v.path.canonicalize().unwrap();
    let fds = PathBuf::from(format!("/proc/{}/fd", second.id()));
    loop {
        let open = std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .any(|target| target == vault_file);
        if open {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second command never looked at the vault"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Without the wait it would fail now, while the first command holds the vault.
    std::thread::sleep(Duration::from_millis(300));
    // ...until the first one is done: then it reads what the first one stored.
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(b"written while you waited").unwrap();
    drop(stdin);
    assert!(first.wait().unwrap().success());
    let out = second.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"written while you waited");
}

#[test]
fn two_agents_keep_each_other_in_sync_by_themselves() {
    let (a, b) = (Vault::new(), Vault::new());
    let (a_id, b_id) = pair(&a, &b);
    a.put(
        "alice",
        "wallet",
        "before",
        b"written before either agent ran",
    );
    let (a_port, b_port) = (free_port(), free_port());
    let at = |port: u16, id: &str| format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}");
    let listen = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
    let agent_a = Agent::start(
        &a,
        &["--listen", &listen(a_port), "--peer", &at(b_port, &b_id)],
    );
    // B is not running yet: A's change waits for it, and A says so.
    put_through(&agent_a, "alice/wallet/early", "while b was away");
    let peer_of = |agent: &Agent<'_>| agent.status()["peers"][0].clone();
    let waiting = eventually("A tried B and failed", || {
        let p = peer_of(&agent_a);
        (p["reachable"] == false).then_some(p)
    });
    assert_eq!(waiting["peer"], b_id.as_str());
    assert!(
        waiting["changes_waiting"].as_u64().unwrap() >= 1,
        "{waiting}"
    );
    assert!(waiting["last_error"].is_string(), "{waiting}");
    let text = stdout_of(agent_a.cmd().arg("status"));
    assert!(
        text.contains(&format!("peer {b_id}: unreachable")),
        "{text}"
    );

    // B starts and syncs with A at once: what A had, B has, with no `sync` run by anyone.
    let agent_b = Agent::start(
        &b,
        &["--listen", &listen(b_port), "--peer", &at(a_port, &a_id)],
    );
    eventually("B has A's records", || {
        (value(&agent_b, "alice/wallet/before")?.as_str() == "written before either agent ran"
            && value(&agent_b, "alice/wallet/early")?.as_str() == "while b was away")
            .then_some(())
    });
    // A change on either side is on the other soon after.
    put_through(&agent_a, "alice/wallet/seed", "from a");
    arrives(&agent_b, "alice/wallet/seed", "from a", "B has A's put");
    put_through(&agent_b, "alice/wallet/seed", "from b");
    arrives(&agent_a, "alice/wallet/seed", "from b", "A has B's put");
    agent_a
        .cmd()
        .args(["rm", "alice/wallet/seed"])
        .assert()
        .success();
    eventually("B has A's deletion", || {
        value(&agent_b, "alice/wallet/seed").is_none().then_some(())
    });
    // In the end nothing waits, and each has synced with the other.
    for (agent, other) in [(&agent_a, &b_id), (&agent_b, &a_id)] {
        let p = eventually("nothing waits", || {
            let p = peer_of(agent);
            (p["changes_waiting"] == 0 && p["reachable"] == true).then_some(p)
        });
        assert_eq!(p["peer"], other.as_str());
        assert!(p["last_sync_ms"].is_u64(), "{p}");
        assert!(p["last_error"].is_null(), "{p}");
    }
    assert!(agent_a.stop().success());
    assert!(agent_b.stop().success());
}

#[test]
fn sync_goes_through_the_agent_which_then_keeps_the_peer_in_sync() {
    let (a, b) = (Vault::new(), Vault::new());
    let (a_id, _) = pair(&a, &b);
    a.put("alice", "wallet", "seed", b"from a");
    // Neither agent knows where the other is.
    let agent_a = Agent::start(&a, &[]);
    let agent_b = Agent::start(&b, &[]);
    let out =
        json_stdout(
            agent_b
                .cmd()
                .args(["sync", &agent_a.addr, "--client", "alice", "--json"]),
        );
    assert_eq!(out["pulled"]["added"], 1, "{out}");
    assert_eq!(
        value(&agent_b, "alice/wallet/seed").as_deref(),
        Some("from a")
    );
    // B's agent keeps where it reached A: by peer id alone, and by itself after a change.
    let out = stdout_of(agent_b.cmd().args(["sync", "--peer", &a_id]));
    assert!(out.starts_with("pulled: added 0"), "{out}");
    put_through(&agent_b, "alice/wallet/pin", "4921");
    arrives(&agent_a, "alice/wallet/pin", "4921", "A has B's put");
    // A sync's refusal reads as without an agent.
    fails_with(
        agent_b
            .cmd()
            .args(["sync", &agent_a.addr, "--client", "bob"]),
        "no write grant for peer",
    );
}

#[test]
fn an_agent_started_locked_opens_the_vault_at_the_first_unlock() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"kept");
    let runtime = tempfile::tempdir().unwrap();
    let mut child = v
        .process()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("REDOUBT_PASSWORD")
        .args(["agent", "--no-discovery", "--locked"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cmd = || {
        let mut c = v.cmd();
        c.env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("REDOUBT_PASSWORD");
        c
    };
    let status = eventually("the locked agent answers", || {
        let s = json_stdout(cmd().args(["status", "--json"]));
        (s["agent"] == true).then_some(s)
    });
    assert_eq!(status["locked"], true, "{status}");
    assert!(status["peer_id"].is_null(), "{status}");
    fails_with(cmd().args(["get", "alice/wallet/seed"]), "locked");
    fails_with(cmd().arg("id"), "locked");
    cmd()
        .arg("unlock")
        .env("REDOUBT_PASSWORD", vault::PASSWORD)
        .assert()
        .success();
    // Now it listens, and says where.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("listening on /ip4/127.0.0.1/tcp/"),
        "{line}"
    );
    assert_eq!(stdout_of(cmd().args(["get", "alice/wallet/seed"])), "kept");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_agent_sends_its_changes_to_a_peer_that_dialed_it() {
    let (a, b) = (Vault::new(), Vault::new());
    let (a_id, b_id) = pair(&a, &b);
    // A does not know where B is; B knows where A is and dials it when it starts.
    let agent_a = Agent::start(&a, &[]);
    let agent_b = Agent::start(&b, &["--peer", &agent_a.addr]);
    eventually("B synced with A", || {
        (agent_b.status()["peers"][0]["reachable"] == true).then_some(())
    });
    // A's change goes out over the connection B opened.
    put_through(&agent_a, "alice/wallet/seed", "from a");
    arrives(&agent_b, "alice/wallet/seed", "from a", "B has A's put");
    let p = agent_a.status()["peers"][0].clone();
    assert_eq!(p["peer"], b_id.as_str());
    // A was never told where B is: B announced where it listens (identify), and A's dial
    // there reached B (a claim is kept only once checked so).
    eventually("A knows where B listens", || {
        let p = agent_a.status()["peers"][0].clone();
        (p["addresses"] == serde_json::json!([agent_b.addr])).then_some(())
    });
    assert_eq!(agent_b.status()["peers"][0]["peer"], a_id.as_str());
}

#[test]
fn an_agent_that_was_dialed_dials_its_peer_back_from_the_book_after_both_restart() {
    let (a, b) = (Vault::new(), Vault::new());
    let (_, b_id) = pair(&a, &b);
    let listen = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
    let b_port = free_port();
    // B dials A; A keeps where B listens, as B announced it, in its vault.
    let agent_a = Agent::start(&a, &["--listen", &listen(free_port())]);
    let agent_b = Agent::start(&b, &["--listen", &listen(b_port), "--peer", &agent_a.addr]);
    let b_addr = agent_b.addr.clone();
    let seen = |peers: &serde_json::Value| {
        let at = &peers[0]["addresses"][0];
        (at["addr"] == b_addr.as_str() && at["last_seen"].as_u64() > Some(1_700_000_000))
            .then_some(())
    };
    eventually("A's peers show B's address", || {
        seen(&json_stdout(agent_a.cmd().args(["peers", "--json"])))
    });
    assert!(agent_a.stop().success() && agent_b.stop().success());
    assert_eq!(
        seen(&json_stdout(a.cmd().args(["peers", "--json"]))),
        Some(())
    );
    let text = String::from_utf8(a.cmd().arg("peers").output().unwrap().stdout).unwrap();
    assert!(
        text.contains(&format!("{b_id}\tseen at\t{b_addr}\t")),
        "{text}"
    );
    b.put(
        "alice",
        "wallet",
        "away",
        b"written while both were stopped",
    );
    // Both start again, told nothing; A on a new port, so B's book cannot reach it: only A's
    // book, dialing B where B listened, brings them together.
    let agent_b = Agent::start(&b, &["--listen", &listen(b_port)]);
    let agent_a = Agent::start(&a, &["--listen", &listen(free_port())]);
    arrives(
        &agent_a,
        "alice/wallet/away",
        "written while both were stopped",
        "A has B's",
    );
    // The pull merged it; A's own sync (pull, then push) is done once A calls B reachable.
    eventually("A's sync with B ended well", || {
        (agent_a.status()["peers"][0]["reachable"] == true).then_some(())
    });
    assert!(agent_a.stop().success() && agent_b.stop().success());
}
