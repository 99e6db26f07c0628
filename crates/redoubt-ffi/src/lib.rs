//! Redoubt for apps: one small object API over plain types (text, bytes, records, enums and
//! one error enum), exported with uniffi to Kotlin, Swift and Python (`scripts/bindings.sh`
//! generates them; `docs/bindings.md` shows their use).
//!
//! A [`Vault`] is one vault file: [`Vault::create`] or [`Vault::open`] it with the password
//! the app got from its user (bytes, never argv), read and change it ([`Vault::put`],
//! [`Vault::get`], [`Vault::list`], [`Vault::remove`], [`Vault::history`],
//! [`Vault::restore`]), grant peers by their typed, validated base58 id ([`Vault::allow`],
//! [`Vault::deny`]), start its node ([`Vault::start`]), pair ([`Vault::pair_offer`],
//! [`Vault::pair_join`]), sync with peers ([`Vault::sync`]) and with shared storage
//! ([`Vault::remote_add`], [`Vault::remote_join`], [`Vault::remote_sync`]), change its
//! password ([`Vault::change_password`]), and hear each committed change through a
//! [`ChangeListener`].
//!
//! The crate owns a tokio runtime: the app needs none, and no call panics for want of one.
//! Calls block their caller until done (call them off the UI thread); callbacks arrive on
//! threads of the library's own.
//!
//! ```
//! use redoubt_ffi::{KdfStrength, Vault};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("phone.redb").to_string_lossy().into_owned();
//! let vault = Vault::create(path, b"pw".to_vec(), KdfStrength::InsecureFastForTests)?;
//! vault.put("alice".into(), "wallet".into(), "seed".into(), b"s3cret".to_vec())?;
//! let seed = vault.get("alice".into(), "wallet".into(), "seed".into())?;
//! assert_eq!(seed.as_deref(), Some(&b"s3cret"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

uniffi::setup_scaffolding!();

mod error;
mod listen;
mod pairing;
mod remote;
mod runtime;
mod types;
mod vault;

pub use error::RedoubtError;
pub use listen::{ChangeListener, PairingListener};
pub use types::{
    ChangeCause, ChangeEvent, ChangeKind, Entry, Grant, MergeCounts, Paired, PairingOffer,
    RemoteSummary, Status, SyncSummary, VersionInfo,
};
pub use vault::{KdfStrength, Vault};
