//! Every table of the store, in one place (the iroh-docs pattern): names, typed keys and value
//! layouts. `docs/store-format.md` specifies every byte.
//!
//! | table      | key                   | value                                              |
//! |------------|-----------------------|----------------------------------------------------|
//! | `meta`     | row name (`&str`)     | plain: format, KDF, password check, wrapped key;   |
//! |            |                       | sealed: the journal's folded-through row           |
//! | `identity` | row name (`&str`)     | sealed state envelope: seed, clock                 |
//! | `records`  | keyed id (`[u8; 32]`) | sealed record envelope                             |
//! | `grants`   | keyed id (`[u8; 32]`) | sealed state envelope: peer, client, rights        |
//! | `journal`  | sequence (`u64`)      | sealed event envelope ([`crate::journal`])         |
//! | `remotes`  | keyed id (`[u8; 32]`) | sealed remote state                                |
//! | `addresses`| keyed id (`[u8; 32]`) | sealed state envelope: a paired peer's addresses   |
//! | `clients`  | keyed id (`[u8; 32]`) | sealed: a client's path and kept sketch sums (v2)  |
//! | `sketch deltas` | sequence (`u64`) | sealed: one commit's element changes (v2)          |
//! | `sketch index` | keyed id (`[u8; 32]`) | record rows holding a version with that key (v2) |
//!
//! [`crate::envelope`] describes the envelopes.
//!
//! Transactions are opened by the caller and passed down: the store opens every table of one
//! write transaction together, so one change is one commit.

use redb::{ReadTransaction, Table, TableDefinition, WriteTransaction};

use crate::Error;

/// Table `meta`: the plaintext rows needed before the data key is known, and the sealed
/// [`META_JOURNAL_FOLDED`] row.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Table `identity`: the node's sealed ed25519 seed and its sealed clock.
pub const IDENTITY: TableDefinition<&str, &[u8]> = TableDefinition::new("identity");
/// Table `records`: one sealed envelope per (client, vault, record), under its keyed id.
pub const RECORDS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("records");
/// Table `grants`: one sealed grant per (peer, client), under its keyed id.
pub const GRANTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("grants");

/// Table `journal`: one sealed event per commit, under its sequence number (1, 2, …); rows
/// older than the oldest kept were folded away.
pub const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
/// Table `remotes`: one sealed remote state per remote name, under its keyed id (`store/remotes.rs`).
pub const REMOTES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("remotes");
/// Table `addresses`: the address book, one sealed row per paired peer under the keyed id of
/// its peer id (`store/addresses.rs`, [`crate::addresses`]).
pub const ADDRESSES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("addresses");

/// Table `clients` (format 2): one sealed row per client, its path and its sketch sums as of a
/// delta ([`crate::sketch_rows::ClientRow`]), under the keyed id of its client id.
pub const CLIENTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("clients");
/// Table `sketch deltas` (format 2): one sealed row per commit since the last checkpoint, the
/// element changes it made, under its delta sequence number.
pub const SKETCH_DELTAS: TableDefinition<u64, &[u8]> = TableDefinition::new("sketch deltas");
/// Table `sketch index` (format 2): per (client, element key), under its keyed id, the keyed
/// ids of the record rows whose version has that key (not sealed: it holds keyed ids only).
pub const SKETCH_INDEX: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sketch index");

/// `meta` row: magic `redoubt-store` (13 bytes) ‖ format version (u16 LE).
pub const META_FORMAT: &str = "format";
/// `meta` row: KDF id (u8, 1 = Argon2id v0x13) ‖ memory KiB ‖ passes ‖ lanes (u32 LE each)
/// ‖ salt (16 bytes).
pub const META_KDF: &str = "kdf";
/// `meta` row: the 32-byte password check value.
pub const META_CHECK: &str = "password check";
/// `meta` row: the wrapped data key, nonce (24) ‖ sealed key (48).
pub const META_DATA_KEY: &str = "data key";
/// `meta` row, present once events were folded: a state envelope (label
/// [`crate::envelope::JOURNAL_STATE_AAD_LABEL`], position its name) over the sequence number
/// (u64 LE) and hash (32 bytes) of the last event folded away: the parent of the oldest kept.
pub const META_JOURNAL_FOLDED: &str = "journal folded";
/// `identity` row: the sealed 32-byte ed25519 seed.
pub const IDENTITY_SEED: &str = "seed";
/// `identity` row: the sealed clock, wall ms (u64 LE) ‖ counter (u32 LE).
pub const IDENTITY_CLOCK: &str = "clock";

/// The magic that starts the `meta` format row.
pub const STORE_MAGIC: &[u8; 13] = b"redoubt-store";

/// Every table, opened in one write transaction.
pub(crate) struct Tables<'tx> {
    pub(crate) meta: Table<'tx, &'static str, &'static [u8]>,
    pub(crate) identity: Table<'tx, &'static str, &'static [u8]>,
    pub(crate) records: Table<'tx, &'static [u8; 32], &'static [u8]>,
    pub(crate) grants: Table<'tx, &'static [u8; 32], &'static [u8]>,
    pub(crate) journal: Table<'tx, u64, &'static [u8]>,
    pub(crate) clients: Table<'tx, &'static [u8; 32], &'static [u8]>,
    pub(crate) deltas: Table<'tx, u64, &'static [u8]>,
    pub(crate) index: Table<'tx, &'static [u8; 32], &'static [u8]>,
}

impl<'tx> Tables<'tx> {
    /// Opens (creating when absent) every table in `tx`.
    pub(crate) fn new(tx: &'tx WriteTransaction) -> Result<Self, Error> {
        Ok(Self {
            meta: tx.open_table(META)?,
            identity: tx.open_table(IDENTITY)?,
            records: tx.open_table(RECORDS)?,
            grants: tx.open_table(GRANTS)?,
            journal: tx.open_table(JOURNAL)?,
            clients: tx.open_table(CLIENTS)?,
            deltas: tx.open_table(SKETCH_DELTAS)?,
            index: tx.open_table(SKETCH_INDEX)?,
        })
    }
}

/// Reads one `&str`-keyed row of a read transaction's table, copied out; `None` when the
/// table or the row is absent.
pub(crate) fn read_row(
    tx: &ReadTransaction,
    table: TableDefinition<&'static str, &'static [u8]>,
    row: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let table = match tx.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(table.get(row)?.map(|v| v.value().to_vec()))
}
