//! An app that owns its libp2p swarm adds Redoubt's behaviour beside its own and drives the
//! engine with the behaviour's events; a regular node pulls from it.

use futures::StreamExt;
use redoubt_node::{
    Engine, Vault, behaviour,
    libp2p::{
        self, SwarmBuilder,
        identity::Keypair,
        multiaddr::Protocol,
        noise, ping,
        swarm::{NetworkBehaviour, SwarmEvent},
        tcp, yamux,
    },
};
use redoubt_protocol::Mode;
use redoubt_tests::TestNode;
use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue};

/// The app's behaviour: its own protocol (ping here) and Redoubt's.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct App {
    ping: ping::Behaviour,
    sync: redoubt_node::Behaviour,
}

#[tokio::test]
async fn the_behaviour_runs_inside_an_apps_own_swarm() -> anyhow::Result<()> {
    let reader = TestNode::start(2).await?;
    let mut vault = Vault::in_memory(
        Instance::new(NodeId::from_bytes([1; 16])),
        AccessTable::default(),
    )?;
    vault.put(
        b"alice",
        &Location::new("wallet", "seed")?,
        SecretValue::new(b"embedded".to_vec()),
    )?;
    vault.set_rights(
        &reader.peer(),
        b"alice",
        Rights {
            read: true,
            write: false,
        },
    )?;
    let key = Keypair::generate_ed25519();
    let mut engine = Engine::new(key.public().to_peer_id(), vault, None);
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| App {
            ping: ping::Behaviour::default(),
            sync: behaviour(std::time::Duration::from_secs(30)),
        })?
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let peer = *swarm.local_peer_id();
    // The reader merges only what its own table lets the app's node write.
    reader.allow_rights(
        peer,
        "alice",
        Rights {
            read: false,
            write: true,
        },
    );
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(Protocol::P2p(peer));
        }
    };
    // The app's event loop: Redoubt's events go to the engine, the rest stay with the app.
    let app = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(AppEvent::Sync(e)) = swarm.select_next_some().await {
                engine.handle_event(&mut swarm.behaviour_mut().sync, e);
            }
        }
    });
    let out = reader
        .handle
        .pull(
            &addr,
            Mode::Full {
                client: b"alice".to_vec(),
            },
        )
        .await?;
    app.abort();
    assert_eq!(out.report.added, 1);
    assert_eq!(
        reader.get("alice", "wallet", "seed").as_deref(),
        Some(&b"embedded"[..])
    );
    Ok(())
}
