//! Two live nodes on loopback, as a vault app would embed them: grant, write, sync both ways,
//! delete, and see both sides converge.
//!
//! Run with `cargo run -p redoubt-examples --example two_nodes`.

use redoubt_node::{NodeConfig, Shared, Store, libp2p::identity::Keypair, spawn};
use redoubt_protocol::Mode;
use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue};

/// A node with an empty in-memory store, listening on 127.0.0.1 with an ephemeral port; the
/// app keeps the store it shares with the node.
async fn start(n: u8) -> anyhow::Result<(redoubt_node::Handle, Shared)> {
    let config =
        NodeConfig::new(Keypair::generate_ed25519()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
    let store = Store {
        instance: Instance::new(NodeId::from_bytes([n; 16])),
        access: AccessTable::default(),
    };
    let shared = Shared::new(store);
    let (handle, _events) = spawn(config, shared.clone()).await?;
    Ok((handle, shared))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (desktop, desktop_store) = start(1).await?;
    let (laptop, laptop_store) = start(2).await?;
    println!("desktop listens on {}", desktop.listen_addrs()[0]);
    println!("laptop  listens on {}", laptop.listen_addrs()[0]);

    // Default deny: each side grants the other read and write on client "alice".
    let both = Rights {
        read: true,
        write: true,
    };
    for (store, peer) in [(&desktop_store, &laptop), (&laptop_store, &desktop)] {
        let peer = peer.peer_id().to_base58();
        store.lock().access.grant(peer.as_bytes(), b"alice", both)?;
    }

    let seed = Location::new("wallet", "seed")?;
    let token = Location::new("api", "token")?;
    desktop_store.lock().instance.write(
        b"alice",
        &seed,
        SecretValue::new(b"correct horse battery staple".to_vec()),
    )?;
    laptop_store
        .lock()
        .instance
        .write(b"alice", &token, SecretValue::new(b"tok_123".to_vec()))?;

    // One call: pull from the desktop, then ask it to pull from us.
    let alice = Mode::Full {
        client: b"alice".to_vec(),
    };
    let out = laptop
        .sync(&desktop.listen_addrs()[0], alice.clone(), None)
        .await?;
    println!("laptop pulled: {}", out.pulled.report);
    println!("desktop pulled: {}", out.pushed);

    // A deletion travels like any write.
    desktop_store.lock().instance.delete(b"alice", &token)?;
    desktop.sync(&laptop.listen_addrs()[0], alice, None).await?;
    let gone = laptop_store
        .lock()
        .instance
        .read(b"alice", &token)
        .is_none();
    println!("token deleted on the laptop too: {gone}");

    let (d, l) = (
        desktop_store.lock().instance.state_digest(),
        laptop_store.lock().instance.state_digest(),
    );
    anyhow::ensure!(d == l && gone, "the two nodes did not converge");
    println!("converged: {}", redoubt_vault::hex(&d[..8]));
    Ok(())
}
