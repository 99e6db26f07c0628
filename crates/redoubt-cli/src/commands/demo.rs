//! `redoubt demo`: two live nodes on 127.0.0.1 in one process, on embedded defaults; then the
//! same two vaults owned by two `redoubt agent` processes that sync by themselves.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use redoubt_node::Handle;
use redoubt_node::store::{KdfParams, Password, Store};
use redoubt_protocol::Mode;
use redoubt_vault::{ClientId, Instance, Location, Rights, SecretValue, hex};

use super::demo_agents::AgentProcess;
use crate::{live::Live, output::stamp_text};

/// A demo device's password: made up, as the demo's values are.
fn password_of(name: &str) -> String {
    format!("demo password of the {name}")
}

/// One demo device: an encrypted vault file (open, so locked, while the demo runs) owned by a
/// live node.
struct Device {
    name: &'static str,
    path: PathBuf,
    live: Live,
    node: Handle,
}

impl Device {
    async fn start(dir: &Path, name: &'static str) -> Result<Self> {
        let path = dir.join(format!("{name}.rdb"));
        // Demo passwords are not secrets: the demo's vaults hold made-up values.
        let password = Password::new(password_of(name).into_bytes());
        let mut live = Live::new(Store::create(&path, &password, KdfParams::default())?)?;
        let listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        let (node, _events) = live.spawn(live.config(listen)?).await?;
        outln!("  {name:<7} vault {}", path.display());
        outln!("  {name:<7} listening on {}", node.listen_addrs()[0]);
        Ok(Self {
            name,
            path,
            live,
            node,
        })
    }

    fn allow(&mut self, other: &Device, client: &str) -> Result<()> {
        let peer = other.node.peer_id();
        let rights = Rights {
            read: true,
            write: true,
        };
        self.live
            .write(|v| v.set_rights(&peer, client.as_bytes(), rights))??;
        outln!(
            "  {:<7} allows {} to read and write client {client}",
            self.name,
            other.name
        );
        Ok(())
    }

    fn put(&mut self, client: &str, vault: &str, record: &str, value: &str) -> Result<()> {
        let loc = Location::new(vault, record)?;
        let value_bytes = SecretValue::new(value.as_bytes().to_vec());
        let stamp = self
            .live
            .write(|v| v.put(client.as_bytes(), &loc, value_bytes))??;
        outln!(
            "  {:<7} put {client}/{vault}/{record} ({} bytes, stamp {})",
            self.name,
            value.len(),
            stamp_text(&stamp)
        );
        Ok(())
    }

    fn rm(&mut self, client: &str, vault: &str, record: &str) -> Result<()> {
        let loc = Location::new(vault, record)?;
        let stamp = self.live.write(|v| v.delete(client.as_bytes(), &loc))??;
        outln!(
            "  {:<7} rm  {client}/{vault}/{record} (tombstone, stamp {})",
            self.name,
            stamp_text(&stamp)
        );
        Ok(())
    }

    /// `redoubt sync` over libp2p: pull from the other node, then ask it to pull from us.
    async fn sync_with(&mut self, other: &mut Device) -> Result<()> {
        let addr = other.node.listen_addrs()[0].clone();
        let out = self
            .node
            .sync(&addr, Mode::Import { clients: vec![] }, None)
            .await
            .with_context(|| format!("{} syncing with {}", self.name, other.name))?;
        outln!(
            "  {:<7} <- {:<7} {} ({} bytes in, {} out)",
            self.name,
            other.name,
            out.pulled.report,
            out.pulled.bytes_received,
            out.pulled.bytes_sent
        );
        outln!("  {:<7} <- {:<7} {}", other.name, self.name, out.pushed);
        // Both nodes committed what they merged to their vault files before answering.
        Ok(())
    }

    fn digest(&self) -> Result<String> {
        Ok(hex(&self.live.digest()?[..8]))
    }
}

pub(crate) fn run() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("redoubt-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    crate::live::runtime()?.block_on(demo(dir.path()))
}

async fn demo(dir: &Path) -> Result<()> {
    outln!(
        "Redoubt demo: two live nodes on 127.0.0.1 (libp2p TCP + Noise + Yamux), each with an \
         encrypted vault (Argon2id 64 MiB, XChaCha20-Poly1305)"
    );
    outln!("\n1. Two devices start: an encrypted vault and a libp2p node each");
    let mut desktop = Device::start(dir, "desktop").await?;
    let mut phone = Device::start(dir, "phone").await?;

    outln!("\n2. They grant each other rights (default: deny)");
    desktop.allow(&phone, "alice")?;
    phone.allow(&desktop, "alice")?;

    outln!("\n3. Each writes its own secrets (made-up values; they are never printed)");
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

    outln!("\n4. The phone syncs with the desktop over the wire (pull, then push)");
    phone.sync_with(&mut desktop).await?;

    outln!("\n5. While apart: the desktop deletes a secret, and both edit the same one");
    desktop.rm("alice", "mail", "password")?;
    desktop.put("alice", "wallet", "pin", "1111")?;
    phone.put("alice", "wallet", "pin", "2222")?;

    outln!("\n6. The desktop syncs with the phone");
    desktop.sync_with(&mut phone).await?;

    outln!("\n7. Result");
    let (converged, deleted_everywhere) = {
        let d = desktop.live.read(|v| v.store().load_instance())??;
        let p = phone.live.read(|v| v.store().load_instance())??;
        let pin = Location::new("wallet", "pin")?;
        let winner = d
            .record(&ClientId::from_path(b"alice"), pin.ids())
            .context("alice/wallet/pin is missing")?;
        let by = if winner.stamp().node == p.node() {
            phone.name
        } else {
            desktop.name
        };
        outln!(
            "  concurrent edit of alice/wallet/pin: the {by}'s version won (greater stamp {})",
            stamp_text(winner.stamp())
        );
        let gone = Location::new("mail", "password")?;
        let deleted = [&d, &p].iter().all(|i| i.read(b"alice", &gone).is_none());
        outln!(
            "  alice/mail/password deleted on both: {}",
            if deleted { "yes" } else { "NO" }
        );
        print_live(&d)?;
        let bob_stayed_home = d.read(b"bob", &Location::new("vpn", "key")?).is_none();
        outln!(
            "  bob/vpn/key stayed on the phone (no grant on client bob): {}",
            if bob_stayed_home { "yes" } else { "NO" }
        );
        (d.clients().count() == 1 && bob_stayed_home, deleted)
    };
    let (desktop_alice, phone_alice) = (alice_digest(&desktop)?, alice_digest(&phone)?);
    let alice_equal = desktop_alice == phone_alice;
    outln!(
        "  client alice digest: desktop {}  phone {}",
        hex(&desktop_alice[..8]),
        hex(&phone_alice[..8])
    );
    outln!(
        "  whole-vault digest: desktop {}  phone {} (the phone also holds bob)",
        desktop.digest()?,
        phone.digest()?
    );
    desktop.node.shutdown().await;
    phone.node.shutdown().await;
    let (desktop_vault, phone_vault) = (desktop.path.clone(), phone.path.clone());
    // Close both vaults, so the agents can own them.
    drop((desktop, phone));
    if !alice_equal || !deleted_everywhere || !converged {
        bail!("the two nodes did not converge");
    }

    outln!("\n8. Each vault now runs in an agent that syncs by itself: nobody runs a sync");
    let by_themselves = tokio::task::spawn_blocking(move || agents(&desktop_vault, &phone_vault))
        .await
        .context("the agents' part of the demo")??;
    if !by_themselves {
        bail!("the two agents did not sync by themselves");
    }
    outln!("  converged: yes");
    Ok(())
}

/// Two agents over the demo's vaults (their grants already made): a change through one's
/// socket becomes readable through the other's without a sync command; `false` if one never
/// arrived.
fn agents(desktop_vault: &Path, phone_vault: &Path) -> Result<bool> {
    let desktop = AgentProcess::start("desktop", desktop_vault, &password_of("desktop"), None)?;
    let phone = AgentProcess::start(
        "phone",
        phone_vault,
        &password_of("phone"),
        Some(desktop.addr()),
    )?;
    desktop.put("alice", "wallet", "pin", "8642")?;
    let there = phone.wait_for("alice", "wallet", "pin", Some("8642"))?;
    phone.put("alice", "notes", "wifi", "correct-horse-battery")?;
    let back = desktop.wait_for("alice", "notes", "wifi", Some("correct-horse-battery"))?;
    phone.rm("alice", "wallet", "recovery-code")?;
    let gone = desktop.wait_for("alice", "wallet", "recovery-code", None)?;
    desktop.stop()?;
    phone.stop()?;
    outln!(
        "  both agents stopped; every change was committed to its vault file before it was answered"
    );
    Ok(there && back && gone)
}

/// The state digest of client alice alone.
fn alice_digest(device: &Device) -> Result<[u8; 32]> {
    device.live.read(|v| -> Result<[u8; 32]> {
        let mut only = Instance::new(v.store().node());
        let alice = ClientId::from_path(b"alice");
        for r in v.store().records(&alice)? {
            let _ = only.restore(b"alice", r);
        }
        Ok(only.state_digest())
    })?
}

fn print_live(instance: &Instance) -> Result<()> {
    outln!("  records on both devices:");
    for (id, client) in instance.clients() {
        for r in instance.records(id).filter(|r| !r.is_tombstone()) {
            outln!(
                "    {}/{}/{} ({} bytes)",
                String::from_utf8_lossy(client),
                String::from_utf8_lossy(r.location().vault_path()),
                String::from_utf8_lossy(r.location().record_path()),
                r.size()
            );
        }
    }
    Ok(())
}
