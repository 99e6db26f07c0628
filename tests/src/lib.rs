//! A two-node harness shared by the cross-crate tests beside this file (`../*.rs`): real
//! libp2p nodes on loopback with in-memory stores.

use std::sync::{Arc, Mutex};

use redoubt_node::{
    Handle, HookAction, NodeConfig, ResponseHook, Shared, Store,
    libp2p::{Multiaddr, PeerId, identity::Keypair},
    spawn,
};
use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue};

/// A live node on 127.0.0.1 with an ephemeral port.
pub struct TestNode {
    /// The node's handle.
    pub handle: Handle,
    /// The store the node serves and merges into (the handle offers no lock on it).
    pub shared: Shared,
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
        self.shared
            .lock()
            .access
            .rights(peer.peer().to_base58().as_bytes(), client.as_bytes())
    }

    fn config() -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig::new(Keypair::generate_ed25519()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?))
    }

    async fn start_config(n: u8, config: NodeConfig) -> anyhow::Result<Self> {
        let store = Store {
            instance: Instance::new(NodeId::from_bytes([n; 16])),
            access: AccessTable::default(),
        };
        let shared = Shared::new(store);
        let (handle, _events) = spawn(config, shared.clone()).await?;
        Ok(Self { handle, shared })
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
    pub fn allow(&self, peer: &TestNode, client: &str, read: bool, write: bool) {
        self.shared
            .lock()
            .access
            .grant(
                peer.peer().to_base58().as_bytes(),
                client.as_bytes(),
                Rights { read, write },
            )
            .unwrap_or_else(|e| panic!("grant: {e}"));
    }

    /// Grants the node `peer` read and write on `client`.
    pub fn allow_peer(&self, peer: PeerId, client: &str) {
        self.shared
            .lock()
            .access
            .grant(
                peer.to_base58().as_bytes(),
                client.as_bytes(),
                Rights {
                    read: true,
                    write: true,
                },
            )
            .unwrap_or_else(|e| panic!("grant: {e}"));
    }

    /// Writes `value` at `vault/record` of `client`.
    pub fn put(&self, client: &str, vault: &str, record: &str, value: &[u8]) {
        let loc = Location::new(vault, record).unwrap_or_else(|e| panic!("{e}"));
        self.shared
            .lock()
            .instance
            .write(client.as_bytes(), &loc, SecretValue::new(value.to_vec()))
            .unwrap_or_else(|e| panic!("write: {e}"));
    }

    /// Deletes `vault/record` of `client`.
    pub fn delete(&self, client: &str, vault: &str, record: &str) {
        let loc = Location::new(vault, record).unwrap_or_else(|e| panic!("{e}"));
        self.shared
            .lock()
            .instance
            .delete(client.as_bytes(), &loc)
            .unwrap_or_else(|e| panic!("delete: {e}"));
    }

    /// The live value at `vault/record` of `client`.
    pub fn get(&self, client: &str, vault: &str, record: &str) -> Option<Vec<u8>> {
        let loc = Location::new(vault, record).unwrap_or_else(|e| panic!("{e}"));
        self.shared
            .lock()
            .instance
            .read(client.as_bytes(), &loc)
            .map(|v| v.expose().to_vec())
    }

    /// Versions held, tombstones included.
    pub fn len(&self) -> usize {
        self.shared.lock().instance.len()
    }

    /// Whether the node holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of the whole state.
    pub fn digest(&self) -> [u8; 32] {
        self.shared.lock().instance.state_digest()
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
