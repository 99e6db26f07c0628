//! The [`Store`]: one redb file, opened with a password, every change one durable commit that
//! also appends its journal event ([`journal`]).

mod addresses;
mod grants;
mod journal;
mod kdf;
mod memory;
mod migrate;
mod read_only;
mod reads;
mod remotes;
mod sketch;
mod sync_file;

use std::{
    collections::{BTreeSet, HashMap},
    fs::OpenOptions,
    path::{Path, PathBuf},
};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, backends::FileBackend,
};
use redoubt_crypto::ct_eq;
use redoubt_snapshot::{Identity, KdfLimits, KdfParams};
use redoubt_vault::{
    AccessTable, ClientId, Clock, Instance, Location, MAX_PATH_LEN, MergeBounds, MergePolicy,
    MergeReport, NodeId, Record, SecretValue, Stamp,
    codec::{Reader, Writer},
    merge_one, now_ms,
};

pub use self::memory::IN_MEMORY_PATH;
pub use self::read_only::ReadOnlyStore;
pub(crate) use self::{addresses::open_address_row, sketch::open_client_row};
use self::{
    grants::open_grant,
    journal::JournalState,
    sketch::{Before, RowChange, SketchState},
};
use crate::{
    Error, FORMAT_VERSION, OLDEST_FORMAT_VERSION,
    envelope::{
        IDENTITY_AAD_LABEL, belongs, open_record, open_state, random_nonce, seal_record, seal_state,
    },
    journal::v1::RecordChange,
    keys::{DataKey, Keys, Password, PasswordKey, check_params},
    tables::{
        GRANTS, IDENTITY, IDENTITY_CLOCK, IDENTITY_SEED, META, META_CHECK, META_DATA_KEY,
        META_FORMAT, META_KDF, RECORDS, STORE_MAGIC, Tables, read_row,
    },
};

/// KDF identifier in the `meta` KDF row: Argon2id, version 0x13.
const KDF_ARGON2ID: u8 = 1;
/// redb's page cache: bounded, so a store's memory does not grow with its file (redb's
/// default, 1 GiB, held about 300 MiB at 10^6 records). Reads open rows on demand; the pages a
/// session or a merge touches again are the index's and the records' branch pages.
const CACHE_BYTES: usize = 16 << 20;
/// redb's file magic, to tell a foreign file from a damaged store before redb reads it.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// A vault in one embedded database file, every record sealed under a password-wrapped data
/// key; see the [crate docs](crate).
///
/// Every change is one redb write transaction committed with [`Durability::Immediate`] before
/// the method returns `Ok`, and writes only the rows it changes (one record row and the clock
/// row for a put) and the one journal event recording them ([`Self::journal`]). Records stay
/// in the file: every read opens its row, and an open reads no record, only the small rows
/// (keys, identity, clock, grants, journal state, each client's kept sketch sums).
pub struct Store {
    db: Database,
    path: PathBuf,
    keys: Keys,
    identity: Identity,
    node: NodeId,
    clock: Clock,
    access: AccessTable,
    /// Record rows found not to open (by [`Self::verify`]) and not rewritten since.
    damaged: BTreeSet<[u8; 32]>,
    journal: JournalState,
    sketch: SketchState,
    /// Bumped by every commit: what a cached location order was made at.
    generation: u64,
    /// One client's location order, as [`Self::records_after`] walks it.
    order: std::sync::Mutex<Option<reads::Order>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("node", &self.node())
            .field("records", &self.len())
            .field("grants", &self.access.len())
            .finish_non_exhaustive()
    }
}

/// What [`Store::merge_batch_noting`] tells of each changed record: client, location, report.
type Noter<'a> = dyn FnMut(&[u8], &Location, &MergeReport) + 'a;

impl Store {
    /// Creates a new store at `path` with a fresh identity, refusing to touch anything already
    /// there ([`Error::AlreadyExists`]). `params` must pass the default
    /// [`KdfLimits`]; real vaults use [`KdfParams::default`].
    pub fn create(path: &Path, password: &Password, params: KdfParams) -> Result<Self, Error> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        redoubt_crypto::fill_random(seed.as_mut())?;
        let identity = Identity::from_seed(*seed);
        let node = identity.node_id();
        Self::create_with(
            path,
            password,
            params,
            identity,
            Instance::new(node),
            |_, _, _| Ok(AccessTable::default()),
        )
    }

    /// Creates a store at `path` holding `identity` and `instance`'s clock, then lets `fill`
    /// write the rest (`instance`'s records, grants) into the same first transaction. Nothing
    /// is left at `path` unless all of it commits.
    fn create_with(
        path: &Path,
        password: &Password,
        params: KdfParams,
        identity: Identity,
        instance: Instance,
        fill: impl FnOnce(&mut Tables<'_>, &Keys, &Instance) -> Result<AccessTable, Error>,
    ) -> Result<Self, Error> {
        check_params(&params, &KdfLimits::default())?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Sealed or not, the file is nobody else's to read.
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::AlreadyExists(path.to_path_buf()),
            _ => io("create", path, e),
        })?;
        let made = FileBackend::new(file)
            .map_err(|e| Error::from(redb::Error::from(e)))
            .and_then(|backend| {
                Self::create_on(backend, path, password, params, identity, instance, fill)
            });
        if made.is_err() {
            // Nothing was acknowledged: leave no half-made store behind.
            let _ = std::fs::remove_file(path);
        }
        made
    }

    /// Creates a store on `backend` (a new file's, or memory), `path` naming it in errors:
    /// every row of the first transaction, committed durably before it returns.
    fn create_on(
        backend: impl StorageBackend,
        path: &Path,
        password: &Password,
        params: KdfParams,
        identity: Identity,
        instance: Instance,
        fill: impl FnOnce(&mut Tables<'_>, &Keys, &Instance) -> Result<AccessTable, Error>,
    ) -> Result<Self, Error> {
        check_params(&params, &KdfLimits::default())?;
        let mut salt = [0u8; 16];
        redoubt_crypto::fill_random(&mut salt)?;
        let password_key = PasswordKey::derive(password, params, &salt)?;
        let data = DataKey::random()?;
        let keys = data.keys();

        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(backend)
            .map_err(|e| open_error(path, e))?;
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        let access = {
            let mut t = Tables::new(&tx)?;
            let format = [STORE_MAGIC.as_slice(), &FORMAT_VERSION.to_le_bytes()].concat();
            t.meta.insert(META_FORMAT, format.as_slice())?;
            t.meta
                .insert(META_KDF, encode_kdf(&params, &salt).as_slice())?;
            t.meta.insert(META_CHECK, password_key.check().as_slice())?;
            let wrapped = password_key.wrap(&data, &random_nonce()?)?;
            t.meta.insert(META_DATA_KEY, wrapped.as_slice())?;
            let sealed_seed = seal_state(
                &keys.state,
                IDENTITY_AAD_LABEL,
                IDENTITY_SEED.as_bytes(),
                identity.expose_seed(),
                &random_nonce()?,
            )?;
            t.identity.insert(IDENTITY_SEED, sealed_seed.as_slice())?;
            let clock = seal_clock(&keys, instance.clock())?;
            t.identity.insert(IDENTITY_CLOCK, clock.as_slice())?;
            let access = fill(&mut t, &keys, &instance)?;
            (access, SketchState::create(&mut t, &keys, &instance)?)
        };
        let (access, sketch) = access;
        tx.commit()?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            keys,
            node: instance.node(),
            identity,
            clock: instance.clock(),
            access,
            damaged: BTreeSet::new(),
            journal: JournalState::empty(),
            sketch,
            generation: 0,
            order: std::sync::Mutex::new(None),
        })
    }

    /// Opens the store at `path` with `password`, refusing KDF parameters beyond `limits`
    /// before running the KDF.
    ///
    /// Errors, in the order checked: [`Error::NotFound`], [`Error::NotAStore`] (not a redb
    /// file), [`Error::Locked`], [`Error::Damaged`] (redb's page checks fail: truncated or
    /// altered), [`Error::NotAStore`] (a redb file without the store's format row),
    /// [`Error::UnsupportedVersion`], [`Error::InvalidKdfParams`], [`Error::WrongPassword`],
    /// [`Error::Corrupted`]. No record row is read: one that fails to open fails its reads
    /// with [`Error::RecordCorrupted`], and [`Self::verify`] lists them all.
    ///
    /// A format 1 store is migrated here (its sketch state built from every record, once).
    pub fn open(path: &Path, password: &Password, limits: &KdfLimits) -> Result<Self, Error> {
        sniff(path)?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        let Loaded {
            keys,
            identity,
            clock,
            access,
            journal,
            sketch,
        } = load(&db.begin_read()?, path, password, limits)?;
        let (sketch, damaged) = match sketch {
            Some(sketch) => (sketch, BTreeSet::new()),
            None => {
                let (instance, damaged) =
                    load_records(&db.begin_read()?, &keys, identity.node_id(), clock)?;
                (migrate_to_2(&db, &keys, &instance)?, damaged)
            }
        };
        Ok(Self {
            db,
            path: path.to_path_buf(),
            keys,
            node: identity.node_id(),
            identity,
            clock,
            access,
            damaged,
            journal,
            sketch,
            generation: 0,
            order: std::sync::Mutex::new(None),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This node's long-term identity (sealed in the `identity` table).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The node id that stamps this store's writes.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The clock's state: the last stamp issued or observed.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Record rows found not to open by [`Self::verify`] (or at a format 1 store's migration),
    /// by keyed id (hex), and not rewritten since: reading them fails with
    /// [`Error::RecordCorrupted`], a session passes over them, and a later write to the same
    /// location replaces the row.
    pub fn damaged_rows(&self) -> impl Iterator<Item = String> + '_ {
        self.damaged.iter().map(|row| redoubt_vault::hex(row))
    }

    /// Writes `value` at `location` of `client`, stamped now; durable when it returns.
    pub fn put(
        &mut self,
        client: &[u8],
        location: &Location,
        value: SecretValue,
    ) -> Result<Stamp, Error> {
        self.put_at(client, location, value, now_ms())
    }

    /// Writes as if the wall clock read `now_ms`, as [`Instance::write_at`] stamps.
    pub fn put_at(
        &mut self,
        client: &[u8],
        location: &Location,
        value: SecretValue,
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        check_client(client)?;
        self.write_version(client, location, Some(value), now_ms)
    }

    /// Commits a new current version at `location` (`None` a tombstone) replacing whatever is
    /// there, as [`Instance::write_at`] and [`Instance::delete_at`] make it: its parent is the
    /// current version, which moves into the history.
    fn write_version(
        &mut self,
        client: &[u8],
        location: &Location,
        value: Option<SecretValue>,
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        let mut clock = self.clock;
        let stamp = clock.tick(now_ms, self.node)?;
        let (previous, before) = self.held(&ClientId::from_path(client), location.ids())?;
        let record = Record::successor(location.clone(), stamp, value, previous.as_ref())?;
        self.commit([(client, &record, before)], clock)?;
        Ok(stamp)
    }

    /// Deletes the live record at `location`, leaving a tombstone stamped now.
    pub fn delete(&mut self, client: &[u8], location: &Location) -> Result<Stamp, Error> {
        self.delete_at(client, location, now_ms())
    }

    /// Deletes as if the wall clock read `now_ms`, as [`Instance::delete_at`] does; fails with
    /// the vault's `RecordNotFound` when no live record is there.
    pub fn delete_at(
        &mut self,
        client: &[u8],
        location: &Location,
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        check_client(client)?;
        if self.get(client, location)?.is_none() {
            return Err(redoubt_vault::Error::RecordNotFound {
                location: redoubt_vault::describe(client, location),
            }
            .into());
        }
        self.write_version(client, location, None, now_ms)
    }

    /// Makes the version hashed `version` of the record at `location` current again as a new
    /// write stamped now ([`Self::revert_at`]); durable when it returns.
    pub fn revert(
        &mut self,
        client: &[u8],
        location: &Location,
        version: &[u8; 32],
    ) -> Result<Stamp, Error> {
        self.revert_at(client, location, version, now_ms())
    }

    /// Makes the version hashed `version` of the record at `location` (current, or one in its
    /// history) current again as a new write stamped as if the wall clock read `now_ms`, as
    /// [`Instance::revert_at`] does; durable when it returns. Fails with the vault's
    /// `VersionNotFound` when the record holds no such version.
    pub fn revert_at(
        &mut self,
        client: &[u8],
        location: &Location,
        version: &[u8; 32],
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        check_client(client)?;
        let value = self
            .record(client, location)?
            .as_ref()
            .and_then(|r| r.version(version))
            .map(|v| v.value().cloned())
            .ok_or_else(|| redoubt_vault::Error::VersionNotFound {
                location: redoubt_vault::describe(client, location),
                version: redoubt_vault::hex(version),
            })?;
        self.write_version(client, location, value, now_ms)
    }

    /// Merges one incoming version into `client` by the vault's rule
    /// ([`Instance::merge_record_within`]): refused when `bounds` refuse its stamp, otherwise
    /// merged as [`merge_one`] says (histories joined); the clock observes it. Durable when it
    /// returns.
    pub fn merge_record(
        &mut self,
        client: &[u8],
        incoming: Record,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Error> {
        self.merge_records(client, vec![incoming], policy, bounds)
    }

    /// Merges several incoming versions of `client` in order, in ONE commit: the result (and
    /// the report) is that of [`Self::merge_record`] called for each in turn.
    pub fn merge_records(
        &mut self,
        client: &[u8],
        incoming: Vec<Record>,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Error> {
        let incoming = incoming.into_iter().map(|r| (client.to_vec(), r)).collect();
        self.merge_batch(incoming, policy, bounds)
    }

    /// Merges incoming versions of any clients (client path, record) in order, in ONE commit
    /// (one journal event): the result (and the report) is that of [`Self::merge_record`]
    /// called for each in turn. This is how a verified batch from a peer enters the store.
    pub fn merge_batch(
        &mut self,
        incoming: Vec<(Vec<u8>, Record)>,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Error> {
        self.merge_batch_with(incoming, policy, bounds, None)
    }

    /// [`Self::merge_batch`], calling `changed` after the commit, in order, for each incoming
    /// record that changed what the store holds or resolved a conflict: its client, its
    /// location and its own one-record report (so `changed` tells a written version from a
    /// tombstone, a gained history and a resolved conflict). Nothing is noted when the commit
    /// fails.
    pub fn merge_batch_noting(
        &mut self,
        incoming: Vec<(Vec<u8>, Record)>,
        policy: MergePolicy,
        bounds: &MergeBounds,
        mut changed: impl FnMut(&[u8], &Location, &MergeReport),
    ) -> Result<MergeReport, Error> {
        self.merge_batch_with(incoming, policy, bounds, Some(&mut changed))
    }

    /// The batch merge; each changed record is noted to `changed` when there is one (a merge
    /// nobody watches copies no location).
    fn merge_batch_with(
        &mut self,
        incoming: Vec<(Vec<u8>, Record)>,
        policy: MergePolicy,
        bounds: &MergeBounds,
        mut changed: Option<&mut Noter<'_>>,
    ) -> Result<MergeReport, Error> {
        for (client, _) in &incoming {
            check_client(client)?;
        }
        // Plan with the vault's own rule, against what the file holds and what earlier
        // records of this batch made; count each as `Instance::merge_record_within` would.
        let mut clock = self.clock;
        let mut planned: HashMap<[u8; 32], (usize, Record, Before)> = HashMap::new();
        let mut report = MergeReport::default();
        let mut notes: Vec<(usize, MergeReport)> = Vec::new();
        for (i, (client, record)) in incoming.iter().enumerate() {
            let mut one = MergeReport::default();
            if !bounds.admits(record.newest_stamp()) {
                one.refused_ahead = 1;
                report.add(&one);
                continue;
            }
            let client_id = ClientId::from_path(client);
            let ids = record.location().ids();
            let row = self.keys.record_row(&client_id, ids);
            let (local, before) = match planned.get(&row) {
                Some((_, merged, before)) => (Some(merged.clone()), before.clone()),
                None => self.held(&client_id, ids)?,
            };
            let merged = merge_one(policy, local.as_ref(), record);
            one.count(client, local.as_ref(), record, &merged);
            clock.observe(record.newest_stamp());
            if let Some(merged) = merged.store {
                let first = planned.get(&row).map_or(i, |(j, _, _)| *j);
                planned.insert(row, (first, merged, before));
            }
            if one.changed() || one.conflicts_resolved > 0 {
                notes.push((i, one.clone()));
            }
            report.add(&one);
        }
        if !planned.is_empty() || clock != self.clock {
            let mut order: Vec<(usize, Record, Before)> = planned.into_values().collect();
            order.sort_unstable_by_key(|(i, _, _)| *i);
            self.commit(
                order
                    .iter()
                    .map(|(i, record, before)| (incoming[*i].0.as_slice(), record, before.clone())),
                clock,
            )?;
        }
        if let Some(note) = changed.as_mut() {
            for (i, one) in &notes {
                let (client, record) = &incoming[*i];
                note(client, record.location(), one);
            }
        }
        Ok(report)
    }

    /// The live value at `location`, read from the file (the row is opened and checked), or
    /// `None` if absent or deleted.
    pub fn get(&self, client: &[u8], location: &Location) -> Result<Option<SecretValue>, Error> {
        Ok(self
            .record(client, location)?
            .and_then(|r| r.value().cloned()))
    }

    /// The current version (live or tombstone) at `location`, read from the file.
    pub fn record(&self, client: &[u8], location: &Location) -> Result<Option<Record>, Error> {
        self.record_at(&ClientId::from_path(client), location.ids())
    }

    /// Writes `records` (client path, record; each to its own row), the clock and the journal
    /// event recording them, in one durable commit. A commit too large for one event (past
    /// the journal format's caps) records them in several consecutive events, all in the same
    /// transaction: the commit stays one, whole or absent after a crash.
    fn commit<'r>(
        &mut self,
        records: impl IntoIterator<Item = (&'r [u8], &'r Record, Before)>,
        clock: Clock,
    ) -> Result<(), Error> {
        let mut rows = Vec::new();
        let mut changes = Vec::new();
        let mut sketch_changes = Vec::new();
        for (client, record, before) in records {
            let client_id = ClientId::from_path(client);
            let ids = record.location().ids();
            let row = self.keys.record_row(&client_id, ids);
            let sealed = seal_record(&self.keys.records, &row, client, record, &random_nonce()?)?;
            rows.push((row, sealed));
            sketch_changes.push(RowChange {
                client,
                row,
                before,
                new: record,
            });
            changes.push(RecordChange {
                client: client.to_vec(),
                record: record.clone(),
            });
        }
        let events = self.next_events(clock, changes)?;
        let sealed_clock = seal_clock(&self.keys, clock)?;
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        let folding = {
            let mut t = Tables::new(&tx)?;
            // The sketch state first: a rebuild reads the rows as they were.
            let staged = self.sketch.stage(&mut t, &self.keys, &sketch_changes)?;
            for (row, sealed) in &rows {
                t.records.insert(row, sealed.as_slice())?;
            }
            t.identity.insert(IDENTITY_CLOCK, sealed_clock.as_slice())?;
            (self.append_all(&mut t, &events)?, staged)
        };
        let (folding, staged) = folding;
        tx.commit()?;
        self.clock = clock;
        self.generation += 1;
        self.sketch.committed(staged);
        self.appended_all(events, folding);
        for (row, _) in &rows {
            self.damaged.remove(row);
        }
        Ok(())
    }
}

/// What an open reads from a store's file: everything but the database handle.
struct Loaded {
    keys: Keys,
    identity: Identity,
    clock: Clock,
    access: AccessTable,
    journal: JournalState,
    /// The kept sketch state; `None` for a format 1 store, which has none yet.
    sketch: Option<SketchState>,
}

/// Reads and opens everything a store holds, in `tx` (of a read-write or a read-only
/// database), with the checks and errors [`Store::open`] documents after redb's own.
fn load(
    tx: &redb::ReadTransaction,
    path: &Path,
    password: &Password,
    limits: &KdfLimits,
) -> Result<Loaded, Error> {
    let format = read_row(tx, META, META_FORMAT)?.ok_or(Error::NotAStore {
        path: path.to_path_buf(),
        reason: "a redb database without a Redoubt store's format row",
    })?;
    let version = match format.strip_prefix(STORE_MAGIC.as_slice()) {
        Some(&[lo, hi]) => u16::from_le_bytes([lo, hi]),
        _ => {
            return Err(Error::NotAStore {
                path: path.to_path_buf(),
                reason: "a redb database whose format row is not a Redoubt store's",
            });
        }
    };
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion(version));
    }
    let missing = |what| move || Error::Corrupted(what);
    let kdf = read_row(tx, META, META_KDF)?.ok_or_else(missing("the KDF row is missing"))?;
    let (params, salt) = decode_kdf(&kdf)?;
    check_params(&params, limits)?;
    let password_key = PasswordKey::derive(password, params, &salt)?;
    let check = read_row(tx, META, META_CHECK)?
        .and_then(|c| <[u8; 32]>::try_from(c.as_slice()).ok())
        .ok_or_else(missing("the password check row is missing or damaged"))?;
    if !ct_eq(&password_key.check(), &check) {
        return Err(Error::WrongPassword);
    }
    let wrapped = read_row(tx, META, META_DATA_KEY)?
        .ok_or_else(missing("the wrapped data key row is missing"))?;
    let keys = password_key.unwrap_key(&wrapped)?.keys();

    let seed = read_row(tx, IDENTITY, IDENTITY_SEED)?
        .ok_or_else(missing("the identity row is missing"))?;
    let seed = open_state(
        &keys.state,
        IDENTITY_AAD_LABEL,
        IDENTITY_SEED.as_bytes(),
        &seed,
        "the identity row does not open",
    )?;
    let seed = zeroize::Zeroizing::new(
        <[u8; 32]>::try_from(&seed[..])
            .map_err(|_| Error::Corrupted("the identity seed has the wrong length"))?,
    );
    let identity = Identity::from_seed(*seed);
    let clock =
        read_row(tx, IDENTITY, IDENTITY_CLOCK)?.ok_or_else(missing("the clock row is missing"))?;
    let clock = open_clock(&keys, &clock)?;

    let mut access = AccessTable::default();
    for row in tx.open_table(GRANTS)?.iter()? {
        let (key, value) = row?;
        let (peer, client, rights) = open_grant(&keys, key.value(), value.value())?;
        access.grant(&peer, &client, rights)?;
    }

    let journal = JournalState::load(tx, &keys)?;
    let sketch = match version {
        1 => None,
        _ => Some(SketchState::load(tx, &keys)?),
    };
    Ok(Loaded {
        keys,
        identity,
        clock,
        access,
        journal,
        sketch,
    })
}

/// Every record row of `tx` that opens, restored into an instance of `node` resuming from
/// `clock`, and the rows that do not open.
fn load_records(
    tx: &redb::ReadTransaction,
    keys: &Keys,
    node: NodeId,
    clock: Clock,
) -> Result<(Instance, BTreeSet<[u8; 32]>), Error> {
    let mut instance = Instance::with_clock(node, clock);
    let mut damaged = BTreeSet::new();
    for row in tx.open_table(RECORDS)?.iter()? {
        let (key, value) = row?;
        let key = *key.value();
        match open_record_row(keys, &key, value.value()) {
            Ok((client, record)) => instance.restore(&client, record)?,
            Err(_) => {
                damaged.insert(key);
            }
        }
    }
    // The clock row is written with every stamp it issues or observes; restoring cannot
    // move it further unless a row is newer than the clock, which the next write fixes.
    Ok((instance, damaged))
}

/// Migrates a format 1 store to format 2 in one commit: builds the kept sketch state of
/// `instance` (every record, read at open) and writes it, with the format row.
fn migrate_to_2(db: &Database, keys: &Keys, instance: &Instance) -> Result<SketchState, Error> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    let state = {
        let mut t = Tables::new(&tx)?;
        let state = SketchState::create(&mut t, keys, instance)?;
        let format = [STORE_MAGIC.as_slice(), &FORMAT_VERSION.to_le_bytes()].concat();
        t.meta.insert(META_FORMAT, format.as_slice())?;
        state
    };
    tx.commit()?;
    Ok(state)
}

/// Opens a record row and checks that it holds what its key names.
fn open_record_row(keys: &Keys, row: &[u8; 32], bytes: &[u8]) -> Result<(Vec<u8>, Record), Error> {
    let (client, record) = open_record(&keys.records, row, bytes)?;
    let row_of = |c: &ClientId, r: &Record| keys.record_row(c, r.location().ids());
    if !belongs(row_of, row, &client, &record) {
        return Err(Error::RecordCorrupted {
            row: redoubt_vault::hex(row),
            reason: "the record does not belong under this row",
        });
    }
    Ok((client, record))
}

fn check_client(client: &[u8]) -> Result<(), Error> {
    if client.is_empty() || client.len() > MAX_PATH_LEN {
        return Err(redoubt_vault::Error::InvalidPath {
            what: "client path",
            len: client.len(),
        }
        .into());
    }
    Ok(())
}

fn encode_kdf(params: &KdfParams, salt: &[u8; 16]) -> Vec<u8> {
    let mut w = Writer::<Error>::with_capacity(29);
    w.u8(KDF_ARGON2ID);
    w.u32(params.memory_kib);
    w.u32(params.iterations);
    w.u32(params.parallelism);
    w.raw(salt);
    w.into_bytes()
}

fn decode_kdf(bytes: &[u8]) -> Result<(KdfParams, [u8; 16]), Error> {
    let bad = |_| Error::Corrupted("the KDF row is malformed");
    let mut r = Reader::<Error>::new(bytes);
    if r.u8().map_err(bad)? != KDF_ARGON2ID {
        return Err(Error::Corrupted("the KDF row names an unknown KDF"));
    }
    let params = KdfParams {
        memory_kib: r.u32().map_err(bad)?,
        iterations: r.u32().map_err(bad)?,
        parallelism: r.u32().map_err(bad)?,
    };
    let salt = r.array().map_err(bad)?;
    r.finish().map_err(bad)?;
    Ok((params, salt))
}

fn seal_clock(keys: &Keys, clock: Clock) -> Result<Vec<u8>, Error> {
    let (wall_ms, counter) = clock.last();
    let mut w = Writer::<Error>::with_capacity(12);
    w.u64(wall_ms);
    w.u32(counter);
    let nonce = random_nonce()?;
    seal_state(
        &keys.state,
        IDENTITY_AAD_LABEL,
        IDENTITY_CLOCK.as_bytes(),
        &w.into_bytes(),
        &nonce,
    )
}

fn open_clock(keys: &Keys, bytes: &[u8]) -> Result<Clock, Error> {
    let what = "the clock row does not open";
    let plain = open_state(
        &keys.state,
        IDENTITY_AAD_LABEL,
        IDENTITY_CLOCK.as_bytes(),
        bytes,
        what,
    )?;
    let bad = |_| Error::Corrupted("the clock row is malformed");
    let mut r = Reader::<Error>::new(&plain);
    let clock = Clock::at(r.u64().map_err(bad)?, r.u32().map_err(bad)?);
    r.finish().map_err(bad)?;
    Ok(clock)
}

/// Tells a missing or foreign file apart before redb reads it.
fn sniff(path: &Path) -> Result<(), Error> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(path.to_path_buf()));
        }
        Err(e) => return Err(io("open", path, e)),
    };
    let mut magic = [0u8; REDB_MAGIC.len()];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read", path, e)),
        }
    }
    if got == 0 {
        return Err(Error::NotAStore {
            path: path.to_path_buf(),
            reason: "the file is empty",
        });
    }
    if magic[..got] != REDB_MAGIC[..got] {
        return Err(Error::NotAStore {
            path: path.to_path_buf(),
            reason: "not a redb database",
        });
    }
    if got < magic.len() {
        return Err(Error::Damaged {
            path: path.to_path_buf(),
            detail: format!("the file ends after {got} bytes, inside the database header"),
        });
    }
    Ok(())
}

fn open_error(path: &Path, e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked(path.to_path_buf()),
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if !matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Error::Io {
                action: "open",
                path: path.to_path_buf(),
                source: io,
            }
        }
        other => Error::Damaged {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
