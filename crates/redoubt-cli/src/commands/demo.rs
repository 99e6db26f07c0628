//! `redoubt demo`: two instances on embedded defaults in a temporary directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use redoubt_snapshot::{KdfParams, Password, SealKey, Snapshot, VaultFile};
use redoubt_vault::{ClientId, Instance, Location, SecretValue, SyncConfig, hex};

use crate::output::stamp_text;

/// One demo device: a real snapshot file, sealed with the default KDF.
struct Device {
    name: &'static str,
    path: PathBuf,
    password: Password,
    snapshot: Snapshot,
    key: SealKey,
}

impl Device {
    fn create(dir: &Path, name: &'static str) -> Result<Self> {
        let path = dir.join(format!("{name}.rdb"));
        // Demo passwords are not secrets: the demo's vaults hold made-up values.
        let password = Password::new(format!("demo password of the {name}").into_bytes());
        let snapshot = Snapshot::generate()?;
        let key =
            VaultFile::lock_exclusive(&path)?.create(&snapshot, &password, KdfParams::default())?;
        println!(
            "  {name:<7} vault {} (node {})",
            path.display(),
            &snapshot.instance.node().to_string()[..8]
        );
        Ok(Self {
            name,
            path,
            password,
            snapshot,
            key,
        })
    }

    fn put(&mut self, client: &str, vault: &str, record: &str, value: &str) -> Result<()> {
        let loc = Location::new(vault, record)?;
        let stamp = self.snapshot.instance.write(
            client.as_bytes(),
            &loc,
            SecretValue::new(value.as_bytes().to_vec()),
        )?;
        println!(
            "  {:<7} put {client}/{vault}/{record} ({} bytes, stamp {})",
            self.name,
            value.len(),
            stamp_text(&stamp)
        );
        self.save()
    }

    fn rm(&mut self, client: &str, vault: &str, record: &str) -> Result<()> {
        let stamp = self
            .snapshot
            .instance
            .delete(client.as_bytes(), &Location::new(vault, record)?)?;
        println!(
            "  {:<7} rm  {client}/{vault}/{record} (tombstone, stamp {})",
            self.name,
            stamp_text(&stamp)
        );
        self.save()
    }

    fn save(&self) -> Result<()> {
        VaultFile::lock_exclusive(&self.path)?.save(&self.snapshot, &self.key)?;
        Ok(())
    }

    /// Pulls from the other device's snapshot file, exactly as `redoubt sync-file` does.
    fn pull_from(&mut self, other: &Device) -> Result<()> {
        let (theirs, _) = VaultFile::lock_shared(&other.path)?.load(&other.password)?;
        let report = self
            .snapshot
            .instance
            .sync_from(&theirs.instance, &SyncConfig::full())?;
        println!("  {:<7} <- {:<7} {report}", self.name, other.name);
        self.save()
    }

    fn digest(&self) -> String {
        hex(&self.snapshot.instance.state_digest()[..8])
    }
}

pub(crate) fn run() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("redoubt-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    println!(
        "Redoubt demo: two instances on embedded defaults (Argon2id 64 MiB, XChaCha20-Poly1305)"
    );
    println!("\n1. Two devices, each with its own encrypted vault");
    let mut desktop = Device::create(dir.path(), "desktop")?;
    let mut phone = Device::create(dir.path(), "phone")?;

    println!("\n2. Each writes its own secrets (made-up values; they are never printed)");
    desktop.put(
        "alice",
        "wallet",
        "seed",
        "abandon ability able about above absent",
    )?;
    desktop.put("alice", "wallet", "pin", "4921")?;
    desktop.put("alice", "mail", "password", "tr0ub4dor&3")?;
    phone.put("alice", "wallet", "recovery-code", "XK2P-9QRT-77MB")?;
    phone.put("bob", "vpn", "key", "wg-private-key-of-bob")?;

    println!("\n3. Sync both ways");
    phone.pull_from(&desktop)?;
    desktop.pull_from(&phone)?;

    println!("\n4. While apart: the desktop deletes a secret, and both edit the same one");
    desktop.rm("alice", "mail", "password")?;
    desktop.put("alice", "wallet", "pin", "1111")?;
    phone.put("alice", "wallet", "pin", "2222")?;

    println!("\n5. Sync both ways again");
    phone.pull_from(&desktop)?;
    desktop.pull_from(&phone)?;

    println!("\n6. Result");
    let pin = Location::new("wallet", "pin")?;
    let alice = ClientId::from_path(b"alice");
    let winner = desktop
        .snapshot
        .instance
        .record(&alice, pin.ids())
        .context("alice/wallet/pin is missing")?;
    let by = if winner.stamp().node == phone.snapshot.instance.node() {
        phone.name
    } else {
        desktop.name
    };
    println!(
        "  concurrent edit of alice/wallet/pin: the {by}'s version won (greater stamp {})",
        stamp_text(winner.stamp())
    );
    let gone = Location::new("mail", "password")?;
    let deleted_everywhere = [&desktop, &phone]
        .iter()
        .all(|d| d.snapshot.instance.read(b"alice", &gone).is_none());
    println!(
        "  alice/mail/password deleted on both: {}",
        if deleted_everywhere { "yes" } else { "NO" }
    );
    print_live(&desktop.snapshot.instance);
    println!(
        "  state digest: desktop {}  phone {}",
        desktop.digest(),
        phone.digest()
    );
    if desktop.digest() != phone.digest() || !deleted_everywhere {
        bail!("the two instances did not converge");
    }
    println!("  converged: yes");
    Ok(())
}

fn print_live(instance: &Instance) {
    println!("  records on both devices:");
    for (id, client) in instance.clients() {
        for r in instance.records(id).filter(|r| !r.is_tombstone()) {
            println!(
                "    {}/{}/{} ({} bytes)",
                String::from_utf8_lossy(client),
                String::from_utf8_lossy(r.location().vault_path()),
                String::from_utf8_lossy(r.location().record_path()),
                r.size()
            );
        }
    }
}
