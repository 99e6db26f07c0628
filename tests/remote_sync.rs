//! Real nodes on loopback: every mode, refusals, a hostile or broken responder, and
//! convergence through a middle node.

use redoubt_node::Error;
use redoubt_protocol::Mode;
use redoubt_tests::{Fault, Scripted, TestNode};
use redoubt_vault::Location;

fn full(client: &str) -> Mode {
    Mode::Full {
        client: client.as_bytes().to_vec(),
    }
}

/// An import that names no client: every client our grants let move (the node names them on
/// the wire).
fn import() -> Mode {
    Mode::Import { clients: vec![] }
}

/// Enough data for several chunks (each closes at 1 MiB).
fn fill_large(node: &TestNode, client: &str) {
    for i in 0..5 {
        node.put(client, "big", &format!("r{i}"), &vec![i as u8; 700 * 1024]);
    }
}

#[tokio::test]
async fn full_pull_push_and_sync_converge_with_deletes_and_edits() -> anyhow::Result<()> {
    let (desktop, phone) = TestNode::two_trusting("alice").await?;
    desktop.put("alice", "wallet", "seed", b"seed-1");
    desktop.put("alice", "wallet", "pin", b"1234");

    let pulled = phone.handle.pull(&desktop.addr(), full("alice")).await?;
    assert_eq!((pulled.report.added, pulled.records), (2, 2));
    assert_eq!(
        phone.get("alice", "wallet", "seed").as_deref(),
        Some(&b"seed-1"[..])
    );

    // Both sides change: a delete on the phone, an edit on each side of another record.
    phone.delete("alice", "wallet", "pin");
    desktop.put("alice", "wallet", "seed", b"seed-desktop");
    phone.put("alice", "wallet", "seed", b"seed-phone");
    phone.put("alice", "notes", "wifi", b"hunter2");

    let out = desktop
        .handle
        .sync(&phone.addr(), full("alice"), None)
        .await?;
    assert!(
        out.pulled.report.deleted == 1 && out.pulled.report.added == 1,
        "{out:?}"
    );
    assert_eq!(
        desktop.digest(),
        phone.digest(),
        "one sync leaves both sides equal"
    );
    assert_eq!(
        desktop.get("alice", "wallet", "pin"),
        None,
        "the deletion propagated"
    );
    assert_eq!(
        desktop.get("alice", "wallet", "seed").as_deref(),
        Some(&b"seed-phone"[..]),
        "the later edit won on both sides"
    );

    // A push alone: desktop asks the phone to pull.
    desktop.put("alice", "wallet", "new", b"n");
    let pushed = desktop.handle.push(&phone.addr(), full("alice")).await?;
    assert_eq!(pushed.added, 1);
    assert_eq!(desktop.digest(), phone.digest());
    Ok(())
}

#[tokio::test]
async fn partial_and_import_modes() -> anyhow::Result<()> {
    let server = TestNode::start(1).await?;
    let fresh = TestNode::start(2).await?;
    server.put("alice", "keep", "1", b"a");
    server.put("alice", "keep", "2", b"b");
    server.put("alice", "other", "1", b"c");
    server.put("bob", "v", "1", b"d");
    server.put("carol", "v", "1", b"e");
    server.allow(&fresh, "alice", true, false);
    server.allow(&fresh, "bob", true, false);
    // The fresh node lets the server write every client it offers, carol included: the
    // server's grants decide that carol does not leave it.
    for client in ["alice", "bob", "carol"] {
        fresh.allow(&server, client, false, true);
    }

    let partial = Mode::Partial {
        client: b"alice".to_vec(),
        vaults: vec![b"keep".to_vec()],
        records: vec![],
    };
    let out = fresh.handle.pull(&server.addr(), partial).await?;
    assert_eq!(out.report.added, 2);
    assert_eq!(fresh.get("alice", "other", "1"), None);

    let by_record = Mode::Partial {
        client: b"alice".to_vec(),
        vaults: vec![],
        records: vec![Location::new("other", "1")?],
    };
    assert_eq!(
        fresh
            .handle
            .pull(&server.addr(), by_record)
            .await?
            .report
            .added,
        1
    );

    let out = fresh.handle.pull(&server.addr(), import()).await?;
    assert_eq!(
        out.report.added, 1,
        "bob's record; alice's were already here"
    );
    assert_eq!(fresh.get("carol", "v", "1"), None, "carol is not readable");
    assert_eq!(fresh.len(), 4);
    Ok(())
}

#[tokio::test]
async fn without_a_grant_nothing_is_sent() -> anyhow::Result<()> {
    let server = TestNode::start(1).await?;
    let stranger = TestNode::start(2).await?;
    server.put("alice", "wallet", "seed", b"secret");
    server.allow(&stranger, "bob", true, false);
    stranger.allow(&server, "alice", true, true);

    let err = stranger
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert!(err.to_string().starts_with("permission denied"), "{err}");
    assert!(stranger.is_empty(), "the requester received no record");

    // The stranger asks for alice, the only client it lets the server write; the server lets
    // it read bob only: nothing both tables allow.
    let err = stranger
        .handle
        .pull(&server.addr(), import())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert!(stranger.is_empty(), "import sees only readable clients");

    // A push into a node that gave us no write grant is refused too.
    stranger.put("alice", "x", "y", b"z");
    let err = stranger
        .handle
        .push(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert_eq!(server.get("alice", "x", "y"), None);
    Ok(())
}

#[tokio::test]
async fn a_tampered_chunk_is_refused_and_nothing_of_it_is_merged() -> anyhow::Result<()> {
    let server = TestNode::start_with_hook(1, Some(Scripted::new(Fault::TamperChunk))).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    fill_large(&server, "alice");
    let err = client
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
    assert!(err.to_string().contains("tampered stream"), "{err}");
    assert!(client.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_truncated_stream_is_reported_and_a_resync_converges() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::DropAtChunk(1));
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    fill_large(&server, "alice");

    let err = client
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Truncated { chunks: 1 }), "{err}");
    let partial = client.len();
    assert!(
        partial > 0 && partial < 5,
        "only the verified first chunk was merged: {partial}"
    );

    hook.set(Fault::None);
    let out = client.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(
        out.records as usize,
        5 - partial,
        "the re-sync sends only what is missing"
    );
    assert_eq!(client.digest(), server.digest());
    Ok(())
}

#[tokio::test]
async fn a_chunk_replayed_from_an_earlier_session_is_refused() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::ReplayChunk);
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    server.put("alice", "v", "1", b"first");
    client.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(client.len(), 1);

    server.put("alice", "v", "2", b"second");
    hook.set(Fault::ReplayChunk);
    let err = client
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
    assert_eq!(client.get("alice", "v", "2"), None);
    Ok(())
}

#[tokio::test]
async fn an_oversized_frame_is_refused_before_it_is_read() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::Oversized);
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    server.put("alice", "v", "1", b"x");
    let err = client
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("frame too large"), "{err}");
    assert!(client.is_empty());
    hook.set(Fault::None);
    client.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(client.digest(), server.digest(), "both nodes carry on");
    Ok(())
}

#[tokio::test]
async fn unreachable_peers_and_bad_addresses_get_clear_errors() -> anyhow::Result<()> {
    let a = TestNode::start(1).await?;
    let gone = TestNode::start(2).await?;
    a.allow(&gone, "alice", false, true);
    let addr = gone.addr();
    gone.handle.shutdown().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let err = a.handle.pull(&addr, full("alice")).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    let no_peer: redoubt_node::libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse()?;
    let err = a.handle.pull(&no_peer, full("alice")).await.unwrap_err();
    assert!(err.to_string().contains("/p2p/PEER_ID"), "{err}");
    Ok(())
}

#[tokio::test]
async fn three_nodes_in_a_line_converge_through_the_middle() -> anyhow::Result<()> {
    let a = TestNode::start(1).await?;
    let b = TestNode::start(2).await?;
    let c = TestNode::start(3).await?;
    for (x, y) in [(&a, &b), (&b, &a), (&b, &c), (&c, &b)] {
        x.allow(y, "alice", true, true);
    }
    a.put("alice", "v", "from-a", b"a");
    c.put("alice", "v", "from-c", b"c");
    c.put("alice", "v", "doomed", b"d");
    // A–B, B–C, then A–B again: A learns C's writes only through B.
    a.handle.sync(&b.addr(), full("alice"), None).await?;
    b.handle.sync(&c.addr(), full("alice"), None).await?;
    a.handle.sync(&b.addr(), full("alice"), None).await?;
    assert!(a.digest() == b.digest() && b.digest() == c.digest());
    assert_eq!(a.get("alice", "v", "from-c").as_deref(), Some(&b"c"[..]));

    a.delete("alice", "v", "doomed");
    a.handle.sync(&b.addr(), full("alice"), None).await?;
    c.handle.sync(&b.addr(), full("alice"), None).await?;
    assert!(a.digest() == b.digest() && b.digest() == c.digest());
    assert_eq!(
        c.get("alice", "v", "doomed"),
        None,
        "the deletion crossed the line"
    );
    Ok(())
}

#[tokio::test]
async fn a_silent_peer_times_out() -> anyhow::Result<()> {
    let server = TestNode::start_with_hook(1, Some(Scripted::new(Fault::Stall))).await?;
    let client = TestNode::start_with(2, None, std::time::Duration::from_secs(1)).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    server.put("alice", "v", "1", b"x");
    let err = client
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(client.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_pull_into_a_sink_hands_over_verified_records_and_leaves_the_store_alone()
-> anyhow::Result<()> {
    let server = TestNode::start(1).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    fill_large(&server, "alice");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = seen.clone();
    let sink = Box::new(move |c: &[u8], r: redoubt_vault::Record| {
        into.lock()
            .unwrap()
            .push((c.to_vec(), r.location().record_path().to_vec()));
    });
    let out = client
        .handle
        .pull_into(&server.addr(), full("alice"), sink)
        .await?;
    assert_eq!((out.records, out.report.changed()), (5, false));
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert!(client.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_connection_dropped_mid_stream_then_a_resync_converges() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::DropAtChunk(2));
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, true);
    client.allow(&server, "alice", true, true);
    fill_large(&server, "alice");
    client.put("alice", "mine", "1", b"client side");
    let err = client
        .handle
        .sync(&server.addr(), full("alice"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Truncated { chunks: 2 }), "{err}");
    // Both stores hold only whole, verified records; the next sync completes the work.
    assert!(client.len() > 1 && client.len() < 6, "{}", client.len());
    hook.set(Fault::None);
    client
        .handle
        .sync(&server.addr(), full("alice"), None)
        .await?;
    assert_eq!(client.digest(), server.digest());
    assert_eq!(
        server.get("alice", "mine", "1").as_deref(),
        Some(&b"client side"[..])
    );
    Ok(())
}

#[tokio::test]
async fn imports_never_send_or_take_clients_outside_the_grants() -> anyhow::Result<()> {
    let (server, laptop) = TestNode::two_trusting("alice").await?;
    // The laptop would take "private" from the server too; the server lets it read alice only.
    laptop.allow(&server, "private", false, true);
    server.put("alice", "v", "1", b"a");
    for i in 0..2000 {
        laptop.put("private", "v", &format!("r{i}"), b"p");
    }
    // The laptop's import pull waits for the server's scope ("alice") before sending shapes:
    // its 2 000 shapes of "private" (200 kB) never leave it.
    let out = laptop.handle.pull(&server.addr(), import()).await?;
    assert_eq!(out.report.added, 1);
    assert!(out.bytes_sent < 2_000, "sent {} bytes", out.bytes_sent);
    // Pushing everything offers every client without naming them; the server takes only what
    // it lets the laptop write.
    laptop.put("alice", "v", "2", b"b");
    let pushed = laptop.handle.push(&server.addr(), import()).await?;
    assert_eq!(pushed.added, 1);
    assert_eq!(server.get("private", "v", "r0"), None);
    assert_eq!(server.len(), 2);
    Ok(())
}

/// A node that speaks only `/redoubt/sync/1` (as nodes before version 2 did) still syncs with
/// a newer node both ways: the protocol negotiation picks version 1 and the newer node
/// retries its pull with every shape. Records with lineage need version 4.
#[tokio::test]
async fn an_older_peer_still_syncs_both_ways() -> anyhow::Result<()> {
    let strict = TestNode::start(3).await?;
    let new = TestNode::start_allowing_unbound(1, None).await?;
    let old = TestNode::start_v1_only(2).await?;
    for (x, y) in [(&new, &old), (&old, &new), (&strict, &old), (&old, &strict)] {
        x.allow(y, "alice", true, true);
    }
    new.put("alice", "v", "from-new", b"n");
    old.put("alice", "v", "from-old", b"o");
    // By default a node neither runs nor serves sessions that bind no peer ids.
    let err = strict
        .handle
        .pull(&old.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unbound { version: 1, .. }), "{err}");
    let err = old
        .handle
        .pull(&strict.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("only sessions bound to both peer ids"),
        "{err}"
    );
    assert!(strict.is_empty());
    // The new node pulls from and pushes to the old one, then the old one does the same.
    let out = new.handle.sync(&old.addr(), full("alice"), None).await?;
    assert_eq!((out.pulled.records, out.pushed.added), (1, 1));
    assert_eq!(new.digest(), old.digest());
    new.put("alice", "v", "second", b"2");
    old.handle.sync(&new.addr(), full("alice"), None).await?;
    assert_eq!(new.digest(), old.digest());
    assert_eq!(old.get("alice", "v", "second"), Some(b"2".to_vec()));
    // A deletion names the version it replaced (lineage), which versions 1 to 3 cannot carry:
    // the session refuses it with a clear error instead of sending what the other side could
    // neither verify nor converge on (a node of an older build never writes lineage).
    old.delete("alice", "v", "from-new");
    let err = old
        .handle
        .sync(&new.addr(), full("alice"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/redoubt/sync/4"), "{err}");
    assert_eq!(new.get("alice", "v", "from-new"), Some(b"n".to_vec()));
    Ok(())
}

/// Over a live connection, a pull between two large replicas that differ in a few records
/// sends a few kilobytes, not a hundred bytes per record.
#[tokio::test]
async fn a_live_pull_sends_bytes_for_the_difference_not_the_vault() -> anyhow::Result<()> {
    let (server, client) = TestNode::two_trusting("alice").await?;
    for i in 0..3000 {
        server.put("alice", "v", &format!("r{i}"), b"x");
    }
    client.handle.pull(&server.addr(), full("alice")).await?;
    for i in 0..5 {
        server.put("alice", "v", &format!("new{i}"), b"y");
        client.put("alice", "w", &format!("mine{i}"), b"z");
    }
    let out = client.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(out.records, 5);
    assert!(
        out.bytes_sent < 2_000,
        "{} bytes sent for 3000 records",
        out.bytes_sent
    );
    // Once the server has the client's five too, the sets are equal and one round trip of
    // about a hundred bytes settles it.
    client
        .handle
        .sync(&server.addr(), full("alice"), None)
        .await?;
    let again = client.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(again.records, 0);
    assert!(again.bytes_sent + again.bytes_received < 200, "{again:?}");
    Ok(())
}

/// A peer whose connection drops mid-stream again and again is not locked out: the sessions it
/// left behind end with its connection instead of counting against its limit of four until
/// they idle out (found by the reliability suite's connection cuts).
#[tokio::test]
async fn repeated_cuts_do_not_lock_a_peer_out() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::DropAtChunk(1));
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let client = TestNode::start(2).await?;
    server.allow(&client, "alice", true, false);
    client.allow(&server, "alice", false, true);
    for _ in 0..redoubt_node::MAX_SESSIONS_PER_PEER + 2 {
        // New versions each time, so the complement always spans several chunks.
        fill_large(&server, "alice");
        hook.set(Fault::DropAtChunk(1));
        let err = client
            .handle
            .pull(&server.addr(), full("alice"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
        // Let the server see the connection close.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    hook.set(Fault::None);
    client.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(client.digest(), server.digest());
    Ok(())
}

/// Records every frame a node hands to libp2p (requests and responses) and passes it on.
#[derive(Default)]
struct Tap(std::sync::Mutex<Vec<Vec<u8>>>);

impl redoubt_node::ResponseHook for Tap {
    fn outgoing(
        &self,
        _: &redoubt_node::libp2p::PeerId,
        frame: &mut Vec<u8>,
    ) -> redoubt_node::HookAction {
        self.0.lock().unwrap().push(frame.clone());
        redoubt_node::HookAction::Send
    }

    fn outgoing_request(&self, _: &redoubt_node::libp2p::PeerId, frame: &[u8]) {
        self.0.lock().unwrap().push(frame.to_vec());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A known secret never appears in the bytes the sync protocol hands to libp2p, in either
/// direction, in either protocol version, nor in the error of a failed pull: values leave the
/// node only inside session-sealed chunks, whatever Noise adds on top.
#[tokio::test]
async fn a_canary_secret_never_reaches_libp2p_unsealed() -> anyhow::Result<()> {
    const CANARY: &[u8] = b"CANARY-7f3a9c-do-not-leak";
    let taps = [
        std::sync::Arc::new(Tap::default()),
        std::sync::Arc::new(Tap::default()),
    ];
    let a = TestNode::start_allowing_unbound(1, Some(taps[0].clone())).await?;
    let b = TestNode::start_with_hook(2, Some(taps[1].clone())).await?;
    let old = TestNode::start_v1_only(3).await?;
    for (x, y) in [(&a, &b), (&b, &a), (&a, &old), (&old, &a)] {
        x.allow(y, "alice", true, true);
    }
    a.put("alice", "wallet", "seed", CANARY);
    b.put("alice", "wallet", "pin", &[CANARY, b" and more"].concat());
    a.put(
        "alice",
        "big",
        "blob",
        &[CANARY.repeat(40_000), b"end".to_vec()].concat(),
    );
    // Version 2 both ways, then version 1 with an older node, both ways.
    b.handle.sync(&a.addr(), full("alice"), None).await?;
    old.handle.sync(&a.addr(), full("alice"), None).await?;
    a.handle.sync(&old.addr(), full("alice"), None).await?;
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.digest(), old.digest());
    let mut frames = 0;
    for tap in &taps {
        for frame in tap.0.lock().unwrap().iter() {
            frames += 1;
            assert!(
                !contains(frame, CANARY),
                "a frame of {} bytes carries the secret",
                frame.len()
            );
        }
    }
    assert!(frames > 10, "the taps saw {frames} frames");
    // A failed pull's error does not carry it either.
    let hook = Scripted::new(Fault::TamperChunk);
    let evil = TestNode::start_with_hook(4, Some(hook)).await?;
    evil.allow(&b, "alice", true, false);
    b.allow(&evil, "alice", false, true);
    evil.put("alice", "wallet", "other", CANARY);
    let err = b
        .handle
        .pull(&evil.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains(std::str::from_utf8(CANARY)?),
        "{err}"
    );
    assert!(
        !format!("{err:?}").contains(std::str::from_utf8(CANARY)?),
        "{err:?}"
    );
    Ok(())
}

/// A peer whose clock runs 80 years ahead cannot pin a location or freeze our clock: its
/// record is refused, counted and left out, and our next write carries our own time.
#[tokio::test]
async fn a_record_stamped_far_ahead_is_refused_and_never_observed() -> anyhow::Result<()> {
    let eighty_years_ms = 80 * 365 * 24 * 3600 * 1000;
    let far = redoubt_vault::now_ms() + eighty_years_ms;
    let mut ahead = redoubt_vault::Instance::new(redoubt_vault::NodeId::from_bytes([1; 16]));
    ahead.write(
        b"alice",
        &Location::new("wallet", "pin")?,
        redoubt_vault::SecretValue::new(b"written before the clock jumped".to_vec()),
    )?;
    ahead.write_at(
        b"alice",
        &Location::new("wallet", "seed")?,
        redoubt_vault::SecretValue::new(b"from the future".to_vec()),
        far,
    )?;
    let vault = redoubt_node::Vault::in_memory(ahead, Default::default())?;
    let future = TestNode::start_vault(TestNode::loopback_config()?, vault).await?;
    let honest = TestNode::start(2).await?;
    future.allow(&honest, "alice", true, true);
    honest.allow(&future, "alice", true, true);
    let out = honest.handle.pull(&future.addr(), full("alice")).await?;
    assert_eq!((out.report.added, out.report.refused_ahead), (1, 1));
    assert_eq!(honest.get("alice", "wallet", "seed"), None);
    let seed = Location::new("wallet", "seed")?;
    let stamp = honest.handle.write(|v| {
        v.put(
            b"alice",
            &seed,
            redoubt_vault::SecretValue::new(b"now".to_vec()),
        )
    })?;
    assert!(stamp.wall_ms < far, "our clock did not jump to the future");
    Ok(())
}

/// A responder's `Fallback` alone does not make a requester send every shape of a scope its
/// local policy keeps from going out as shapes; within the policy the pull falls back and
/// converges.
#[tokio::test]
async fn a_fallback_goes_out_as_shapes_only_within_the_local_policy() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::AnswerFallback);
    let server = TestNode::start_with_hook(1, Some(hook)).await?;
    let strict =
        TestNode::start_with_fallback(2, redoubt_protocol::ShapeFallback { max_shapes: 10 })
            .await?;
    let lenient = TestNode::start(3).await?;
    for node in [&strict, &lenient] {
        server.allow(node, "alice", true, false);
        node.allow(&server, "alice", false, true);
        for i in 0..20 {
            node.put("alice", "mine", &format!("r{i}"), b"x");
        }
    }
    server.put("alice", "v", "1", b"a");
    let err = strict
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
    assert_eq!(strict.get("alice", "v", "1"), None);
    let out = lenient.handle.pull(&server.addr(), full("alice")).await?;
    assert_eq!(out.report.added, 1, "fell back to shapes and converged");
    Ok(())
}

/// Revokes every right of `peer` on `client` in the vault of the node `handle` runs (nothing
/// when none is left).
fn revoke(handle: &redoubt_node::Handle, peer: redoubt_node::libp2p::PeerId, client: &str) {
    handle
        .write(|v| v.revoke(&peer, Some(client.as_bytes())))
        .unwrap_or_else(|e| panic!("revoke: {e}"));
}

/// Our write grants narrow between a sketched pull and its fallback (revoked while the
/// responder's `Fallback` is on its way): the retry by shapes asks only for the clients still
/// writable, and takes nothing of the revoked one.
#[tokio::test]
async fn a_fallback_retry_asks_only_for_what_is_still_writable() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::AnswerFallback);
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let node = TestNode::start(2).await?;
    for client in ["alice", "bob"] {
        server.allow(&node, client, true, false);
        node.allow(&server, client, false, true);
        server.put(client, "v", "1", client.as_bytes());
    }
    let (handle, revoked) = (node.handle.clone(), server.peer());
    hook.on_fallback(move || revoke(&handle, revoked, "bob"));
    let out = node.handle.pull(&server.addr(), import()).await?;
    assert_eq!(out.report.added, 1, "only alice was asked for again");
    assert_eq!(node.get("alice", "v", "1"), Some(b"alice".to_vec()));
    assert_eq!(node.get("bob", "v", "1"), None);
    // Revoked from the start, nothing of it is asked for: the import covers alice alone.
    let out = node.handle.pull(&server.addr(), import()).await?;
    assert_eq!(out.report.added, 0);
    Ok(())
}

/// A grant revoked before the fallback's retry ends the pull there, merging nothing: a full
/// pull fails as a pull of a client we may not write does before any byte leaves; an import
/// with no client left ends empty.
#[tokio::test]
async fn a_fallback_after_the_grant_was_revoked_merges_nothing() -> anyhow::Result<()> {
    let hook = Scripted::new(Fault::AnswerFallback);
    let server = TestNode::start_with_hook(1, Some(hook.clone())).await?;
    let node = TestNode::start(2).await?;
    server.allow(&node, "alice", true, false);
    node.allow(&server, "alice", false, true);
    server.put("alice", "v", "1", b"a");
    let (handle, revoked) = (node.handle.clone(), server.peer());
    hook.on_fallback(move || revoke(&handle, revoked, "alice"));
    let err = node
        .handle
        .pull(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotGranted { .. }), "{err}");
    assert_eq!(node.get("alice", "v", "1"), None);
    assert!(node.is_empty());
    // An import whose every client was revoked ends without error, and without a retry.
    node.allow(&server, "alice", false, true);
    let out = node.handle.pull(&server.addr(), import()).await?;
    assert_eq!((out.records, out.report.added), (0, 0));
    assert!(node.is_empty());
    Ok(())
}
