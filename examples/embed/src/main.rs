use redoubt_node::{
    Location, Mode, Multiaddr, NodeConfig, Rights, SecretValue, Vault, keypair_from_seed, spawn,
    store::{KdfLimits, KdfParams, Password, Store},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let password = Password::new(b"correct horse battery staple".to_vec());
    let fast = KdfParams::insecure_fast(); // tests only; real vaults use KdfParams::default()
    drop(Store::create(&dir.path().join("desktop.redb"), &password, fast)?);
    let desktop = Store::open(&dir.path().join("desktop.redb"), &password, &KdfLimits::default())?;
    let phone = Store::create(&dir.path().join("phone.redb"), &password, fast)?;

    // Each device's libp2p key is its vault's identity, so its peer id stays the same.
    let desktop_key = keypair_from_seed(desktop.identity().expose_seed())?;
    let phone_key = keypair_from_seed(phone.identity().expose_seed())?;
    let loopback: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
    let config = NodeConfig::new(desktop_key).listen_on(loopback.clone());
    let (desktop, _events) = spawn(config, Vault::new(desktop)).await?;
    let config = NodeConfig::new(phone_key).listen_on(loopback);
    let (phone, _events) = spawn(config, Vault::new(phone)).await?;

    let seed = Location::new("wallet", "seed")?;
    let both = Rights { read: true, write: true };
    let phone_id = phone.peer_id();
    desktop.write(|v| {
        v.put(b"alice", &seed, SecretValue::new(b"s3cret".to_vec()))?; // committed here
        // The desktop lets the phone read and write client "alice"...
        v.set_rights(&phone_id, b"alice", both)
    })?;
    // ...and the phone the desktop: each side's own grants decide what leaves and enters it.
    let desktop_id = desktop.peer_id();
    phone.write(|v| v.set_rights(&desktop_id, b"alice", both))?;

    let alice = Mode::Full { client: b"alice".to_vec() };
    let synced = phone.sync(&desktop.listen_addrs()[0], alice, None).await?;
    assert_eq!(synced.pulled.report.added, 1); // committed on the phone before it returned
    let value = phone.read(|v| v.get(b"alice", &seed))?;
    assert_eq!(value.map(|v| v.expose().to_vec()), Some(b"s3cret".to_vec()));
    println!("synced 1 record from desktop to phone");
    Ok(())
}
