//! Redoubt's sync through dumb shared storage: a local or mounted folder, S3 and S3-compatible
//! stores, Azure Blob or GCS, with no server code and no shared mutable object.
//!
//! Each device writes only under its own opaque id (a keyed hash of its node id under the
//! storage key): immutable sealed **segments** of its journal events, created only if absent
//! and named by sequence number and content hash, and a small sealed **head** naming its
//! latest segment and chain hash, updated by compare-and-swap where the backend has one (a
//! head changed by someone else means a cloned vault, [`Error::HeadConflict`]). Concurrent
//! devices never overwrite each other, so nothing is lost even on a folder without
//! compare-and-swap. Everything is sealed (XChaCha20-Poly1305) under a 256-bit storage key,
//! which a **key object** holds wrapped under a recovery passphrase (Argon2id). Segment sizes
//! are padded (Padmé); names carry no paths, client names or counts.
//!
//! A [`Remote::sync`] LISTs the heads once, GETs each head that changed and each segment not
//! seen yet, merges their record versions into the vault in one commit
//! ([`redoubt_store::Store::merge_batch`], the vault's CRDT merge), refusing records of
//! clients not chosen for the remote, and uploads this device's new journal events as one
//! segment. With nothing new anywhere it makes one LIST and nothing else. The remote's state
//! (URL, clients, storage key, what was seen and uploaded) is sealed in the vault's store.
//! `docs/storage-format.md` specifies every byte.
//!
//! **Compaction** ([`Compaction`], [`Remote::compact`]): past a threshold a device writes a
//! **base** of its records (a format-2 segment carrying the chain before it, where readers stop
//! their walk), and deletes its older segments once the base is older than a grace period; a
//! reader that finds a needed segment gone reads the head again and converges from the base.
//!
//! **Faults**: every storage request runs under a per-request timeout
//! ([`Backend::with_timeout`]) and fails with an error naming the request and the object
//! ([`Error::Storage`], [`Error::Timeout`]); [`faults`] is a counting, fault-injecting wrapper
//! of any object store for tests and benches.
//!
//! ```
//! use redoubt_remote::{Backend, Remote};
//! use redoubt_store::{KdfLimits, KdfParams, Password, Store};
//! use redoubt_vault::{Location, SecretValue};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let url = dir.path().join("shared").display().to_string(); // a NAS folder, say
//! let pw = Password::new(b"vault password".to_vec());
//! let fast = KdfParams::insecure_fast(); // tests only
//! let mut laptop = Store::create(&dir.path().join("a.redb"), &pw, fast)?;
//! let mut phone = Store::create(&dir.path().join("b.redb"), &pw, fast)?;
//! let loc = Location::new("wallet", "seed")?;
//! laptop.put(b"alice", &loc, SecretValue::new(b"s3cret".to_vec()))?;
//!
//! let mut a = Remote::add(&mut laptop, "nas", &url, Backend::from_url(&url)?, None,
//!     b"recovery words", fast).await?;
//! a.sync(&mut laptop).await?; // uploads one segment
//! let mut b = Remote::join(&mut phone, "nas", &url, Backend::from_url(&url)?, None,
//!     b"recovery words", &KdfLimits::default()).await?;
//! let report = b.sync(&mut phone).await?;
//! assert_eq!(report.merge.added, 1);
//! assert_eq!(phone.get(b"alice", &loc)?.map(|v| v.expose().to_vec()), Some(b"s3cret".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod access;
mod backend;
pub mod crypto;
mod error;
pub mod faults;
pub mod format;
pub mod state;
mod sync;

pub use access::{Access, Noter};
pub use backend::{Backend, DEFAULT_REQUEST_TIMEOUT, Flavor};
pub use crypto::{DeviceId, StorageKey};
pub use error::Error;
pub use state::RemoteState;
pub use sync::{Compaction, Remote, SyncReport, Uploaded};

/// Entry points for the fuzz targets in `fuzz/` and the test vectors. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use redoubt_snapshot::KdfLimits;

    use crate::{
        crypto::{DeviceId, Kind, StorageKey},
        format,
        state::RemoteState,
    };

    /// The fixed storage key of the fuzz targets and the test vectors.
    pub const KEY: [u8; 32] = [0x42; 32];
    /// The fixed device id of the fuzz targets and the test vectors.
    pub const DEVICE: [u8; 16] = [0x24; 16];

    /// The segment fuzz target: opens `data` as segment 1 of [`DEVICE`] under [`KEY`], and
    /// decodes it as a plaintext; a plaintext that decodes re-encodes to one that decodes the
    /// same.
    pub fn segment(data: &[u8]) {
        let key = StorageKey::from_bytes(KEY);
        let _ = key.open(Kind::Segment, &DeviceId(DEVICE), 1, data);
        if let Ok(segment) = format::decode_segment(data) {
            let again = format::encode_segment(&segment).ok();
            let back = again.as_deref().map(|b| format::decode_segment(b));
            assert!(
                matches!(back, Some(Ok(ref s)) if *s == segment),
                "a decoded segment re-encodes and decodes the same"
            );
        }
    }

    /// The head, key object and remote state fuzz target.
    pub fn head(data: &[u8]) {
        let key = StorageKey::from_bytes(KEY);
        let _ = key.open(Kind::Head, &DeviceId(DEVICE), 0, data);
        if let Ok(head) = format::decode_head(data) {
            assert_eq!(
                format::encode_head(&head),
                data,
                "a decoded head re-encodes as it was"
            );
        }
        let cheap = KdfLimits {
            max_memory_kib: 64,
            max_iterations: 1,
            max_parallelism: 1,
        };
        let _ = format::unwrap_key(data, b"pass", &cheap);
        if let Ok(state) = RemoteState::decode(data) {
            let again = state.encode().ok();
            let again = again.as_deref().map(|b| b.as_slice());
            if again.and_then(<[u8]>::first) == data.first() {
                // The version this build writes: one encoding per state.
                assert_eq!(again, Some(data), "state re-encodes");
            } else {
                // An older version migrates: its re-encoding is the current version, which
                // decodes and re-encodes as it is.
                let twice = again
                    .and_then(|b| RemoteState::decode(b).ok())
                    .and_then(|s| s.encode().ok());
                assert_eq!(
                    twice.as_deref().map(|b| b.as_slice()),
                    again,
                    "a migrated state re-encodes"
                );
                assert!(again.is_some(), "a decoded state encodes");
            }
        }
    }
}
