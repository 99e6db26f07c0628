//! This node's long-term identity: an ed25519 key, usable as a libp2p identity.

use ed25519_dalek::SigningKey;
use redoubt_vault::NodeId;
use zeroize::Zeroizing;

use crate::{Error, crypto::fill_random};

/// `blake3` context deriving the 16-byte [`NodeId`] that stamps writes from the public key.
pub const NODE_ID_CONTEXT: &str = "redoubt v1 node id";

/// The node's ed25519 secret key (32-byte seed). Wiped on drop; `Debug` shows the public key.
#[derive(Clone)]
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut())?;
        Ok(Self { seed })
    }

    /// The identity with this ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            seed: Zeroizing::new(seed),
        }
    }

    /// The ed25519 seed, for handing to libp2p (`Keypair::ed25519_from_bytes`) or to storage.
    pub fn expose_seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    /// The node id that stamps this node's writes.
    pub fn node_id(&self) -> NodeId {
        let full = blake3::derive_key(NODE_ID_CONTEXT, &self.public_key());
        let mut short = [0u8; 16];
        short.copy_from_slice(&full[..16]);
        NodeId::from_bytes(short)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity(public {})",
            redoubt_vault::hex(&self.public_key())
        )
    }
}
