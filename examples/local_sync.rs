//! Redoubt as a library: two devices keep encrypted snapshot files and sync one from the other.
//!
//! Run with `cargo run -p redoubt-examples --example local_sync`.

use anyhow::Result;
use redoubt_snapshot::{KdfParams, Password, Snapshot, VaultFile};
use redoubt_vault::{Location, MergePolicy, SecretValue, SyncConfig};

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let password = Password::new(b"example password".to_vec());
    let seed = Location::new("wallet", "seed")?;

    // The desktop writes a secret and saves its vault.
    let desktop_path = dir.path().join("desktop.rdb");
    let mut desktop = Snapshot::generate()?;
    desktop
        .instance
        .write(b"alice", &seed, SecretValue::new(b"correct horse".to_vec()))?;
    VaultFile::lock_exclusive(&desktop_path)?.create(&desktop, &password, KdfParams::default())?;

    // The phone starts empty and pulls alice's wallet from the desktop's snapshot file.
    let mut phone = Snapshot::generate()?;
    let (theirs, _key) = VaultFile::lock_shared(&desktop_path)?.load(&password)?;
    let config = SyncConfig::full()
        .policy(MergePolicy::Newest)
        .client(b"alice")?
        .vault(b"wallet")?;
    let report = phone.instance.sync_from(&theirs.instance, &config)?;
    println!("phone <- desktop: {report}");

    let value = phone.instance.read(b"alice", &seed).map(SecretValue::len);
    println!("phone now holds alice/wallet/seed: {value:?} bytes");
    assert_eq!(
        phone.instance.state_digest(),
        desktop.instance.state_digest()
    );
    Ok(())
}
