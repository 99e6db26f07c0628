//! A two-node harness shared by the cross-crate tests beside this file (`../*.rs`): real
//! libp2p nodes on loopback with in-memory vaults (redb's in-memory backend), and a storage
//! backend whose writes can be made to fail.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use redb::StorageBackend;
use redoubt_node::{
    Handle, HookAction, NodeConfig, ResponseHook, Vault,
    libp2p::{Multiaddr, PeerId, identity::Keypair},
    spawn,
};
use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue};

/// A live node on 127.0.0.1 with an ephemeral port.
pub struct TestNode {
    /// The node's handle; its vault is reached through [`Handle::read`] and [`Handle::write`].
    pub handle: Handle,
}

impl TestNode {
    /// Starts a node whose instance is written by node id `[n; 16]`.
    pub async fn start(n: u8) -> anyhow::Result<Self> {
        Self::start_with_hook(n, None).await
    }

    /// Starts a node whose responses pass through `hook`.
    pub async fn start_with_hook(
        n: u8,
        hook: Option<Arc<dyn ResponseHook>>,
    ) -> anyhow::Result<Self> {
        Self::start_with(n, hook, std::time::Duration::from_secs(30)).await
    }

    /// Starts a node with a hook and a per-request timeout.
    pub async fn start_with(
        n: u8,
        hook: Option<Arc<dyn ResponseHook>>,
        request_timeout: std::time::Duration,
    ) -> anyhow::Result<Self> {
        let mut config = Self::config()?;
        config.hook = hook;
        config.request_timeout = request_timeout;
        Self::start_config(n, config).await
    }

    /// Starts a node that also serves and runs unbound sessions (versions 1 and 2) with peers
    /// that speak nothing newer, its responses passing through `hook`.
    pub async fn start_allowing_unbound(
        n: u8,
        hook: Option<Arc<dyn ResponseHook>>,
    ) -> anyhow::Result<Self> {
        let mut config = Self::config()?;
        config.hook = hook;
        config.allow_unbound = true;
        Self::start_config(n, config).await
    }

    /// Starts a node that falls back to shapes only as `policy` allows.
    pub async fn start_with_fallback(
        n: u8,
        policy: redoubt_protocol::ShapeFallback,
    ) -> anyhow::Result<Self> {
        let mut config = Self::config()?;
        config.shape_fallback = policy;
        Self::start_config(n, config).await
    }

    /// Starts two nodes (ids 1 and 2) that each grant the other read and write on `client`.
    pub async fn two_trusting(client: &str) -> anyhow::Result<(Self, Self)> {
        let a = Self::start(1).await?;
        let b = Self::start(2).await?;
        a.allow(&b, client, true, true);
        b.allow(&a, client, true, true);
        Ok((a, b))
    }

    /// Starts a node that speaks `/redoubt/sync/1` only, as nodes before version 2 did.
    pub async fn start_v1_only(n: u8) -> anyhow::Result<Self> {
        let mut config = Self::config()?;
        config.v1_only = true;
        Self::start_config(n, config).await
    }

    /// Starts a node with mDNS discovery on, listening on every interface (mDNS advertises
    /// only the addresses of the interface it answers on, never loopback).
    pub async fn start_discoverable(n: u8) -> anyhow::Result<Self> {
        let config = NodeConfig::new(Keypair::generate_ed25519())
            .listen_on("/ip4/0.0.0.0/tcp/0".parse()?)
            .with_discovery(true);
        Self::start_config(n, config).await
    }

    /// The rights this node grants `peer` on `client`.
    pub fn rights(&self, peer: &TestNode, client: &str) -> Rights {
        self.handle.read(|v| {
            v.grants()
                .rights(peer.peer().to_base58().as_bytes(), client.as_bytes())
        })
    }

    fn config() -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig::new(Keypair::generate_ed25519()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?))
    }

    /// Starts a node with `config` whose in-memory vault is written by node id `[n; 16]`.
    pub async fn start_config(n: u8, config: NodeConfig) -> anyhow::Result<Self> {
        let vault = Vault::in_memory(
            Instance::new(NodeId::from_bytes([n; 16])),
            AccessTable::default(),
        )?;
        Self::start_vault(config, vault).await
    }

    /// Starts a node with `config` over `vault`.
    pub async fn start_vault(config: NodeConfig, vault: Vault) -> anyhow::Result<Self> {
        let (handle, _events) = spawn(config, vault).await?;
        Ok(Self { handle })
    }

    /// A config listening on 127.0.0.1 with an ephemeral port, with a fresh key.
    pub fn loopback_config() -> anyhow::Result<NodeConfig> {
        Self::config()
    }

    /// The address peers dial.
    pub fn addr(&self) -> Multiaddr {
        self.handle.listen_addrs()[0].clone()
    }

    /// This node's peer id.
    pub fn peer(&self) -> PeerId {
        self.handle.peer_id()
    }

    /// Grants `peer` rights on `client`.
    /// Grants `peer` rights on `client` (adding to what it holds).
    pub fn allow(&self, peer: &TestNode, client: &str, read: bool, write: bool) {
        self.allow_rights(peer.peer(), client, Rights { read, write });
    }

    /// Grants the node `peer` read and write on `client`.
    pub fn allow_peer(&self, peer: PeerId, client: &str) {
        let both = Rights {
            read: true,
            write: true,
        };
        self.allow_rights(peer, client, both);
    }

    /// Adds `rights` to what the node grants `peer` on `client`, as one commit.
    pub fn allow_rights(&self, peer: PeerId, client: &str, rights: Rights) {
        let key = peer.to_base58();
        self.handle
            .write(|v| {
                let held = v.grants().rights(key.as_bytes(), client.as_bytes());
                let rights = Rights {
                    read: held.read || rights.read,
                    write: held.write || rights.write,
                };
                v.set_rights(&peer, client.as_bytes(), rights)
            })
            .unwrap_or_else(|e| panic!("grant: {e}"));
    }

    /// Removes every grant the node gives `peer` on `client`.
    pub fn revoke(&self, peer: PeerId, client: &str) {
        self.handle
            .write(|v| v.revoke(&peer, Some(client.as_bytes())))
            .unwrap_or_else(|e| panic!("revoke: {e}"));
    }

    /// Writes `value` at `vault/record` of `client`.
    pub fn put(&self, client: &str, vault: &str, record: &str, value: &[u8]) {
        let loc = Location::new(vault, record).unwrap_or_else(|e| panic!("{e}"));
        self.handle
            .write(|v| v.put(client.as_bytes(), &loc, SecretValue::new(value.to_vec())))
            .unwrap_or_else(|e| panic!("write: {e}"));
    }

    /// Deletes `vault/record` of `client`.
    pub fn delete(&self, client: &str, vault: &str, record: &str) {
        let loc = Location::new(vault, record).unwrap_or_else(|e| panic!("{e}"));
        self.handle
            .write(|v| v.delete(client.as_bytes(), &loc))
            .unwrap_or_else(|e| panic!("delete: {e}"));
    }

    /// The live value at `vault/record` of `client`.
    pub fn get(&self, client: &str, vault: &str, record: &str) -> Option<Vec<u8>> {
        let loc = Location::new(vault, record).unwrap_or_else(|e| panic!("{e}"));
        self.handle
            .read(|v| v.get(client.as_bytes(), &loc))
            .unwrap_or_else(|e| panic!("get: {e}"))
            .map(|v| v.expose().to_vec())
    }

    /// Versions held, tombstones included.
    pub fn len(&self) -> usize {
        self.handle.read(|v| v.store().len() as usize)
    }

    /// Whether the node holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of the whole state.
    pub fn digest(&self) -> [u8; 32] {
        self.handle
            .read(|v| v.store().state_digest())
            .unwrap_or_else(|e| panic!("digest: {e}"))
    }
}

/// A redb storage backend in memory whose writes (and syncs) fail once [`Self::fail`] is
/// set: a disk that fills up. Pass it to `redoubt_store::Store::from_backend`.
#[derive(Debug)]
pub struct FailingBackend {
    inner: redb::backends::InMemoryBackend,
    failing: Arc<AtomicBool>,
}

/// The switch of a [`FailingBackend`].
#[derive(Clone, Debug, Default)]
pub struct FailSwitch(Arc<AtomicBool>);

impl FailSwitch {
    /// Makes every later write and sync of the backend fail.
    pub fn fail(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl FailingBackend {
    /// A backend that works until `switch` says fail.
    pub fn new(switch: &FailSwitch) -> Self {
        Self {
            inner: redb::backends::InMemoryBackend::new(),
            failing: switch.0.clone(),
        }
    }

    fn check(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk full (injected)"));
        }
        Ok(())
    }
}

impl StorageBackend for FailingBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

/// What a [`Scripted`] hook does to the response frames it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flip one bit inside the first chunk (in the tag that ends it).
    TamperChunk,
    /// Close the connection instead of sending chunk number `n` (counting from 0).
    DropAtChunk(usize),
    /// Keep session 1's first chunk and send it again in place of session 2's.
    ReplayChunk,
    /// Send a frame one byte larger than the protocol allows instead of the first chunk.
    Oversized,
    /// Never answer the first chunk request (the requester times out).
    Stall,
    /// Answer every sketch step (`More`, `Settled`, `Decoded`) with `Fallback(too large)`,
    /// asking the requester for every shape on the responder's word alone.
    AnswerFallback,
    /// Pass everything through.
    None,
}

/// What a [`Scripted`] hook runs when [`Fault::AnswerFallback`] rewrites an answer.
type OnFallback = Box<dyn Fn() + Send + Sync>;

/// A hook that applies one [`Fault`] and can be switched off.
pub struct Scripted {
    fault: Mutex<Fault>,
    chunks_seen: Mutex<usize>,
    kept: Mutex<Option<Vec<u8>>>,
    on_fallback: Mutex<Option<OnFallback>>,
}

impl Scripted {
    /// A hook applying `fault`.
    pub fn new(fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            fault: Mutex::new(fault),
            chunks_seen: Mutex::new(0),
            kept: Mutex::new(None),
            on_fallback: Mutex::new(None),
        })
    }

    /// Runs `f` each time a `Fallback` goes out under [`Fault::AnswerFallback`] (rewritten, or
    /// the responder's own), before it is sent: a test changes the requester's grants between its two attempts.
    pub fn on_fallback(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.on_fallback.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
    }

    /// Changes the fault (and restarts the chunk count).
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
        *self.chunks_seen.lock().unwrap_or_else(|p| p.into_inner()) = 0;
    }
}

/// The tags of the response frames that carry a sealed chunk (after the version byte): a
/// version 1 chunk, and version 2's `Decoded` (chunk 0 at its end).
const CHUNK_TAGS: [u8; 2] = [0x84, 0x89];

/// The tags of version 2's answers to a sketch: `More`, `Settled`, `Decoded`.
const SKETCH_ANSWER_TAGS: [u8; 3] = [0x87, 0x88, 0x89];

/// The tag of a `Fallback` answer (one the responder chose passes through as it is).
const TAG_FALLBACK: u8 = 0x8a;

impl ResponseHook for Scripted {
    fn outgoing(&self, _peer: &PeerId, frame: &mut Vec<u8>) -> HookAction {
        if *self.fault.lock().unwrap_or_else(|p| p.into_inner()) == Fault::AnswerFallback {
            if frame
                .get(1)
                .is_some_and(|t| SKETCH_ANSWER_TAGS.contains(t) || *t == TAG_FALLBACK)
            {
                *frame = redoubt_protocol::Response::Fallback {
                    reason: redoubt_protocol::FallbackReason::TooLarge,
                }
                .encode()
                .unwrap_or_default();
                if let Some(f) = &*self.on_fallback.lock().unwrap_or_else(|p| p.into_inner()) {
                    f();
                }
            }
            return HookAction::Send;
        }
        if !frame.get(1).is_some_and(|t| CHUNK_TAGS.contains(t)) {
            return HookAction::Send;
        }
        let fault = *self.fault.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = self.chunks_seen.lock().unwrap_or_else(|p| p.into_inner());
        let index = *seen;
        *seen += 1;
        match fault {
            Fault::None | Fault::AnswerFallback => HookAction::Send,
            Fault::Stall => HookAction::Stall,
            Fault::TamperChunk => {
                if index == 0 {
                    // Inside the sealed chunk's authentication tag, which ends the frame.
                    let at = frame.len() - 5;
                    frame[at] ^= 0x20;
                }
                HookAction::Send
            }
            Fault::DropAtChunk(n) if index == n => HookAction::Disconnect,
            Fault::DropAtChunk(_) => HookAction::Send,
            Fault::ReplayChunk => {
                let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
                match kept.as_ref() {
                    None => *kept = Some(frame.clone()),
                    Some(old) if index == 0 => *frame = old.clone(),
                    Some(_) => {}
                }
                HookAction::Send
            }
            Fault::Oversized => {
                *frame = vec![1; redoubt_protocol::MAX_FRAME_LEN + 1];
                HookAction::Send
            }
        }
    }
}

/// Helpers shared by the protocol vector tests (`sync_vectors.rs`, `sync_v2_vectors.rs`).
pub mod vectors {
    use std::path::PathBuf;

    use redoubt_protocol::{Error, Received};
    use redoubt_vault::{Instance, MergePolicy};

    /// Merges as a build before record lineage did (the released vectors of protocol
    /// versions 1 to 3 were made by one): `Newest`, then every record is kept as its current
    /// version only, so no parent or history enters the shapes of a later pull.
    pub fn merge_without_lineage(into: &mut Instance, records: Vec<Received>) -> Result<(), Error> {
        for r in records {
            into.merge_record(&r.client, r.record, MergePolicy::Newest)
                .map_err(Error::Vault)?;
        }
        *into = into.without_lineage();
        Ok(())
    }

    /// Frames in order, each marked `true` for a request.
    pub type Frames = Vec<(bool, Vec<u8>)>;

    /// The path of a file in `tests/vectors/`.
    pub fn path(file: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("vectors")
            .join(file)
    }

    /// Hex to bytes (the vector files are ours: a bad digit is a broken file and panics).
    pub fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
            .collect()
    }

    /// One `>`/`<` line per frame.
    pub fn frame_lines(frames: &[(bool, Vec<u8>)]) -> String {
        frames
            .iter()
            .map(|(out, f)| {
                format!(
                    "{} {}\n",
                    if *out { '>' } else { '<' },
                    redoubt_vault::hex(f)
                )
            })
            .collect()
    }
}
