//! Two live nodes on loopback, as a vault app would embed them: grant, write, sync both ways,
//! delete, and see both sides converge.
//!
//! Run with `cargo run -p redoubt-examples --example two_nodes`.

use redoubt_node::{
    AccessTable, Instance, Location, Mode, NodeConfig, NodeId, Rights, SecretValue, Vault,
    libp2p::identity::Keypair, spawn,
};

/// A node that owns an empty in-memory vault, listening on 127.0.0.1 with an ephemeral port;
/// the app reaches the vault through the handle. (A vault on disk is
/// `Vault::new(redoubt_node::store::Store::create(..)?)`, as the crate docs show.)
async fn start(n: u8) -> anyhow::Result<redoubt_node::Handle> {
    let config =
        NodeConfig::new(Keypair::generate_ed25519()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
    let vault = Vault::in_memory(
        Instance::new(NodeId::from_bytes([n; 16])),
        AccessTable::default(),
    )?;
    let (handle, _events) = spawn(config, vault).await?;
    Ok(handle)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let desktop = start(1).await?;
    let laptop = start(2).await?;
    println!("desktop listens on {}", desktop.listen_addrs()[0]);
    println!("laptop  listens on {}", laptop.listen_addrs()[0]);

    // Default deny: each side grants the other read and write on client "alice".
    let both = Rights {
        read: true,
        write: true,
    };
    for (node, peer) in [(&desktop, &laptop), (&laptop, &desktop)] {
        let peer = peer.peer_id();
        node.write(|v| v.set_rights(&peer, b"alice", both))?;
    }

    let seed = Location::new("wallet", "seed")?;
    let token = Location::new("api", "token")?;
    desktop.write(|v| {
        let seed_value = SecretValue::new(b"correct horse battery staple".to_vec());
        v.put(b"alice", &seed, seed_value)
    })?;
    laptop.write(|v| v.put(b"alice", &token, SecretValue::new(b"tok_123".to_vec())))?;

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
    desktop.write(|v| v.delete(b"alice", &token))?;
    desktop.sync(&laptop.listen_addrs()[0], alice, None).await?;
    let gone = laptop.read(|v| v.get(b"alice", &token))?.is_none();
    println!("token deleted on the laptop too: {gone}");

    let (d, l) = (
        desktop.read(|v| v.store().state_digest())?,
        laptop.read(|v| v.store().state_digest())?,
    );
    anyhow::ensure!(d == l && gone, "the two nodes did not converge");
    println!("converged: {}", redoubt_vault::hex(&d[..8]));
    Ok(())
}
