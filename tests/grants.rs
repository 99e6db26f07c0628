//! Our grants decide what leaves us and what enters us, whoever dialed: a test per direction
//! (pull, push, the pull a push invites) and per mode (full, partial, import), on real nodes
//! on loopback. And "pushed" means durable: a node answers a push only after its store's
//! commit returned.

use std::sync::{Arc, Mutex};

use redoubt_node::{
    Error, NodeConfig, Quota, Vault, libp2p::identity::Keypair, spawn, store::Store,
};
use redoubt_protocol::Mode;
use redoubt_tests::{FailSwitch, FailingBackend, TestNode};
use redoubt_vault::{AccessTable, Instance, Location, NodeId};

fn full(client: &str) -> Mode {
    Mode::Full {
        client: client.as_bytes().to_vec(),
    }
}

fn partial(client: &str, vault: &str) -> Mode {
    Mode::Partial {
        client: client.as_bytes().to_vec(),
        vaults: vec![vault.as_bytes().to_vec()],
        records: vec![],
    }
}

fn import() -> Mode {
    Mode::Import { clients: vec![] }
}

fn not_granted(err: &Error, want_right: &str, want_client: &str) -> bool {
    matches!(err, Error::NotGranted { right, client, .. } if *right == want_right && client == want_client)
}

/// Two nodes that each hold c1 and c2 (one record each, under vault "v").
async fn pair_holding_two_clients() -> anyhow::Result<(TestNode, TestNode)> {
    let a = TestNode::start(1).await?;
    let b = TestNode::start(2).await?;
    for (n, name) in [(&a, "a"), (&b, "b")] {
        for c in ["c1", "c2"] {
            n.put(c, "v", &format!("from-{name}"), name.as_bytes());
        }
    }
    Ok((a, b))
}

#[tokio::test]
async fn a_pull_takes_only_clients_we_let_the_peer_write() -> anyhow::Result<()> {
    let (a, b) = pair_holding_two_clients().await?;
    // B would serve both; A lets B write c1 only.
    for c in ["c1", "c2"] {
        b.allow(&a, c, true, true);
    }
    a.allow(&b, "c1", true, true);

    for mode in [full("c2"), partial("c2", "v")] {
        let err = a.handle.pull(&b.addr(), mode).await.unwrap_err();
        assert!(not_granted(&err, "write", "c2"), "{err}");
    }
    let out = a.handle.pull(&b.addr(), import()).await?;
    assert_eq!(out.report.added, 1, "c1 only");
    assert!(a.get("c1", "v", "from-b").is_some());
    assert_eq!(a.get("c2", "v", "from-b"), None, "B's c2 never entered A");

    // An import that names a client without the grant fails by name.
    let named = Mode::Import {
        clients: vec![b"c1".to_vec(), b"c2".to_vec()],
    };
    let err = a.handle.pull(&b.addr(), named).await.unwrap_err();
    assert!(not_granted(&err, "write", "c2"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_pull_with_no_write_grant_at_all_moves_nothing() -> anyhow::Result<()> {
    let (a, b) = pair_holding_two_clients().await?;
    for c in ["c1", "c2"] {
        b.allow(&a, c, true, true);
    }
    let before = a.digest();
    let out = a.handle.pull(&b.addr(), import()).await?;
    assert_eq!((out.records, out.bytes_sent), (0, 0), "nothing was asked");
    assert_eq!(a.digest(), before);
    Ok(())
}

/// The reproduction from issue 11, on the library: A holds c1 and c2, grants B read and write
/// on c1; B grants A write on c1 and c2; A's sync used to push c2 on B's word.
#[tokio::test]
async fn a_push_offers_only_clients_we_let_the_peer_read() -> anyhow::Result<()> {
    let (a, b) = pair_holding_two_clients().await?;
    a.allow(&b, "c1", true, true);
    for c in ["c1", "c2"] {
        b.allow(&a, c, false, true);
    }
    b.allow(&a, "c1", true, true);

    let out = a.handle.sync(&b.addr(), import(), None).await?;
    assert_eq!(out.pushed.added, 1, "c1 only");
    assert_eq!(out.pulled.report.added, 1, "c1 only");
    assert!(b.get("c1", "v", "from-a").is_some());
    assert_eq!(b.get("c2", "v", "from-a"), None, "A's c2 never left A");

    for mode in [full("c2"), partial("c2", "v")] {
        let err = a.handle.push(&b.addr(), mode.clone()).await.unwrap_err();
        assert!(not_granted(&err, "read", "c2"), "{err}");
        // A named client needs both grants for a sync, checked before anything moves.
        let err = a.handle.sync(&b.addr(), mode, None).await.unwrap_err();
        assert!(not_granted(&err, "write", "c2"), "{err}");
    }
    assert_eq!(b.get("c2", "v", "from-a"), None);
    Ok(())
}

#[tokio::test]
async fn an_invited_pull_takes_only_what_the_invited_node_lets_the_pusher_write()
-> anyhow::Result<()> {
    let (a, b) = pair_holding_two_clients().await?;
    // A offers both clients; B lets A write c1 only.
    for c in ["c1", "c2"] {
        a.allow(&b, c, true, true);
    }
    b.allow(&a, "c1", false, true);
    let pushed = a.handle.push(&b.addr(), import()).await?;
    assert_eq!(pushed.added, 1);
    assert_eq!(b.get("c2", "v", "from-a"), None);
    // Asked by name for c2, B refuses the push outright.
    let err = a.handle.push(&b.addr(), full("c2")).await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_push_with_no_read_grant_offers_nothing() -> anyhow::Result<()> {
    let (a, b) = pair_holding_two_clients().await?;
    b.allow(&a, "c1", false, true);
    b.allow(&a, "c2", false, true);
    // A grants B nothing: its push asks B for nothing and B takes nothing.
    let pushed = a.handle.push(&b.addr(), import()).await?;
    assert_eq!(pushed, Default::default());
    assert_eq!(b.get("c1", "v", "from-a"), None);
    Ok(())
}

/// A node whose vault lives on a storage backend that `switch` can make fail, as a full disk.
async fn failing_node(n: u8, switch: &FailSwitch, quota: Quota) -> anyhow::Result<TestNode> {
    let mut config = TestNode::loopback_config()?;
    config.quota = quota;
    let store = Store::from_backend(
        FailingBackend::new(switch),
        Instance::new(NodeId::from_bytes([n; 16])),
        &AccessTable::default(),
    )?;
    TestNode::start_vault(config, Vault::new(store)).await
}

#[tokio::test]
async fn a_push_is_answered_only_after_the_commit_and_not_at_all_if_it_fails() -> anyhow::Result<()>
{
    let switch = FailSwitch::default();
    let server = failing_node(1, &switch, Quota::default()).await?;
    let pusher = TestNode::start(2).await?;
    server.allow(&pusher, "alice", true, true);
    pusher.allow(&server, "alice", true, true);
    let mut last = server.handle.read(|v| v.store().journal_head().0);
    for i in 0..20 {
        pusher.put("alice", "v", &format!("r{i}"), b"x");
        let report = pusher.handle.push(&server.addr(), full("alice")).await?;
        assert_eq!(report.added, 1);
        // The answer came after the commit: the database already holds the pushed record (a
        // store read opens the row from a read transaction, which sees only commits), and
        // the journal has one more event.
        let loc = Location::new("v", format!("r{i}"))?;
        let (held, head) = server.handle.read(|v| {
            let held = v.store().get(b"alice", &loc).map(|v| v.is_some());
            (held, v.store().journal_head().0)
        });
        assert!(held?, "r{i} is in the database");
        assert!(head > last, "the merge was committed");
        last = head;
    }
    switch.fail();
    let before = server.digest();
    pusher.put("alice", "v", "unsaved", b"x");
    let err = pusher
        .handle
        .push(&server.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the records could not be saved on this device"),
        "{err}"
    );
    assert_eq!(
        server.get("alice", "v", "unsaved"),
        None,
        "nothing unsaved is held"
    );
    // Nor is it in the instance the node serves from: what failed to commit changed nothing.
    let unsaved = Location::new("v", "unsaved")?;
    let (after, in_instance) = server.handle.read(|v| {
        let id = redoubt_node::ClientId::from_path(b"alice");
        (
            v.store().state_digest().unwrap(),
            v.store().record_at(&id, unsaved.ids()).unwrap().is_some(),
        )
    });
    assert!(
        !in_instance,
        "the served instance does not hold the unsaved record"
    );
    assert_eq!(after, before, "the served instance is unchanged");
    Ok(())
}

/// A node over a vault on a file: what a push merged into it is in the file once the push is
/// answered, and the file opens again with it after the node stopped and gave the vault back.
#[tokio::test]
async fn a_pushed_record_is_in_the_vault_file_when_the_push_is_answered() -> anyhow::Result<()> {
    use redoubt_node::store::{KdfLimits, KdfParams, Password};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("server.redb");
    let password = Password::new(b"pw".to_vec());
    let store = Store::create(&path, &password, KdfParams::insecure_fast())?;
    let server = TestNode::start_vault(TestNode::loopback_config()?, Vault::new(store)).await?;
    let pusher = TestNode::start(2).await?;
    server.allow(&pusher, "alice", true, true);
    pusher.allow(&server, "alice", true, true);
    pusher.put("alice", "v", "r", b"kept");
    let report = pusher.handle.push(&server.addr(), full("alice")).await?;
    assert_eq!(report.added, 1);
    // The file is open (and locked) by the node; the store reads the row from the database.
    let loc = Location::new("v", "r")?;
    let held = server.handle.read(|v| v.store().get(b"alice", &loc))?;
    assert_eq!(held.map(|v| v.expose().to_vec()), Some(b"kept".to_vec()));
    let vault = server.handle.stop().await?;
    drop(vault);
    let reopened = Store::open(&path, &password, &KdfLimits::default())?;
    let held = reopened.get(b"alice", &loc)?;
    assert_eq!(held.map(|v| v.expose().to_vec()), Some(b"kept".to_vec()));
    let peer = pusher.peer().to_base58();
    assert!(
        reopened.rights(peer.as_bytes(), b"alice").write,
        "the grant too"
    );
    Ok(())
}

#[tokio::test]
async fn a_writer_cannot_grow_a_client_past_the_quota() -> anyhow::Result<()> {
    let quota = Quota {
        records_per_client: 5,
        ..Quota::default()
    };
    let small = failing_node(1, &FailSwitch::default(), quota).await?;
    let writer = TestNode::start(2).await?;
    small.allow(&writer, "alice", true, true);
    writer.allow(&small, "alice", true, true);
    for i in 0..4 {
        writer.put("alice", "v", &format!("r{i}"), b"x");
    }
    assert_eq!(
        writer
            .handle
            .push(&small.addr(), full("alice"))
            .await?
            .added,
        4
    );
    // Two more live records and a tombstone: seven versions, over five.
    for i in 4..6 {
        writer.put("alice", "v", &format!("r{i}"), b"x");
    }
    writer.delete("alice", "v", "r0");
    let err = writer
        .handle
        .push(&small.addr(), full("alice"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("quota exceeded on client \"alice\""),
        "{err}"
    );
    assert_eq!(small.len(), 4, "nothing of the batch");
    Ok(())
}

/// Sees every request frame the node sends.
#[derive(Default)]
struct Tap(Mutex<Vec<Vec<u8>>>);

impl redoubt_node::ResponseHook for Tap {
    fn outgoing(
        &self,
        _: &redoubt_node::libp2p::PeerId,
        _: &mut Vec<u8>,
    ) -> redoubt_node::HookAction {
        redoubt_node::HookAction::Send
    }

    fn outgoing_request(&self, _: &redoubt_node::libp2p::PeerId, frame: &[u8]) {
        self.0.lock().unwrap().push(frame.to_vec());
    }
}

#[tokio::test]
async fn a_client_we_granted_nothing_is_never_named_or_shaped() -> anyhow::Result<()> {
    // A holds a client B may neither read nor write: no frame A sends in a sync of every
    // client, by sketch or by shapes, names it or carries its id, and B never holds it.
    let tap = Arc::new(Tap::default());
    let a = TestNode::start_with_hook(1, Some(tap.clone())).await?;
    let b = TestNode::start(2).await?;
    for (n, name) in [(&a, "a"), (&b, "b")] {
        n.put("c1", "v", &format!("from-{name}"), name.as_bytes());
    }
    for i in 0..50 {
        a.put("hidden", "v", &format!("{i}"), b"never");
    }
    a.allow(&b, "c1", true, true);
    b.allow(&a, "c1", true, true);
    b.allow(&a, "hidden", true, true);
    a.handle.sync(&b.addr(), import(), None).await?;
    let hidden_id = redoubt_vault::ClientId::from_path(b"hidden");
    let frames = tap.0.lock().unwrap().clone();
    assert!(!frames.is_empty());
    for frame in &frames {
        for needle in [&b"hidden"[..], &hidden_id.as_bytes()[..]] {
            assert!(
                !frame.windows(needle.len()).any(|w| w == needle),
                "a request frame named or carried the ungranted client"
            );
        }
    }
    assert_eq!(b.get("hidden", "v", "0"), None);
    assert_eq!(b.len(), 2, "c1 from both");
    Ok(())
}

/// A peer that opens connection after connection gets at most the per-peer limit; the rest are
/// denied by the node, so connecting buys no unbounded work.
#[tokio::test]
async fn connections_beyond_the_per_peer_limit_are_denied() -> anyhow::Result<()> {
    use futures::StreamExt;
    use redoubt_node::{
        ConnectionLimits,
        libp2p::{
            SwarmBuilder, noise,
            swarm::{
                SwarmEvent,
                dial_opts::{DialOpts, PeerCondition},
                dummy,
            },
            tcp, yamux,
        },
    };

    let mut config =
        NodeConfig::new(Keypair::generate_ed25519()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
    config.limits = ConnectionLimits {
        per_peer: 2,
        ..ConnectionLimits::default()
    };
    let vault = Vault::in_memory(
        Instance::new(NodeId::from_bytes([1; 16])),
        AccessTable::default(),
    )?;
    let (node, _events) = spawn(config, vault).await?;
    let mut swarm = SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| dummy::Behaviour)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(60)))
        .build();
    let (mut open, mut refused) = (0u32, 0u32);
    for _ in 0..6 {
        swarm.dial(
            DialOpts::peer_id(node.peer_id())
                .addresses(node.listen_addrs().to_vec())
                .condition(PeerCondition::Always)
                .build(),
        )?;
    }
    // Each dial ends in an established connection that stays, or one the node closes at once.
    let mut ended = 0;
    while ended < 6 {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => open += 1,
            SwarmEvent::ConnectionClosed { .. } => {
                open -= 1;
                refused += 1;
                ended += 1;
            }
            SwarmEvent::OutgoingConnectionError { .. } => {
                refused += 1;
                ended += 1;
            }
            _ => {}
        }
        if open == 2 && refused == 4 {
            break;
        }
    }
    assert_eq!((open, refused), (2, 4), "two kept, four denied");
    Ok(())
}

/// A grant names its peer by a typed [`redoubt_node::PeerId`], kept as the base58 text a
/// connecting peer is checked against; the store under the vault refuses a peer named by raw
/// bytes (`PeerId::to_bytes()`), which would record a grant that lets no one in.
#[test]
fn grants_take_a_typed_peer_id_and_the_store_refuses_raw_bytes() -> anyhow::Result<()> {
    let mut vault = Vault::in_memory(
        Instance::new(NodeId::from_bytes([1; 16])),
        AccessTable::default(),
    )?;
    let peer = Keypair::generate_ed25519().public().to_peer_id();
    let rw = redoubt_vault::Rights {
        read: true,
        write: true,
    };
    vault.set_rights(&peer, b"alice", rw)?;
    assert_eq!(
        vault.grants().rights(peer.to_base58().as_bytes(), b"alice"),
        rw
    );
    let mut store = vault.into_store();
    let err = store
        .set_rights(&peer.to_bytes(), b"bob", rw)
        .expect_err("raw bytes are no peer id");
    assert!(
        matches!(err, redoubt_node::store::Error::PeerIdNotText),
        "{err}"
    );
    assert_eq!(store.grants().len(), 1, "nothing recorded for raw bytes");
    let mut vault = Vault::new(store);
    assert_eq!(vault.revoke(&peer, None)?, 1);
    assert!(vault.grants().is_empty());
    Ok(())
}

/// A node that cannot listen where it was told gives its vault back, unchanged, in the
/// `SpawnError`: the app starts it again elsewhere without reopening the file.
#[tokio::test]
async fn a_node_that_cannot_listen_gives_its_vault_back() -> anyhow::Result<()> {
    let mut vault = Vault::in_memory(
        Instance::new(NodeId::from_bytes([1; 16])),
        AccessTable::default(),
    )?;
    let seed = Location::new("wallet", "seed")?;
    vault.put(
        b"alice",
        &seed,
        redoubt_vault::SecretValue::new(b"kept".to_vec()),
    )?;
    let key = Keypair::generate_ed25519();
    // 192.0.2.1 (TEST-NET-1) is no address of this machine.
    let config = NodeConfig::new(key.clone()).listen_on("/ip4/192.0.2.1/tcp/0".parse()?);
    let failed = spawn(config, vault).await.expect_err("cannot listen there");
    assert!(!failed.to_string().is_empty());
    let vault = failed.into_vault();
    assert_eq!(
        vault.get(b"alice", &seed)?.map(|v| v.expose().to_vec()),
        Some(b"kept".to_vec())
    );
    let config = NodeConfig::new(key).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
    let (node, _events) = spawn(config, vault).await?;
    assert!(node.read(|v| v.get(b"alice", &seed))?.is_some());
    node.stop().await?;
    Ok(())
}
