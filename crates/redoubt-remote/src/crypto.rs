//! The remote's keys and seals: the 256-bit storage key, the subkeys derived from it under
//! versioned labels, the sealed-object envelope, the content hash and the chain hash.
//!
//! ```text
//! storage key (random, 256 bits)
//!   ──derive("redoubt remote v1 seal key")──────▶ seal key (XChaCha20-Poly1305)
//!   ──derive("redoubt remote v1 device id key")─▶ device id key
//! device id = BLAKE3-keyed(device id key, node id)[..16]
//! sealed    = version (1) ‖ kind (u8) ‖ nonce (24) ‖ ciphertext ‖ tag (16)
//! AAD       = "redoubt remote v1 object" ‖ 0x00 ‖ version ‖ kind ‖ device id ‖ seq (u64 BE)
//! hash      = BLAKE3-derive_key("redoubt remote v1 segment hash", sealed)
//! chain(n)  = BLAKE3-derive_key("redoubt remote v1 chain", chain(n-1) ‖ seq (u64 LE) ‖ hash)
//! ```

use redoubt_crypto::{Key, TAG_LEN, XNONCE_LEN, derive, is_versioned};
use redoubt_vault::NodeId;
use zeroize::Zeroizing;

use crate::Error;

/// Label of the key objects are sealed under.
pub const SEAL_KEY_LABEL: &str = "redoubt remote v1 seal key";
/// Label of the key device ids are computed under.
pub const DEVICE_ID_KEY_LABEL: &str = "redoubt remote v1 device id key";
/// Label of a segment's content hash (over its sealed bytes).
pub const SEGMENT_HASH_LABEL: &str = "redoubt remote v1 segment hash";
/// Label of a device's chain hash.
pub const CHAIN_LABEL: &str = "redoubt remote v1 chain";
/// Associated-data label of every sealed object.
pub const OBJECT_AAD_LABEL: &[u8] = b"redoubt remote v1 object";
/// The sealed-object envelope version.
pub const SEAL_VERSION: u8 = 1;
/// Bytes a seal adds to its plaintext: version, kind, nonce, tag.
pub const SEAL_OVERHEAD: usize = 2 + XNONCE_LEN + TAG_LEN;

const _: () = assert!(
    is_versioned(SEAL_KEY_LABEL)
        && is_versioned(DEVICE_ID_KEY_LABEL)
        && is_versioned(SEGMENT_HASH_LABEL)
        && is_versioned(CHAIN_LABEL)
);

/// What a sealed object is; part of its associated data, so one kind never opens as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A segment of journal events (or a base).
    Segment = 1,
    /// A device's head.
    Head = 2,
}

/// The 256-bit key everything on a remote is sealed under. Wiped on drop, never printed.
#[derive(Clone)]
pub struct StorageKey(Key);

impl StorageKey {
    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Result<Self, Error> {
        Ok(Self(Key::random()?))
    }

    /// A key from its bytes (received over a pairing channel, or unwrapped).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Key::from_bytes(bytes))
    }

    /// The key's bytes, to wrap or persist them sealed.
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }

    fn seal_key(&self) -> Key {
        derive(SEAL_KEY_LABEL, self.0.expose())
    }

    /// The opaque id `node` writes under on this remote: readers with the storage key can
    /// tell devices apart, the storage cannot link them to peer ids.
    pub fn device_id(&self, node: &NodeId) -> DeviceId {
        let key = derive(DEVICE_ID_KEY_LABEL, self.0.expose());
        let full = blake3::keyed_hash(key.expose(), node.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&full.as_bytes()[..16]);
        DeviceId(id)
    }

    /// Seals `plaintext` as object `kind` of `device` at `seq`.
    pub fn seal(
        &self,
        kind: Kind,
        device: &DeviceId,
        seq: u64,
        plaintext: &[u8],
        nonce: &[u8; XNONCE_LEN],
    ) -> Result<Vec<u8>, Error> {
        let sealed =
            redoubt_crypto::seal_x(&self.seal_key(), nonce, &aad(kind, device, seq), plaintext)?;
        let mut out = Vec::with_capacity(2 + XNONCE_LEN + sealed.len());
        out.extend_from_slice(&[SEAL_VERSION, kind as u8]);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Self::seal`] made; `Err` says why (the caller names the object).
    pub fn open(
        &self,
        kind: Kind,
        device: &DeviceId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, &'static str> {
        if bytes.len() < SEAL_OVERHEAD {
            return Err("shorter than its seal");
        }
        if bytes[0] != SEAL_VERSION {
            return Err("unknown seal version");
        }
        if bytes[1] != kind as u8 {
            return Err("not an object of this kind");
        }
        let (nonce, sealed) = bytes[2..].split_at(XNONCE_LEN);
        let nonce: &[u8; XNONCE_LEN] = nonce.try_into().map_err(|_| "nonce")?;
        redoubt_crypto::open_x(&self.seal_key(), nonce, &aad(kind, device, seq), sealed)
            .map_err(|_| "authentication failed (altered, moved, or another remote's key)")
    }
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

/// A device's opaque id on a remote (16 bytes, written as 32 lowercase hex digits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub [u8; 16]);

impl DeviceId {
    /// Parses 32 lowercase hex digits.
    pub fn parse(hex: &str) -> Option<Self> {
        if hex.len() != 32 {
            return None;
        }
        Some(Self(unhex(hex)?.try_into().ok()?))
    }
}

/// Lowercase hex digits (an even number of them) as bytes.
pub(crate) fn unhex(hex: &str) -> Option<Vec<u8>> {
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    bytes
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redoubt_vault::hex(&self.0))
    }
}

impl std::fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

fn aad(kind: Kind, device: &DeviceId, seq: u64) -> Vec<u8> {
    [
        OBJECT_AAD_LABEL,
        &[0, SEAL_VERSION, kind as u8],
        &device.0,
        &seq.to_be_bytes(),
    ]
    .concat()
}

/// A segment's content hash: over its sealed bytes, so a reader checks the name before
/// opening anything.
pub fn segment_hash(sealed: &[u8]) -> [u8; 32] {
    blake3::derive_key(SEGMENT_HASH_LABEL, sealed)
}

/// The chain hash after segment `seq` with content hash `hash`, from the one before.
pub fn chain(prev: &[u8; 32], seq: u64, hash: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CHAIN_LABEL);
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(hash);
    *h.finalize().as_bytes()
}

/// A fresh random nonce.
pub fn random_nonce() -> Result<[u8; XNONCE_LEN], Error> {
    let mut n = [0u8; XNONCE_LEN];
    redoubt_crypto::fill_random(&mut n)?;
    Ok(n)
}
