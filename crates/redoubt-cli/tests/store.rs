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
        store.instance().state_digest(),
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
        store.instance().state_digest()
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
