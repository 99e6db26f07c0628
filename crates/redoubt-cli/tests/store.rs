//! Issue 13 point 6 through the real binary: the vault is a store file; a format-1 snapshot
//! migrates on first open (same peer id, grants and records, the old file kept); `passwd`
//! rewraps the key; `export` writes a snapshot that `sync-file` reads and that migrates back.

#[path = "support/vault.rs"]
mod vault;

use std::path::Path;

use redoubt_snapshot::{KdfParams, MAGIC, Snapshot, VaultFile};
use redoubt_vault::{Location, Rights, SecretValue};
use vault::{PASSWORD, Vault, fails_with, on_terminal, report};

const PEER: &str = "12D3KooWGRUVh2aVd6pSbWYPjUwDKW6H8EFzq3Q7vYfRkFrZAEng";
const STRONG: &str = "quartz pelican umbrella 1987 ferry";

/// A format-1 vault, as versions before the store wrote it, at `v.path`: one secret, one
/// tombstone and one grant. Returns the snapshot written.
fn old_vault(v: &Vault, password: &str) -> Snapshot {
    let mut snapshot = Snapshot::generate().unwrap();
    let seed = Location::new("wallet", "seed").unwrap();
    let gone = Location::new("wallet", "gone").unwrap();
    let i = &mut snapshot.instance;
    i.write(b"alice", &seed, SecretValue::new(b"old secret".to_vec()))
        .unwrap();
    i.write(b"alice", &gone, SecretValue::new(b"x".to_vec()))
        .unwrap();
    i.delete(b"alice", &gone).unwrap();
    // A snapshot vault as builds before record lineage wrote it: current versions only.
    snapshot.instance = snapshot.instance.without_lineage();
    let rights = Rights {
        read: true,
        write: false,
    };
    snapshot
        .access
        .grant(PEER.as_bytes(), b"alice", rights)
        .unwrap();
    let file = VaultFile::lock_exclusive(&v.path).unwrap();
    file.create(
        &snapshot,
        &redoubt_snapshot::Password::new(password.as_bytes().to_vec()),
        KdfParams::insecure_fast(),
    )
    .unwrap();
    snapshot
}

fn peer_id(snapshot: &Snapshot) -> String {
    redoubt_node::keypair_from_seed(snapshot.identity.expose_seed())
        .unwrap()
        .public()
        .to_peer_id()
        .to_string()
}

fn backup(v: &Vault) -> std::path::PathBuf {
    v.path.with_file_name("vault.rdb.v1-snapshot")
}

fn stdout(v: &Vault, args: &[&str]) -> String {
    let out = v.cmd().args(args).assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

fn open_store(
    path: &Path,
    password: &str,
) -> Result<redoubt_node::store::Store, redoubt_node::store::Error> {
    redoubt_node::store::Store::open(
        path,
        &redoubt_node::store::Password::new(password.as_bytes().to_vec()),
        &redoubt_node::store::KdfLimits::default(),
    )
}

fn load_snapshot(path: &Path, password: &str) -> Result<Snapshot, redoubt_snapshot::Error> {
    let bytes = std::fs::read(path).unwrap();
    Snapshot::open(
        &bytes,
        &redoubt_snapshot::Password::new(password.as_bytes().to_vec()),
    )
    .map(|(s, _)| s)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_snapshot_vault_migrates_on_first_open_keeping_peer_id_grants_and_records() {
    let v = Vault::empty();
    let snapshot = old_vault(&v, PASSWORD);
    let old_bytes = std::fs::read(&v.path).unwrap();

    let out = v.cmd().arg("id").assert().success().get_output().clone();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        peer_id(&snapshot)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.contains("migrated"), "{err}");
    assert!(err.contains(&backup(&v).display().to_string()), "{err}");
    assert!(
        err.contains("still opens with the password it had"),
        "{err}"
    );

    // The vault is a store now; the old file is kept byte for byte and opens as before.
    assert!(!std::fs::read(&v.path).unwrap().starts_with(&MAGIC));
    assert_eq!(std::fs::read(backup(&v)).unwrap(), old_bytes);
    let kept = load_snapshot(&backup(&v), PASSWORD).unwrap();
    assert_eq!(
        kept.instance.state_digest(),
        snapshot.instance.state_digest()
    );
    assert_eq!(
        names(v.path.parent().unwrap()),
        ["vault.rdb", "vault.rdb.v1-snapshot"],
        "no lock, temporary or half-made file is left"
    );

    // Same identity, grants and records (tombstone and stamps included), through the binary
    // and in the store itself.
    let out = v.cmd().arg("id").assert().success().get_output().clone();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        peer_id(&snapshot)
    );
    assert!(out.stderr.is_empty(), "migrates once");
    assert_eq!(stdout(&v, &["peers"]), format!("{PEER}\talice\tread\n"));
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"old secret");
    assert!(v.get("alice", "wallet", "gone").is_none());
    let list = stdout(&v, &["list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.starts_with("alice\twallet\tseed\t10\t"), "{list}");
    let store = open_store(&v.path, PASSWORD).unwrap();
    assert_eq!(
        store.identity().expose_seed(),
        snapshot.identity.expose_seed()
    );
    assert_eq!(
        store.state_digest().unwrap(),
        snapshot.instance.state_digest()
    );
    assert_eq!(store.grants(), &snapshot.access);
    drop(store);

    // And it keeps working as a store.
    v.put("alice", "wallet", "new", b"after");
    assert_eq!(v.get("alice", "wallet", "new").unwrap(), b"after");
}

#[test]
fn a_migration_that_stopped_midway_is_finished_by_the_next_open() {
    let v = Vault::empty();
    let snapshot = old_vault(&v, PASSWORD);
    // What a migration killed before its rename leaves: a half-made store and the backup link.
    std::fs::write(
        v.path.with_file_name("vault.rdb.migrating"),
        b"half a store",
    )
    .unwrap();
    std::fs::hard_link(&v.path, backup(&v)).unwrap();
    assert_eq!(stdout(&v, &["id"]).trim(), peer_id(&snapshot));
    assert_eq!(
        names(v.path.parent().unwrap()),
        ["vault.rdb", "vault.rdb.v1-snapshot"]
    );
    assert!(load_snapshot(&backup(&v), PASSWORD).is_ok());

    // A backup name that another file holds is left alone: the next free name is used.
    let w = Vault::empty();
    old_vault(&w, PASSWORD);
    std::fs::write(backup(&w), b"someone else's file").unwrap();
    let out = w.cmd().arg("list").assert().success().get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("vault.rdb.v1-snapshot.2"), "{err}");
    assert_eq!(std::fs::read(backup(&w)).unwrap(), b"someone else's file");
    assert!(load_snapshot(&w.path.with_file_name("vault.rdb.v1-snapshot.2"), PASSWORD).is_ok());
}

#[test]
fn a_wrong_password_does_not_migrate() {
    let v = Vault::empty();
    old_vault(&v, PASSWORD);
    let old_bytes = std::fs::read(&v.path).unwrap();
    fails_with(
        v.cmd().arg("list").env("REDOUBT_PASSWORD", "wrong"),
        "wrong password",
    );
    assert_eq!(std::fs::read(&v.path).unwrap(), old_bytes);
    assert!(!backup(&v).exists());
    assert!(!v.path.with_file_name("vault.rdb.migrating").exists());
}

#[test]
fn passwd_rewraps_so_only_the_new_password_opens_and_the_records_stay() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"kept");
    let peer = v.id();
    let out = v
        .cmd()
        .arg("passwd")
        .env("REDOUBT_NEW_PASSWORD", STRONG)
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("changed the password"), "{err}");
    assert!(!err.contains("weak"), "{err}");
    assert!(!err.contains(STRONG) && !err.contains(PASSWORD), "{err}");

    // The old password fails with a clear error; the new one opens the same vault.
    fails_with(v.cmd().arg("list"), "wrong password");
    fails_with(
        v.cmd().args(["get", "alice", "wallet", "seed"]),
        "wrong password",
    );
    let new = |args: &[&str]| {
        v.cmd()
            .args(args)
            .env("REDOUBT_PASSWORD", STRONG)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(new(&["get", "alice", "wallet", "seed"]), b"kept");
    assert_eq!(String::from_utf8(new(&["id"])).unwrap().trim(), peer);
    assert!(open_store(&v.path, PASSWORD).is_err());
    assert!(open_store(&v.path, STRONG).is_ok());
}

#[test]
fn passwd_warns_about_a_weak_new_password() {
    let v = Vault::new();
    let out = v
        .cmd()
        .arg("passwd")
        .env("REDOUBT_NEW_PASSWORD", "a")
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("this password is weak"), "{err}");
    v.cmd()
        .arg("list")
        .env("REDOUBT_PASSWORD", "a")
        .assert()
        .success();
}

#[test]
fn passwd_at_a_terminal_asks_twice_and_about_a_weak_password() {
    let v = Vault::new();
    let (code, screen) = on_terminal(&v, "passwd", "one thing\nanother\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("New password:"), "{screen}");
    assert!(screen.contains("Repeat the password"), "{screen}");
    assert!(screen.contains("the passwords differ"), "{screen}");
    let (code, screen) = on_terminal(&v, "passwd", "a\na\nn\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("this password is weak"), "{screen}");
    assert!(screen.contains("Use it anyway? [y/N]"), "{screen}");
    v.cmd().arg("list").assert().success();
    let typed = format!("{STRONG}\n{STRONG}\n");
    let (code, screen) = on_terminal(&v, "passwd", &typed);
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("changed the password"), "{screen}");
    v.cmd()
        .arg("list")
        .env("REDOUBT_PASSWORD", STRONG)
        .assert()
        .success();
}

#[test]
fn passwd_refusals_change_nothing() {
    let v = Vault::new();
    let passwd = |cmd: &mut assert_cmd::Command| {
        cmd.arg("passwd").env("REDOUBT_INSECURE_TEST_KDF", "1");
    };
    let mut cmd = v.cmd();
    passwd(&mut cmd);
    fails_with(
        cmd.env("REDOUBT_PASSWORD", "wrong")
            .env("REDOUBT_NEW_PASSWORD", STRONG),
        "wrong password",
    );
    let mut cmd = v.cmd();
    passwd(&mut cmd);
    fails_with(
        cmd.env("REDOUBT_NEW_PASSWORD", ""),
        "REDOUBT_NEW_PASSWORD is empty",
    );
    let mut cmd = v.cmd();
    passwd(&mut cmd);
    fails_with(
        cmd.env("REDOUBT_NEW_PASSWORD", PASSWORD),
        "the new password is the current one",
    );
    // The test vault's cheap KDF is below the floor: kept only where the environment says
    // this is a test.
    fails_with(
        v.cmd().arg("passwd").env("REDOUBT_NEW_PASSWORD", STRONG),
        "keeping the vault's KDF settings",
    );
    v.cmd().arg("list").assert().success();
    assert!(open_store(&v.path, PASSWORD).is_ok());
}

#[test]
fn export_writes_a_private_snapshot_atomically_and_never_over_a_file_without_force() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"exported");
    v.cmd()
        .args(["allow", PEER, "--client", "alice", "--read"])
        .assert()
        .success();
    let file = v.path.with_file_name("backup.snap");
    let out = v
        .cmd()
        .arg("export")
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("sealed with the vault's password"), "{err}");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(&MAGIC));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let snapshot = load_snapshot(&file, PASSWORD).unwrap();
    let store = open_store(&v.path, PASSWORD).unwrap();
    assert_eq!(
        snapshot.instance.state_digest(),
        store.state_digest().unwrap()
    );
    assert_eq!(&snapshot.access, store.grants());
    assert_eq!(
        snapshot.identity.expose_seed(),
        store.identity().expose_seed()
    );
    drop(store);

    // An existing file is kept unless --force; no temporary file is left either way.
    std::fs::write(&file, b"precious").unwrap();
    fails_with(
        v.cmd().arg("export").arg(&file),
        "pass --force to replace it",
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    v.cmd()
        .args(["export", "--force"])
        .arg(&file)
        .assert()
        .success();
    assert!(load_snapshot(&file, PASSWORD).is_ok());
    fails_with(v.cmd().arg("export").arg(&v.path), "is this vault itself");
    assert_eq!(
        names(v.path.parent().unwrap()),
        ["backup.snap", "vault.rdb"]
    );
}

#[test]
fn export_seals_with_another_password_when_the_environment_gives_one() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"exported");
    let file = v.path.with_file_name("backup.snap");
    let out = v
        .cmd()
        .arg("export")
        .arg(&file)
        .env("REDOUBT_EXPORT_PASSWORD", "a")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("this password is weak"), "{err}");
    assert!(err.contains("sealed with REDOUBT_EXPORT_PASSWORD"), "{err}");
    assert!(load_snapshot(&file, "a").is_ok());
    assert!(load_snapshot(&file, PASSWORD).is_err());
}

#[test]
fn sync_file_reads_an_export_and_a_vault_alike_and_an_export_restores() {
    let a = Vault::new();
    a.put("alice", "wallet", "seed", b"from a");
    a.put("bob", "vpn", "key", b"vpn");
    let export = a.path.with_file_name("a.snap");
    a.cmd().arg("export").arg(&export).assert().success();

    // From the export (a snapshot) and from the vault (a store): the same merge.
    let (b, c) = (Vault::new(), Vault::new());
    let from_export = vault::json_stdout(
        b.cmd()
            .env("REDOUBT_OTHER_PASSWORD", PASSWORD)
            .arg("sync-file")
            .arg(&export)
            .arg("--json"),
    );
    let from_vault = c.sync_file(&a, &[]);
    assert_eq!(report(&from_export), [2, 0, 0, 0, 0]);
    assert_eq!(report(&from_vault), report(&from_export));
    assert_eq!(stdout(&b, &["list"]), stdout(&c, &["list"]));
    assert_eq!(b.get("bob", "vpn", "key").unwrap(), b"vpn");

    // Restoring: the export put at a vault path migrates back into a vault, same identity.
    let r = Vault::empty();
    std::fs::copy(&export, &r.path).unwrap();
    assert_eq!(r.id(), a.id());
    assert_eq!(stdout(&r, &["list"]), stdout(&a, &["list"]));
}

#[test]
fn gpg_run_by_import_gets_none_of_the_password_variables() {
    let v = Vault::new();
    let dir = tempfile::tempdir().unwrap();
    // A `gpg` first on PATH that writes the environment it was given, then "decrypts".
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let seen = dir.path().join("seen-env");
    let fake = bin.join("gpg");
    std::fs::write(
        &fake,
        "#!/bin/sh\nenv > \"$FAKE_GPG_SEEN\"\nprintf 'decrypted value'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let store = dir.path().join("pass");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(store.join("site.gpg"), "not really encrypted").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    v.cmd()
        .env("PATH", path)
        .env("FAKE_GPG_SEEN", &seen)
        .env("REDOUBT_OTHER_PASSWORD", "other-secret-pw")
        .env("REDOUBT_NEW_PASSWORD", "new-secret-pw")
        .env("REDOUBT_EXPORT_PASSWORD", "export-secret-pw")
        .args(["import", "pass"])
        .arg(&store)
        .assert()
        .success();
    let env = std::fs::read_to_string(&seen).expect("the fake gpg ran");
    assert!(
        env.contains("FAKE_GPG_SEEN="),
        "the fake saw its own variable"
    );
    for leaked in [
        "REDOUBT_PASSWORD",
        "REDOUBT_OTHER_PASSWORD",
        "REDOUBT_NEW_PASSWORD",
        "REDOUBT_EXPORT_PASSWORD",
        PASSWORD,
        "other-secret-pw",
        "new-secret-pw",
        "export-secret-pw",
    ] {
        assert!(!env.contains(leaked), "gpg saw {leaked}: {env}");
    }
    assert_eq!(
        v.get("pass", "root", "site").as_deref(),
        Some(b"decrypted value".as_slice())
    );
}

/// The plaintext `meta` rows that derive and unwrap the data key (`kdf`, with the salt;
/// `password check`; `data key`), read with redb directly (no process has the vault open).
fn key_rows(path: &Path) -> Vec<(&'static str, Vec<u8>)> {
    use redb::{ReadableDatabase, TableDefinition};
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let meta = tx.open_table(META).unwrap();
    ["kdf", "password check", "data key"]
        .into_iter()
        .map(|row| (row, meta.get(row).unwrap().unwrap().value().to_vec()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn passwd_rekey_leaves_no_old_key_material_in_the_file_and_keeps_data_and_peer_id() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"kept");
    v.put("bob", "mail", "pw", b"also kept");
    v.cmd().args(["rm", "bob", "mail", "pw"]).assert().success();
    v.put("bob", "mail", "pw", b"back again");
    let peer = v.id();
    let listed = stdout(&v, &["list"]);
    let old = key_rows(&v.path);
    let kdf = &old[0].1;
    let salt = kdf[kdf.len() - 16..].to_vec();
    // A leftover of a rekey that crashed before its rename is removed by the next one.
    let leftover = v.path.with_file_name("vault.rdb.rekeying");
    std::fs::write(&leftover, "half a store").unwrap();

    let out = v
        .cmd()
        .args(["passwd", "--rekey"])
        .env("REDOUBT_NEW_PASSWORD", STRONG)
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("rekeyed"), "{err}");
    assert!(err.contains("journal starts again"), "{err}");
    assert!(!err.contains(STRONG) && !err.contains(PASSWORD), "{err}");
    assert!(!leftover.exists(), "the leftover is gone");
    assert_eq!(names(v.path.parent().unwrap()), ["vault.rdb"]);

    // The old password fails; the new one opens the same data under the same peer id.
    fails_with(v.cmd().arg("list"), "wrong password");
    assert!(open_store(&v.path, PASSWORD).is_err());
    let new = |args: &[&str]| {
        let out = v
            .cmd()
            .args(args)
            .env("REDOUBT_PASSWORD", STRONG)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(new(&["get", "alice", "wallet", "seed"]), "kept");
    assert_eq!(new(&["get", "bob", "mail", "pw"]), "back again");
    assert_eq!(new(&["list"]), listed);
    assert_eq!(new(&["id"]).trim(), peer);

    // Nothing that derived or unwrapped the old data key is anywhere in the file: not the
    // old salt, check value or wrapped key (a plain `passwd` may leave them in old pages).
    let bytes = std::fs::read(&v.path).unwrap();
    assert!(!contains(&bytes, &salt), "the old salt is in the file");
    for (row, value) in &old {
        assert!(!contains(&bytes, value), "the old {row} row is in the file");
    }
    let rows = key_rows(&v.path);
    assert_ne!(rows[2].1, old[2].1, "a new wrapped data key");
}

#[test]
fn passwd_says_rewrap_not_rekey_and_names_every_migration_backup() {
    let v = Vault::empty();
    old_vault(&v, PASSWORD);
    v.cmd().arg("list").assert().success();
    let second = v.path.with_file_name("vault.rdb.v1-snapshot.2");
    std::fs::copy(backup(&v), &second).unwrap();
    let out = v
        .cmd()
        .arg("passwd")
        .env("REDOUBT_NEW_PASSWORD", STRONG)
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let warning = "rewrap, not rekey: whoever knew the old password and has any copy of this \
                   file, including this file as it is now, may still read it; use --rekey if \
                   the old password may be known";
    assert!(flat(&err).contains(warning), "{err}");
    assert!(err.contains(&backup(&v).display().to_string()), "{err}");
    assert!(err.contains(&second.display().to_string()), "{err}");
    let help = stdout(&v, &["passwd", "--help"]);
    assert!(
        flat(&help).contains("this is a rewrap, not a rekey"),
        "{help}"
    );
    assert!(flat(&help).contains("--rekey"), "{help}");
}

#[test]
fn passwd_takes_the_same_password_when_the_kdf_cost_changes() {
    let v = Vault::new();
    v.cmd()
        .args(["passwd", "--kdf-iterations", "2"])
        .env("REDOUBT_NEW_PASSWORD", PASSWORD)
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .assert()
        .success();
    assert!(open_store(&v.path, PASSWORD).is_ok());
    let store = open_store(&v.path, PASSWORD).unwrap();
    assert_eq!(store.kdf_params().unwrap().iterations, 2);
    drop(store);
    // The same cost and the same password: still refused.
    fails_with(
        v.cmd()
            .args(["passwd", "--kdf-iterations", "2"])
            .env("REDOUBT_NEW_PASSWORD", PASSWORD)
            .env("REDOUBT_INSECURE_TEST_KDF", "1"),
        "the new password is the current one",
    );
}

#[test]
fn a_file_that_is_no_vault_is_refused_before_any_password_is_asked() {
    let v = Vault::empty();
    std::fs::write(&v.path, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    // No password in the environment and no terminal: asking would fail differently.
    fails_with(
        v.cmd().env_remove("REDOUBT_PASSWORD").arg("list"),
        "is not a Redoubt vault (neither a vault store nor a snapshot file)",
    );
    let (_, screen) = on_terminal(&v, "list", "");
    assert!(!screen.contains("Password"), "{screen}");
    assert!(screen.contains("is not a Redoubt vault"), "{screen}");
}

#[test]
fn a_symlink_named_like_the_backup_is_not_taken_for_it() {
    let v = Vault::empty();
    old_vault(&v, PASSWORD);
    let link = backup(&v);
    std::os::unix::fs::symlink(&v.path, &link).unwrap();
    v.cmd().arg("list").assert().success();
    // The link is left alone (it now names the store); the snapshot is kept beside it.
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let kept = v.path.with_file_name("vault.rdb.v1-snapshot.2");
    assert!(
        load_snapshot(&kept, PASSWORD).is_ok(),
        "the old snapshot is kept"
    );
}

#[test]
fn a_vault_path_that_is_a_symlink_is_not_migrated_or_rekeyed() {
    let v = Vault::empty();
    old_vault(&v, PASSWORD);
    let link = v.path.with_file_name("link.rdb");
    std::os::unix::fs::symlink(&v.path, &link).unwrap();
    fails_with(
        v.cmd().env("REDOUBT_VAULT", &link).arg("list"),
        "is a symbolic link; to migrate the vault, pass the file itself",
    );
    assert!(load_snapshot(&v.path, PASSWORD).is_ok(), "nothing changed");
    v.cmd().arg("list").assert().success();
    // A migrated store opens through the link, but is not rekeyed through it.
    v.cmd()
        .env("REDOUBT_VAULT", &link)
        .arg("list")
        .assert()
        .success();
    fails_with(
        v.cmd()
            .env("REDOUBT_VAULT", &link)
            .args(["passwd", "--rekey"])
            .env("REDOUBT_NEW_PASSWORD", STRONG)
            .env("REDOUBT_INSECURE_TEST_KDF", "1"),
        "is a symbolic link; to rekey the vault",
    );
    assert!(open_store(&v.path, PASSWORD).is_ok());
}
