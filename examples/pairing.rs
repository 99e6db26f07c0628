//! Pairing a new phone with a desktop by a short code, as a vault app would drive it from its
//! own UI: the desktop shows the code (and a QR payload), the phone's user types it, both
//! devices show the same verification string and both users confirm, and the phone imports
//! the shared secrets. Both devices run on loopback here.
//!
//! Run with `cargo run -p redoubt-examples --example pairing`.

use std::time::Duration;

use redoubt_node::{
    AccessTable, Instance, Location, NodeConfig, NodeId, PAIR_CODE_TTL, PairingEvent, SecretValue,
    Vault, libp2p::identity::Keypair, spawn,
};

/// A node that owns an empty in-memory vault, listening on 127.0.0.1 with an ephemeral port;
/// the app reaches the vault through the handle.
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

/// A confirmation dialog: here it always says yes, after showing the question.
async fn ask_user(device: &str, question: String) -> bool {
    println!("{device} UI: {question} [yes]");
    true
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let desktop = start(1).await?;
    let phone = start(2).await?;
    let seed = Location::new("wallet", "seed")?;
    desktop.write(|v| {
        let value = SecretValue::new(b"correct horse battery staple".to_vec());
        v.put(b"alice", &seed, value)
    })?;

    // Desktop: open an offer of client "alice" and show its code.
    let mut offer = desktop
        .pair_offer(vec![b"alice".to_vec()], PAIR_CODE_TTL)
        .await?;
    println!("desktop UI: pairing code {}", offer.code);
    println!("desktop UI: QR payload {}", offer.payload);
    let code_read_aloud = offer.code.to_string();

    // Desktop: answer what happens to the offer, from the app's own task.
    let desktop_ui = tokio::spawn(async move {
        while let Some(event) = offer.next().await {
            match event {
                PairingEvent::Request(request) => {
                    let question = format!(
                        "pair with device {}? code check: {}",
                        request.peer(),
                        request.verification()
                    );
                    if ask_user("desktop", question).await {
                        request.accept().await?;
                    } else {
                        request.reject().await?;
                    }
                }
                PairingEvent::Paired { peer, .. } => {
                    println!("desktop UI: paired with {peer}");
                    return Ok(());
                }
                PairingEvent::Failed { reason, .. } => anyhow::bail!("pairing failed: {reason}"),
            }
        }
        anyhow::bail!("the offer ended")
    });

    // Phone: the user typed the code; the desktop's address would come from the QR payload or
    // from mDNS on a LAN (NodeConfig::with_discovery); here it is given.
    let request = phone
        .pair_join(
            &code_read_aloud,
            desktop.listen_addrs().to_vec(),
            Duration::from_secs(5),
        )
        .await?;
    // Phone: the desktop proved the code; its user checks that both screens show the same
    // string before accepting (accepting waits for the desktop's user too).
    let question = format!(
        "pair with device {}? code check: {}",
        request.peer(),
        request.verification()
    );
    if !ask_user("phone", question).await {
        request.reject().await?;
        anyhow::bail!("declined on the phone");
    }
    let (paired, imported) = request.accept().await?;
    desktop_ui.await??;
    println!(
        "phone UI: paired with {}; imported {}",
        paired.peer, imported.report
    );
    let seed = phone
        .read(|v| v.get(b"alice", &seed))?
        .map(|v| v.expose().len());
    anyhow::ensure!(seed == Some(28), "the phone did not import the seed");
    println!("phone UI: alice/wallet/seed is here ({} bytes)", 28);
    Ok(())
}
