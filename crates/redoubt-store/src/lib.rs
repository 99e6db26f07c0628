//! Redoubt's sealed embedded store: a vault in one [redb](https://docs.rs/redb) database
//! file, every change one durable transaction, nothing in the file in plain text but the
//! format row and the KDF parameters.
//!
//! The key hierarchy is age's file-key pattern: a random 256-bit data key, wrapped
//! (XChaCha20-Poly1305) under the Argon2id password key, so a password change rewraps one key.
//! Every record is sealed on its own (XChaCha20-Poly1305, random 24-byte nonce) under a key
//! derived from the data key, with associated data naming its row; rows are keyed by keyed
//! ids (blake3 keyed hashes of the client, vault and record ids), never by paths. The tables
//! are declared in [`tables`]; `docs/store-format.md` specifies every byte of format
//! version [`FORMAT_VERSION`].
//!
//! **Journal.** Every commit also appends one event to table `journal`, in the same
//! transaction: schema version, sequence number, the parent event's hash, the writer, its clock
//! reading, and the record versions and grant changes it made ([`journal`]; every byte in
//! `docs/journal-format.md`). The records table is the folded base state: events past a
//! retention window (30 days) or a count (100 000) are folded away by deleting journal rows
//! only ([`Store::fold`], and on commit past the count). [`Store::journal`] reads the events
//! back with the hash chain checked; [`journal::apply`] replays them onto an older base. Each
//! schema version's encode, decode, hash and apply live in their own frozen module
//! ([`journal::v1`]).
//!
//! **Cost.** A put writes one record row, the clock row and one journal row in one commit
//! ([`redb::Durability::Immediate`]: fsynced before `Ok`), never the whole vault, and the
//! sketch state rows it moves (format 2: two index rows and one delta row; every 256th commit
//! a checkpoint of the clients it changed). Records stay in the file: a read opens its row, a
//! merge reads the rows it touches, and an open reads only the small rows (keys, identity,
//! clock, grants, journal state and each client's kept sketch sums, [`sketch_rows`]), so
//! opening and holding a store cost the same whatever its size. What reads everything says so
//! ([`Store::load_instance`], [`Store::state_digest`], [`Store::verify`], a walk of a client in
//! location order, [`Store::records_after`], whose order is built by opening every row).
//!
//! **Password change, migration, export.** [`Store::change_password`] rewraps the data key
//! under a new password and salt in one commit, rewriting no record.
//! [`Store::create_from_snapshot`] migrates a format-1 snapshot file's state (identity, clock,
//! grants, every record version) into a new store in one transaction; [`Store::export`] gives
//! the store's state back as a [`redoubt_snapshot::Snapshot`], the file `sync-file` reads:
//!
//! ```
//! use redoubt_snapshot::{SealKey, Snapshot};
//! use redoubt_store::{KdfLimits, KdfParams, Password, Store};
//! use redoubt_vault::{Location, SecretValue};
//!
//! let dir = tempfile::tempdir()?;
//! let mut snapshot = Snapshot::generate()?;
//! let loc = Location::new("wallet", "seed")?;
//! snapshot.instance.write(b"alice", &loc, SecretValue::new(b"s3cret".to_vec()))?;
//!
//! let (old, new) = (Password::new(b"old".to_vec()), Password::new(b"new".to_vec()));
//! let path = dir.path().join("vault.redb");
//! let fast = KdfParams::insecure_fast(); // tests only; real vaults use KdfParams::default()
//! let mut store = Store::create_from_snapshot(&path, &snapshot, &old, fast)?;
//! assert_eq!(store.node(), snapshot.identity.node_id()); // same identity, same peer id
//! store.change_password(&old, &new, fast)?;
//! drop(store);
//! let store = Store::open(&path, &new, &KdfLimits::default())?;
//!
//! let password = redoubt_snapshot::Password::new(b"backup".to_vec());
//! let sealed = store.export()?.seal(&SealKey::generate(&password, fast)?)?;
//! let (back, _) = Snapshot::open(&sealed, &password)?;
//! assert_eq!(back.instance.state_digest(), snapshot.instance.state_digest());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Integrity** is per record and per page, not per file. An open checks no record page (a
//! truncated or foreign file still fails it, with [`Error::Damaged`] or [`Error::NotAStore`]);
//! each sealed row authenticates itself when read, so a row altered or moved to another key
//! fails to open with [`Error::RecordCorrupted`], naming the row by its keyed id, and
//! [`Store::verify`] opens every row. A byte changed in free space (pages no tree refers to)
//! may go unnoticed: it holds no data.
//!
//! ```
//! use redoubt_store::{KdfLimits, KdfParams, Password, Store};
//! use redoubt_vault::{Location, SecretValue};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("vault.redb");
//! let password = Password::new(b"correct horse battery staple".to_vec());
//! let loc = Location::new("wallet", "seed")?;
//! {
//!     // Tests may lower the KDF cost; real vaults use KdfParams::default().
//!     let mut store = Store::create(&path, &password, KdfParams::insecure_fast())?;
//!     store.put(b"alice", &loc, SecretValue::new(b"s3cret".to_vec()))?; // durable here
//! }
//! let store = Store::open(&path, &password, &KdfLimits::default())?;
//! assert_eq!(store.get(b"alice", &loc)?.map(|v| v.expose().to_vec()), Some(b"s3cret".to_vec()));
//! // The put is event 1 of the journal, its chain checked as it is read.
//! let events = store.journal(1)?;
//! assert_eq!((events.len(), events[0].event.parent()), (1, &[0u8; 32]));
//! assert_eq!(store.journal_head(), (1, events[0].hash));
//! let wrong = Password::new(b"guess".to_vec());
//! drop(store);
//! assert!(matches!(
//!     Store::open(&path, &wrong, &KdfLimits::default()),
//!     Err(redoubt_store::Error::WrongPassword)
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod addresses;
pub mod envelope;
mod error;
pub mod journal;
mod keys;
pub mod sketch_rows;
mod store;
pub mod tables;

pub use error::Error;
pub use keys::{
    DATA_KEY_AAD, DATA_KEY_AAD_VERSION, GRANT_ID_KEY_LABEL, JOURNAL_KEY_LABEL,
    PASSWORD_CHECK_LABEL, Password, RECORD_ID_KEY_LABEL, RECORD_KEY_LABEL, SKETCH_ID_KEY_LABEL,
    STATE_KEY_LABEL,
};
pub use redoubt_snapshot::{KdfLimits, KdfParams};
pub use store::{IN_MEMORY_PATH, ReadOnlyStore, Store};

/// The store format version this build writes. Version 2 added the kept sketch state
/// (tables `clients`, `sketch deltas`, `sketch index`); a version 1 store migrates to it when
/// first opened for writing.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest store format version this build opens.
pub const OLDEST_FORMAT_VERSION: u16 = 1;

/// Entry points for the fuzz target in `fuzz/` and the envelope test vector. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use redoubt_crypto::Key;
    use redoubt_vault::{ClientId, Location, Record, codec::Writer};

    use crate::{Error, KdfParams, Password, envelope};

    /// The fixed record seal key of the fuzz target and the test vector.
    pub const KEY: [u8; 32] = [0x42; 32];
    /// The fixed row (keyed id) of the fuzz target and the test vector.
    pub const ROW: [u8; 32] = [0x24; 32];

    /// Seals `client`'s `record` as row [`ROW`] under [`KEY`] with `nonce`.
    pub fn seal(client: &[u8], record: &Record, nonce: &[u8; 24]) -> Result<Vec<u8>, Error> {
        envelope::seal_record(&Key::from_bytes(KEY), &ROW, client, record, nonce)
    }

    /// Opens `data` as the envelope of row [`ROW`] under [`KEY`].
    pub fn open(data: &[u8]) -> Result<(Vec<u8>, Record), Error> {
        envelope::open_record(&Key::from_bytes(KEY), &ROW, data)
    }

    /// The `records` table key of `client`'s `location` under the subkeys of `data_key`.
    pub fn record_row(data_key: [u8; 32], client: &[u8], location: &Location) -> [u8; 32] {
        crate::keys::DataKey::from_bytes(data_key)
            .keys()
            .record_row(&ClientId::from_path(client), location.ids())
    }

    /// The password check value and the wrapped data key (with `nonce`) that `meta` holds for
    /// `password`, `params` and `salt`.
    pub fn wrap(
        password: &Password,
        params: KdfParams,
        salt: &[u8; 16],
        data_key: [u8; 32],
        nonce: &[u8; 24],
    ) -> Result<([u8; 32], Vec<u8>), Error> {
        let key = crate::keys::PasswordKey::derive(password, params, salt)?;
        let wrapped = key.wrap(&crate::keys::DataKey::from_bytes(data_key), nonce)?;
        Ok((key.check(), wrapped))
    }

    /// Seals the plaintext of journal event `seq` under [`KEY`] with `nonce`, as a `journal`
    /// row.
    pub fn seal_event(seq: u64, plaintext: &[u8], nonce: &[u8; 24]) -> Result<Vec<u8>, Error> {
        envelope::seal_event(&Key::from_bytes(KEY), seq, plaintext, nonce)
    }

    /// Opens `data` as the `journal` row of event `seq` under [`KEY`]: the event's plaintext.
    pub fn open_event(seq: u64, data: &[u8]) -> Result<Vec<u8>, Error> {
        envelope::open_event(&Key::from_bytes(KEY), seq, data).map(|p| p.to_vec())
    }

    /// The journal event fuzz target: decodes `data` as an event plaintext (any version this
    /// build reads); an event that decodes re-encodes to the same bytes, and hashes as they
    /// do. Also opens `data` as a sealed row of event 1 under [`KEY`].
    pub fn journal_event(data: &[u8]) {
        let _ = open_event(1, data);
        if let Ok(event) = crate::journal::decode(data) {
            let again = crate::journal::encode(&event).ok();
            assert_eq!(
                again.as_ref().map(|b| b.as_slice()),
                Some(data),
                "a decoded event re-encodes as it was"
            );
            assert!(crate::journal::hash(data).is_ok(), "a decoded event hashes");
        }
    }

    /// The address book row fuzz target: decodes `data` as a row plaintext (size capped before
    /// anything is allocated); a row that decodes re-encodes to the same bytes. Also opens
    /// `data` as a sealed `addresses` row [`ROW`] under [`KEY`] as the state key.
    pub fn address_row(data: &[u8]) {
        let keys = crate::keys::DataKey::from_bytes(KEY).keys();
        let _ = crate::store::open_address_row(&keys, &ROW, data);
        if let Ok(row) = crate::addresses::PeerAddresses::decode(data) {
            assert_eq!(
                row.encode().ok().as_deref(),
                Some(data),
                "a decoded address book row re-encodes as it was"
            );
        }
    }

    /// The sketch state rows fuzz target: decodes `data` as a `clients` row, a `sketch deltas`
    /// row and a `sketch index` row (sizes capped before anything is allocated); each that
    /// decodes re-encodes to the same bytes. Also opens `data` as a sealed `clients` row
    /// [`ROW`] under [`KEY`] as the state key.
    pub fn sketch_rows(data: &[u8]) {
        use crate::sketch_rows::{
            ClientRow, decode_delta, decode_index, encode_delta, encode_index,
        };
        let keys = crate::keys::DataKey::from_bytes(KEY).keys();
        let _ = crate::store::open_client_row(&keys, &ROW, data);
        if let Ok(row) = ClientRow::decode(data) {
            assert_eq!(
                row.encode().ok().as_deref(),
                Some(data),
                "a clients row re-encodes"
            );
        }
        if let Ok(entries) = decode_delta(data) {
            assert_eq!(
                encode_delta(&entries).ok().as_deref(),
                Some(data),
                "a delta re-encodes"
            );
        }
        if let Ok(rows) = decode_index(data) {
            assert_eq!(
                encode_index(&rows).ok().as_deref(),
                Some(data),
                "an index row re-encodes"
            );
        }
    }

    /// Whether `data` decodes as the plaintext of a version 2 record envelope (a record with
    /// lineage).
    pub fn decodes_as_v2_plaintext(data: &[u8]) -> bool {
        envelope::decode_record_plaintext_2(data).is_ok()
    }

    /// The fuzz target: opens `data` as an envelope, and decodes it as a plaintext of each
    /// envelope version (what the AEAD guards); a plaintext that decodes re-encodes to the
    /// same bytes.
    pub fn envelope(data: &[u8]) {
        let _ = open(data);
        if let Ok((client, record)) = envelope::decode_record_plaintext(data) {
            let mut w = Writer::<Error>::new();
            w.bytes_u16(&client);
            envelope::LAYOUT.encode(&mut w, &record);
            assert_eq!(
                w.into_bytes(),
                data,
                "a decoded plaintext re-encodes as it was"
            );
        }
        if let Ok((client, record)) = envelope::decode_record_plaintext_2(data) {
            let mut w = Writer::<Error>::new();
            w.bytes_u16(&client);
            redoubt_vault::codec::lineage::encode_record(envelope::LAYOUT, &mut w, &record);
            assert_eq!(
                w.into_bytes(),
                data,
                "a decoded version 2 plaintext re-encodes as it was"
            );
        }
    }
}
