//! Issue 17, the CLI for daily use, driven through the real binary: no silent data loss, quiet
//! ends on closed pipes, one-line-per-record listings, clear errors, `pass`-style paths,
//! `generate`, `find`, `get --clip`, completions and the manual page.

#[path = "support/vault.rs"]
mod vault;

use std::{io::Read, process::Stdio};

use vault::{PASSWORD, Vault, fails_with, on_terminal, on_terminal_at};

#[test]
fn put_refuses_empty_input_unless_allowed() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"kept");
    // `cat missing-file | redoubt put ...`: stdin is empty.
    for args in [
        &["put", "alice", "wallet", "seed", "--force"][..],
        &["put", "alice", "wallet", "new"],
    ] {
        fails_with(v.cmd().args(args).write_stdin(""), "--allow-empty");
    }
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"kept");
    assert!(v.get("alice", "wallet", "new").is_none());
    v.cmd()
        .args(["put", "--allow-empty", "alice", "wallet", "new"])
        .write_stdin("")
        .assert()
        .success();
    assert_eq!(v.get("alice", "wallet", "new").unwrap(), b"");
}

#[test]
fn put_needs_force_to_replace_off_a_terminal() {
    let v = Vault::new();
    v.cmd()
        .args(["put", "alice", "wallet", "seed"])
        .write_stdin("first")
        .assert()
        .success();
    fails_with(
        v.cmd()
            .args(["put", "alice", "wallet", "seed"])
            .write_stdin("second"),
        "pass --force to replace it",
    );
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"first");
    v.cmd()
        .args(["put", "--force", "alice", "wallet", "seed"])
        .write_stdin("second")
        .assert()
        .success();
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"second");
}

#[test]
fn on_a_terminal_put_asks_twice_and_before_replacing() {
    let v = Vault::new();
    let (code, screen) = on_terminal(&v, "put alice pty seed", "abc\nabd\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("Repeat the secret"), "{screen}");
    assert!(screen.contains("the two secrets typed differ"), "{screen}");
    assert!(v.get("alice", "pty", "seed").is_none());

    let (code, screen) = on_terminal(&v, "put alice pty seed", "abc\nabc\n");
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(v.get("alice", "pty", "seed").unwrap(), b"abc");

    // Enter at the hidden prompt is an empty secret: refused.
    let (code, screen) = on_terminal(&v, "put alice pty empty", "\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("--allow-empty"), "{screen}");

    // Replacing asks first; "n" keeps the old secret.
    let (code, screen) = on_terminal(&v, "put alice pty seed", "n\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(
        screen.contains("already holds a secret. Replace it? [y/N]"),
        "{screen}"
    );
    let (code, screen) = on_terminal(&v, "put alice pty seed", "y\nxyz\nxyz\n");
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(v.get("alice", "pty", "seed").unwrap(), b"xyz");
}

#[test]
fn get_ends_with_a_newline_on_a_terminal_only() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"no newline");
    let (code, screen) = on_terminal(&v, "get alice wallet seed", "");
    assert_eq!(code, Some(0));
    assert!(screen.ends_with("no newline\r\n"), "{screen:?}");
    // A pipe gets the bytes exactly.
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"no newline");
}

/// Each command that writes to stdout, with its reader gone before it writes: no panic, no
/// message, status 141 (what shells show for SIGPIPE).
#[test]
fn a_closed_stdout_ends_any_command_quietly_with_141() {
    let v = Vault::new();
    for i in 0..3 {
        v.put("alice", "wallet", &format!("r{i}"), b"value");
    }
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["get", "alice", "wallet", "r0"],
        &["find", "wallet"],
        &["id"],
        &["generate"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
    ] {
        // The reading end is closed before the command starts, so every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = v
            .process()
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        let quiet = err.is_empty() || err.starts_with("entropy:");
        assert!(quiet && !err.contains("panic"), "{args:?}: {err}");
        // `--help` is clap's: it ends without a panic, whatever its status.
        if args != ["--help"] {
            assert_eq!(status.code(), Some(141), "{args:?}: {err}");
        }
    }
}

#[test]
fn list_is_sorted_and_one_line_of_five_fields_per_record() {
    let v = Vault::new();
    v.put("bob", "vpn", "key", b"1");
    v.put("alice", "we\tird", "two\nlines", b"22");
    v.put("alice", "wallet", "back\\slash", b"333");
    v.put("alice", "wallet", "a", b"4444");
    let out = v.cmd().arg("list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let names: Vec<_> = lines
        .iter()
        .map(|l| {
            let fields: Vec<_> = l.split('\t').collect();
            assert_eq!(fields.len(), 5, "{l:?}");
            fields[..4].join("|")
        })
        .collect();
    assert_eq!(
        names,
        [
            "alice|wallet|a|4",
            "alice|wallet|back\\\\slash|3",
            "alice|we\\tird|two\\nlines|2",
            "bob|vpn|key|1",
        ]
    );
    // JSON keeps the names as they are, in the same order.
    let out = v.cmd().args(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[2]["vault"], "we\tird");
    assert_eq!(json[2]["record"], "two\nlines");
    assert_eq!(json[3]["client"], "bob");
}

#[test]
fn usage_errors_point_at_the_subcommand_help() {
    let v = Vault::new();
    fails_with(
        v.cmd().args(["put", "alice", "wallet"]),
        "`redoubt put --help`",
    );
    fails_with(v.cmd().args(["sync", "--bogus"]), "`redoubt sync --help`");
    fails_with(v.cmd().args(["get", "alice"]), "`redoubt get --help`");
    fails_with(v.cmd().arg("bogus"), "`redoubt --help`");
}

#[test]
fn os_errors_are_said_once_and_a_non_vault_gets_no_lock_file() {
    let v = Vault::new();
    let dir = v.path.parent().unwrap().to_path_buf();
    let out = v
        .cmd()
        .arg("list")
        .env("REDOUBT_VAULT", &dir)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(err.contains("Is a directory"), "{err}");

    let other = dir.join("passwd");
    std::fs::write(&other, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = names();
    fails_with(
        v.cmd().arg("list").env("REDOUBT_VAULT", &other),
        "is not a Redoubt vault (neither a vault store nor a snapshot file)",
    );
    let mut cmd = v.cmd();
    cmd.env("REDOUBT_OTHER_PASSWORD", PASSWORD)
        .arg("sync-file")
        .arg(&other);
    fails_with(&mut cmd, "is not a Redoubt vault");
    // Nothing was created beside the file: no lock file, no migration or temporary file.
    assert_eq!(names(), before, "stray files beside a non-vault");
    assert_eq!(
        std::fs::read(&other).unwrap(),
        b"root:x:0:0:root:/root:/bin/bash\n"
    );
    assert!(!dir.with_extension("lock").exists(), "stray lock file");
}

#[test]
fn init_warns_about_a_weak_password_and_still_proceeds_in_a_script() {
    let v = Vault::new();
    let fresh = v.path.with_file_name("weak.rdb");
    let out = v
        .cmd()
        .args(["init", "--kdf-memory-kib", "8", "--kdf-iterations", "1"])
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .env("REDOUBT_VAULT", &fresh)
        .env("REDOUBT_PASSWORD", "a")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("redoubt: warning: this password is weak"),
        "{err}"
    );
    let strong = v.path.with_file_name("strong.rdb");
    let out = v
        .cmd()
        .args(["init", "--kdf-memory-kib", "8", "--kdf-iterations", "1"])
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .env("REDOUBT_VAULT", &strong)
        .env("REDOUBT_PASSWORD", "quartz pelican umbrella 1987 ferry")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("weak"));
}

#[test]
fn init_at_a_prompt_asks_before_taking_a_weak_password() {
    let v = Vault::new();
    let init = "init --kdf-memory-kib 8 --kdf-iterations 1";
    let weak = v.path.with_file_name("weak.rdb");
    let (code, screen) = on_terminal_at(&weak, None, init, "a\na\nn\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("this password is weak"), "{screen}");
    assert!(screen.contains("Use it anyway? [y/N]"), "{screen}");
    assert!(!weak.exists());
    let (code, screen) = on_terminal_at(&weak, None, init, "a\na\ny\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(weak.exists());
}

#[test]
fn pass_style_paths_work_beside_three_arguments() {
    let v = Vault::new();
    v.cmd()
        .args(["put", "alice/wallet/seed"])
        .write_stdin("by path")
        .assert()
        .success();
    assert_eq!(v.get("alice", "wallet", "seed").unwrap(), b"by path");
    v.cmd()
        .args(["get", "alice/wallet/seed"])
        .assert()
        .success()
        .stdout("by path");
    v.cmd()
        .args(["get", "wallet/seed"])
        .env("REDOUBT_CLIENT", "alice")
        .assert()
        .success()
        .stdout("by path");
    let config = v.path.with_file_name("config-home");
    fails_with(
        v.cmd()
            .args(["get", "wallet/seed"])
            .env_remove("REDOUBT_CLIENT")
            .env("XDG_CONFIG_HOME", &config),
        "REDOUBT_CLIENT",
    );
    // The config file's `client = NAME` is the default too.
    std::fs::create_dir_all(config.join("redoubt")).unwrap();
    std::fs::write(
        config.join("redoubt/config"),
        "# redoubt settings\nclient = alice\n",
    )
    .unwrap();
    v.cmd()
        .args(["get", "wallet/seed"])
        .env_remove("REDOUBT_CLIENT")
        .env("XDG_CONFIG_HOME", &config)
        .assert()
        .success()
        .stdout("by path");
    // The record keeps further slashes.
    v.cmd()
        .args(["put", "alice/web/example.com/me"])
        .write_stdin("x")
        .assert()
        .success();
    assert_eq!(v.get("alice", "web", "example.com/me").unwrap(), b"x");
    v.cmd()
        .args(["rm", "wallet/seed"])
        .env("REDOUBT_CLIENT", "alice")
        .assert()
        .success();
    assert!(v.get("alice", "wallet", "seed").is_none());
    // With a default client, a deep pass path stays in it: its first part never becomes a new
    // (unshared) client.
    v.cmd()
        .args(["put", "email/work/outlook"])
        .env("REDOUBT_CLIENT", "alice")
        .write_stdin("deep")
        .assert()
        .success();
    assert_eq!(v.get("alice", "email", "work/outlook").unwrap(), b"deep");
    let listed = v.cmd().arg("list").output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.lines().all(|l| l.starts_with("alice\t")), "{listed}");
}

#[test]
fn generate_makes_passwords_and_passphrases_and_can_store_them() {
    let v = Vault::new();
    let out = v
        .cmd()
        .args(["generate", "--length", "40", "--no-upper", "--no-symbols"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let pw = String::from_utf8(out.stdout).unwrap();
    let pw = pw.trim_end();
    assert_eq!(pw.len(), 40);
    assert!(
        pw.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{pw}"
    );
    // 36 symbols: 40 * log2(36) = 206.8 bits.
    assert!(String::from_utf8_lossy(&out.stderr).contains("entropy: 207 bits"));

    let out = v.cmd().args(["generate", "--words", "6"]).output().unwrap();
    let phrase = String::from_utf8(out.stdout).unwrap();
    let words: Vec<_> = phrase.trim_end().split('-').collect();
    assert_eq!(words.len(), 6, "{phrase}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("entropy: 72 bits"));

    fails_with(
        v.cmd().args([
            "generate",
            "--no-lower",
            "--no-upper",
            "--no-digits",
            "--no-symbols",
        ]),
        "keep at least one",
    );

    // Stored, and not printed.
    v.cmd()
        .args(["generate", "--store", "alice/web/site", "--length", "16"])
        .assert()
        .success()
        .stdout("");
    let stored = v.get("alice", "web", "site").unwrap();
    assert_eq!(stored.len(), 16);
    fails_with(
        v.cmd().args(["generate", "--store", "alice/web/site"]),
        "--force",
    );
    let out = v
        .cmd()
        .args([
            "generate",
            "--store",
            "alice/web/site",
            "--force",
            "--print",
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        v.get("alice", "web", "site").unwrap(),
        printed.trim_end().as_bytes()
    );
}

#[test]
fn get_clip_says_where_there_is_no_clipboard() {
    let v = Vault::new();
    v.put("alice", "wallet", "seed", b"CANARY-clip");
    let out = v
        .cmd()
        .args(["get", "--clip", "alice/wallet/seed"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no clipboard on this machine"), "{err}");
    assert!(err.contains("without --clip"), "{err}");
    assert!(!err.contains("CANARY"), "{err}");
}

#[test]
fn find_matches_paths_never_values() {
    let v = Vault::new();
    v.put("alice", "Wallet", "seed", b"mail-in-value");
    v.put("alice", "mail", "gmail", b"x");
    v.put("bob", "vpn", "key", b"y");
    v.cmd()
        .args(["find", "MAIL"])
        .assert()
        .success()
        .stdout("alice/mail/gmail\n");
    v.cmd()
        .args(["search", "wallet"])
        .assert()
        .success()
        .stdout("alice/Wallet/seed\n");
    v.cmd()
        .args(["find", "nothing"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn completions_and_the_man_page() {
    let v = Vault::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = v.cmd().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("redoubt") && text.contains("generate"),
            "{shell}"
        );
    }
    fails_with(v.cmd().args(["completions", "cmd.exe"]), "invalid value");
    let out = v.cmd().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("redoubt"));
}
