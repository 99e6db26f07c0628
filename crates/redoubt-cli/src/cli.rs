//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Redoubt keeps encrypted secret vaults in sync between your devices.
///
/// The vault password comes from REDOUBT_PASSWORD or a prompt, never from an argument.
#[derive(Debug, Parser)]
#[command(name = "redoubt", version, about, long_about)]
pub(crate) struct Cli {
    /// The vault file [default: $XDG_DATA_HOME/redoubt/vault.rdb or the platform's
    /// per-user data directory]
    #[arg(long, global = true, env = "REDOUBT_VAULT", value_name = "PATH")]
    pub(crate) vault: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new, empty vault with a fresh node identity.
    Init(InitArgs),
    /// Store a secret read from stdin (all of stdin, byte for byte; a hidden prompt, asked
    /// twice, on a terminal).
    ///
    /// Refuses empty input unless --allow-empty. Replacing an existing secret asks first on a
    /// terminal and needs --force otherwise.
    Put(PutArgs),
    /// Write a secret to stdout, and nothing else (a newline follows it on a terminal only).
    Get(GetArgs),
    /// Delete a secret (a tombstone remains so the deletion syncs).
    Rm(LocationArgs),
    /// List locations, sizes and stamps, sorted. Never values.
    ///
    /// One line per record, five fields separated by tabs: CLIENT, VAULT, RECORD, SIZE and
    /// STAMP (UTC time#counter@writer). In the three names a backslash is written `\\`, a
    /// tab `\t`, a newline `\n`, a carriage return `\r`, and any other control byte or byte
    /// that is not UTF-8 `\xNN`, so each record is exactly one line. --json gives the names
    /// unescaped.
    List(ListArgs),
    /// Print the paths (CLIENT/VAULT/RECORD) that contain PATTERN, ignoring case. Never values.
    #[command(alias = "search")]
    Find(FindArgs),
    /// List a record's versions, the current one first, then its history newest first. Never
    /// values.
    ///
    /// One line per version, five fields separated by tabs: VERSION (the first 16 hex digits
    /// of its hash; `restore` takes 8 or more), STAMP (UTC time#counter@writer), WRITER (its
    /// node id), SIZE (0 for a deletion), and `current` or why it was replaced: `overwritten`
    /// (a later edit), `deleted` (the record was deleted after it) or `lost-conflict` (written
    /// concurrently with the current one, and lost the merge). A history keeps at most 8
    /// versions for 30 days.
    History(HistoryArgs),
    /// Make an earlier version of a record (one `history` lists) current again, as a new
    /// write: it syncs like any edit, and the version it replaces stays in the history.
    Restore(RestoreArgs),
    /// Make a random password (or, with --words, a passphrase) and print it, or store it.
    ///
    /// Says on stderr how many bits of entropy it has.
    Generate(GenerateArgs),
    /// Import secrets from pass, Bitwarden (unencrypted JSON) or KeePassXC (CSV).
    ///
    /// An item's first folder becomes the vault; the other folders and its name, joined by
    /// '/', the record (vault `root` for items in no folder); its other fields go below it
    /// (ITEM/username, ITEM/totp, ...). The README's "Importing" section has the whole mapping.
    /// Existing secrets are kept unless --force; prints one summary line.
    Import(ImportArgs),
    /// Print a completion script for SHELL on stdout.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout: `redoubt man | man -l -`.
    Man,
    /// Keeps a copied secret on the clipboard, then clears it (started by `get --clip`).
    #[command(hide = true, name = "__clip")]
    Clip(ClipArgs),
    /// Change the vault's password: a rewrap of the data key, or with --rekey a new data key.
    ///
    /// Without --rekey this is a rewrap, not a rekey: whoever knew the old password and has
    /// any copy of this file, including this file as it is now, may still read it (the file
    /// keeps earlier pages until they are reused); use --rekey if the old password may be
    /// known.
    ///
    /// With --rekey the whole vault is sealed again under a new data key in a new file, renamed
    /// over the old one (crash-safe): the same identity, peer id, grants and records; the
    /// change journal starts again empty. Copies made before, and exports, still open with
    /// the old password and show what the vault held then.
    ///
    /// The current password comes from REDOUBT_PASSWORD or a prompt; the new one from
    /// REDOUBT_NEW_PASSWORD or a prompt, typed twice, and is checked for strength. It may be
    /// the current one only when --kdf-memory-kib or --kdf-iterations change the cost.
    Passwd(PasswdArgs),
    /// Write the vault's whole state to FILE as a sealed snapshot: a backup, and a file
    /// `sync-file` reads.
    ///
    /// Sealed with the vault's password (at the time of the export) and KDF settings, unless
    /// REDOUBT_EXPORT_PASSWORD gives another. Written atomically with mode 0600; an existing
    /// FILE is replaced only with --force. To restore, put the file at the vault path: the
    /// first command migrates it back into a vault.
    Export(ExportArgs),
    /// Pull records from another instance's vault or snapshot file into this vault.
    ///
    /// The other file's password comes from REDOUBT_OTHER_PASSWORD or a prompt.
    SyncFile(SyncFileArgs),
    /// Show two live nodes syncing over libp2p on 127.0.0.1, on embedded defaults.
    Demo,
    /// Print this node's peer id, and nothing else.
    Id,
    /// Run the agent: unlock the vault once, serve peers and this user's commands, and keep
    /// paired peers in sync, until interrupted (`serve` is the same command).
    ///
    /// Prints one line `listening on MULTIADDR/p2p/PEER_ID` per address, then logs each
    /// session on stderr (RUST_LOG adjusts the level). It syncs with every paired peer it can
    /// reach at start and when one connects, and pushes each change made through it to the
    /// peers it shares that client with, within about a second. While it runs, `put`, `get`,
    /// `list`, `rm`, `history`, `restore`, `id`, `allow`, `deny`, `peers`, `sync`, `status`,
    /// `lock` and `unlock` on this vault go through it (a socket only this user can use) and ask for no password;
    /// other commands wait for the vault up to 10 s and then say it is in use.
    #[command(alias = "serve")]
    Agent(AgentArgs),
    /// Show the running agent of this vault: locked or not, its addresses, and each peer it
    /// syncs with (reachable, last sync, changes waiting, last error).
    Status(StatusArgs),
    /// Wipe the key from the running agent's memory; record access fails until `unlock`.
    Lock,
    /// Give the running agent the vault's password again after `lock` or its idle timeout.
    Unlock,
    /// Grant a peer rights on a client: --read lets it pull, --write lets it push.
    Allow(AllowArgs),
    /// Revoke a peer's rights, on one client or on all.
    Deny(DenyArgs),
    /// List the peers granted rights, and their rights.
    Peers(PeersArgs),
    /// Sync with a peer: pull what it has and we lack, then push the reverse.
    ///
    /// The dialed peer checks its own grants: `read` for our pull, `write` for our push.
    Sync(SyncArgs),
    /// Pair with another device by a short one-time code.
    ///
    /// Without CODE, on the device that holds the secrets: prints `code: CODE` (and a QR code
    /// on a terminal) and waits for the other device. With CODE (or the QR payload; `-` reads
    /// it from stdin), on the new device: finds the first device on the local network (or at
    /// --addr) and proves the code. Both devices then print `code check: NNN NNN` (the same
    /// on both) and ask their user (one line on stdin; --yes skips it); only if both accept do
    /// they record read and write grants both ways, and the new device imports the shared
    /// clients.
    Pair(PairArgs),
    /// Sync through shared storage (a folder, S3, Azure Blob, GCS), with no server code.
    #[command(subcommand)]
    Remote(RemoteCommand),
}

#[derive(Debug, Args)]
pub(crate) struct PairArgs {
    /// The code the other device shows (`NN-DDDD-DDDD`), or its QR payload; `-` reads it
    /// from stdin. Omit it to offer a pairing from this device.
    pub(crate) code: Option<String>,
    /// Share this client (repeatable) [default: every client this vault holds].
    #[arg(long = "client", value_name = "C")]
    pub(crate) clients: Vec<String>,
    /// Accept the other device once it proved the code, without asking (for scripts; either
    /// device).
    #[arg(long)]
    pub(crate) yes: bool,
    /// Address to listen on while offering (repeatable).
    #[arg(
        long = "listen",
        value_name = "MULTIADDR",
        default_value = "/ip4/0.0.0.0/tcp/0"
    )]
    pub(crate) listen: Vec<String>,
    /// Where the offering device is (repeatable), ending with /p2p/PEER_ID; without it the
    /// new device asks every device found on the local network.
    #[arg(long = "addr", value_name = "MULTIADDR")]
    pub(crate) addrs: Vec<String>,
    /// Do not use mDNS on the local network (then the joiner needs --addr or the QR payload).
    #[arg(long)]
    pub(crate) no_discovery: bool,
    /// How long the code stays valid, in seconds (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) ttl: u64,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Address to listen on (repeatable). For the LAN: /ip4/0.0.0.0/tcp/7450.
    #[arg(
        long = "listen",
        value_name = "MULTIADDR",
        default_value = "/ip4/127.0.0.1/tcp/0"
    )]
    pub(crate) listen: Vec<String>,
    /// Do not announce this node, or look for peers, on the local network by mDNS (it only
    /// announces addresses of LAN interfaces, so it matters with a LAN --listen address).
    #[arg(long)]
    pub(crate) no_discovery: bool,
    /// Also serve peers that speak only /redoubt/sync/1 or /2, whose sessions are not bound
    /// to both peer ids (a peer in the middle could relay them).
    #[arg(long)]
    pub(crate) allow_unbound: bool,
    /// A peer to sync with by itself (repeatable), as its agent prints its address: ending
    /// with /p2p/PEER_ID. Paired peers that connect are synced with too.
    #[arg(long = "peer", value_name = "MULTIADDR")]
    pub(crate) peers: Vec<String>,
    /// Start locked, without asking for the password: the first `redoubt unlock` opens the
    /// vault (for a service started before anyone can type it). The `listening on` lines come
    /// then.
    #[arg(long)]
    pub(crate) locked: bool,
    /// Lock (wipe the key from memory) after this long without a command: `90s`, `15m`,
    /// `2h`, `1d` or seconds [default: never].
    #[arg(long, value_name = "DURATION")]
    pub(crate) lock_after: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AllowArgs {
    /// The peer's id (as `redoubt id` prints it on the peer).
    pub(crate) peer: String,
    /// The client the grant is for.
    #[arg(long, value_name = "C")]
    pub(crate) client: String,
    /// The peer may pull this client from us.
    #[arg(long)]
    pub(crate) read: bool,
    /// The peer may push this client into us.
    #[arg(long)]
    pub(crate) write: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DenyArgs {
    /// The peer's id.
    pub(crate) peer: String,
    /// Only this client [default: every client].
    #[arg(long, value_name = "C")]
    pub(crate) client: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PeersArgs {
    /// Print JSON instead of tab-separated lines.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The peer's address, ending with /p2p/PEER_ID (as `redoubt serve` prints it).
    #[arg(required_unless_present = "peer", conflicts_with = "peer")]
    pub(crate) addr: Option<String>,
    /// The peer's id alone: find its address on the local network by mDNS.
    #[arg(long, value_name = "PEER_ID", conflicts_with = "no_discovery")]
    pub(crate) peer: Option<String>,
    /// With --peer: how long to look for it, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) wait: u64,
    /// Do not use mDNS (then ADDR is needed).
    #[arg(long)]
    pub(crate) no_discovery: bool,
    /// Sync this client [default: every client both sides' grants let move (an import)].
    #[arg(long, value_name = "C", conflicts_with = "import")]
    pub(crate) client: Option<String>,
    /// Only these vault paths of the client (repeatable; a partial sync).
    #[arg(long = "vault-path", value_name = "P", requires = "client")]
    pub(crate) vault_paths: Vec<String>,
    /// Import every client both sides' grants let move (the default without --client).
    #[arg(long)]
    pub(crate) import: bool,
    /// Also sync with a peer that speaks only /redoubt/sync/1 or /2, whose sessions are not
    /// bound to both peer ids (a peer in the middle could relay them).
    #[arg(long)]
    pub(crate) allow_unbound: bool,
    /// Only pull from the peer.
    #[arg(long, conflicts_with = "push_only")]
    pub(crate) pull_only: bool,
    /// Only ask the peer to pull from us.
    #[arg(long)]
    pub(crate) push_only: bool,
    /// Print the merge reports as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Argon2id memory in KiB [default: 65536]. At least 19456 (19 MiB), unless
    /// REDOUBT_INSECURE_TEST_KDF=1 (tests only).
    #[arg(long, value_name = "KIB")]
    pub(crate) kdf_memory_kib: Option<u32>,
    /// Argon2id passes [default: 3]. At least 2, unless REDOUBT_INSECURE_TEST_KDF=1 (tests
    /// only).
    #[arg(long, value_name = "N")]
    pub(crate) kdf_iterations: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// Argon2id memory in KiB for the new password [default: the vault's current setting].
    /// At least 19456 (19 MiB), unless REDOUBT_INSECURE_TEST_KDF=1 (tests only).
    #[arg(long, value_name = "KIB")]
    pub(crate) kdf_memory_kib: Option<u32>,
    /// Argon2id passes for the new password [default: the vault's current setting]. At least
    /// 2, unless REDOUBT_INSECURE_TEST_KDF=1 (tests only).
    #[arg(long, value_name = "N")]
    pub(crate) kdf_iterations: Option<u32>,
    /// A new data key and every record sealed again (a new file renamed over the vault), so
    /// the old password opens neither this file nor anything written later.
    #[arg(long)]
    pub(crate) rekey: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The snapshot file to write.
    pub(crate) file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Where a secret is: `CLIENT VAULT RECORD`, or one `pass`-style path.
#[derive(Debug, Args)]
pub(crate) struct LocationArgs {
    /// The client (Stronghold's client_id); or the whole path alone: CLIENT/VAULT/RECORD, or
    /// VAULT/RECORD in the default client (REDOUBT_CLIENT, or `client = NAME` in
    /// $XDG_CONFIG_HOME/redoubt/config); the record keeps any further slashes.
    #[arg(value_name = "CLIENT | PATH")]
    pub(crate) client: String,
    /// Vault path inside the client.
    #[arg(requires = "record")]
    pub(crate) vault_path: Option<String>,
    /// Record path inside the vault.
    pub(crate) record: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    #[command(flatten)]
    pub(crate) at: LocationArgs,
    /// Replace an existing secret without asking.
    #[arg(long, short)]
    pub(crate) force: bool,
    /// Store empty input (otherwise refused, so that `cat missing-file | redoubt put ...`
    /// cannot wipe a secret).
    #[arg(long)]
    pub(crate) allow_empty: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    pub(crate) at: LocationArgs,
    /// Copy the secret to the clipboard instead of printing it, and clear it after
    /// --clip-timeout seconds (if it is still there).
    #[arg(long, short)]
    pub(crate) clip: bool,
    /// With --clip: seconds before the clipboard is cleared.
    #[arg(long, value_name = "SECONDS", default_value_t = 45, requires = "clip")]
    pub(crate) clip_timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ClipArgs {
    /// Seconds before the clipboard is cleared.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) at: LocationArgs,
    /// Print JSON (an array, the current version first) instead of tab-separated lines.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The client.
    pub(crate) client: String,
    /// Vault path inside the client.
    pub(crate) vault_path: String,
    /// Record path inside the vault.
    pub(crate) record: String,
    /// The version to make current: 8 to 64 hex digits of its id, as `history` lists it.
    pub(crate) version: String,
}

#[derive(Debug, Args)]
pub(crate) struct FindArgs {
    /// Part of a path (CLIENT/VAULT/RECORD), matched without regard to case.
    pub(crate) pattern: String,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Number of characters.
    #[arg(
        long,
        short,
        value_name = "N",
        default_value_t = 24,
        conflicts_with = "words"
    )]
    pub(crate) length: usize,
    /// A passphrase of N words from the bundled list of 4096 (12 bits each) instead.
    #[arg(long, value_name = "N")]
    pub(crate) words: Option<usize>,
    /// With --words: what goes between the words.
    #[arg(long, value_name = "TEXT", default_value = "-", requires = "words")]
    pub(crate) separator: String,
    /// Leave out lowercase letters.
    #[arg(long)]
    pub(crate) no_lower: bool,
    /// Leave out uppercase letters.
    #[arg(long)]
    pub(crate) no_upper: bool,
    /// Leave out digits.
    #[arg(long)]
    pub(crate) no_digits: bool,
    /// Leave out symbols.
    #[arg(long)]
    pub(crate) no_symbols: bool,
    /// Store it at this path (CLIENT/VAULT/RECORD, or VAULT/RECORD with REDOUBT_CLIENT) instead
    /// of printing it.
    #[arg(long, value_name = "PATH")]
    pub(crate) store: Option<String>,
    /// With --store: replace an existing secret.
    #[arg(long, short, requires = "store")]
    pub(crate) force: bool,
    /// With --store: print it as well.
    #[arg(long, requires = "store")]
    pub(crate) print: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Where the secrets come from.
    #[arg(value_enum)]
    pub(crate) from: ImportSource,
    /// The export file; for `pass`, the store directory [default: $PASSWORD_STORE_DIR or
    /// ~/.password-store].
    pub(crate) path: Option<PathBuf>,
    /// The client to import into [default: pass, bitwarden or keepassxc].
    #[arg(long, value_name = "C")]
    pub(crate) client: Option<String>,
    /// Replace secrets that already exist.
    #[arg(long, short)]
    pub(crate) force: bool,
}

/// A password manager to import from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ImportSource {
    /// A `pass` store: every `.gpg` file, decrypted by `gpg`.
    Pass,
    /// Bitwarden's unencrypted JSON export.
    Bitwarden,
    /// KeePassXC's CSV export.
    Keepassxc,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this client.
    pub(crate) client: Option<String>,
    /// Print JSON instead of tab-separated lines.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SyncFileArgs {
    /// The other instance's vault, or a snapshot file (such as an export).
    pub(crate) other: PathBuf,
    /// Only this source client (repeatable) [default: every client].
    #[arg(long = "client", value_name = "C")]
    pub(crate) clients: Vec<String>,
    /// Only this source vault path inside each client (repeatable).
    #[arg(long = "vault-path", value_name = "P")]
    pub(crate) vault_paths: Vec<String>,
    /// Only this source record, given as VAULT/RECORD (repeatable; split at the first '/').
    #[arg(long = "record", value_name = "VAULT/RECORD")]
    pub(crate) records: Vec<String>,
    /// Store source client FROM under client TO (repeatable).
    #[arg(long = "map-client", value_name = "FROM=TO")]
    pub(crate) map_clients: Vec<String>,
    /// Store source vault path FROM under vault path TO (repeatable).
    #[arg(long = "map-vault", value_name = "FROM=TO")]
    pub(crate) map_vaults: Vec<String>,
    /// What to do when both sides hold different versions of a record.
    #[arg(long, value_enum, default_value_t = Policy::Newest)]
    pub(crate) policy: Policy,
    /// Print the merge report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Policy {
    /// The later stamp wins; convergent.
    Newest,
    /// Never overwrite what this vault holds.
    KeepOld,
    /// Always take the other's version.
    Replace,
}

/// `redoubt remote ...`: sync through shared storage that runs nothing of ours.
///
/// URLs: `file:///path` or a plain absolute path, `s3://bucket/prefix`,
/// `az://container/prefix`, `gs://bucket/prefix`; credentials from the environment as each
/// cloud's tools expect (AWS_*, AZURE_*, GOOGLE_*). The recovery passphrase comes from
/// REDOUBT_REMOTE_PASSPHRASE or a prompt, never from an argument.
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// Set up empty storage as remote NAME (the first device): makes the storage key and
    /// wraps it under a new recovery passphrase in the key object.
    Add(RemoteSetUpArgs),
    /// Join storage another device set up, with its recovery passphrase; a wrong one writes
    /// nothing. Then syncs once (imports everything).
    Join(RemoteSetUpArgs),
    /// Sync with remote NAME (every remote without NAME): merge what other devices uploaded,
    /// then upload this vault's new changes as one segment.
    Sync(RemoteSyncArgs),
    /// List the remotes: name, URL, clients, this device's id and segments.
    List(RemoteListArgs),
    /// Sync with remote NAME (every remote without NAME), then fold this device's segments
    /// into one base now (a sync does it by itself every 64 segments); the segments a base
    /// replaced are deleted by the first sync a day after it.
    Compact(RemoteSyncArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RemoteSetUpArgs {
    /// The remote's name in this vault.
    pub(crate) name: String,
    /// The storage's URL.
    pub(crate) url: String,
    /// Let this client travel through the remote (repeatable) [default: every client];
    /// records of other clients found on it are refused.
    #[arg(long = "client", value_name = "C")]
    pub(crate) clients: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteSyncArgs {
    /// The remote [default: every remote].
    pub(crate) name: Option<String>,
    /// Print one JSON object per remote instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}
