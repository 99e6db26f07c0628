//! `redoubt import` from `pass` (through a real `gpg` and a key made here), Bitwarden's
//! unencrypted JSON export and KeePassXC's CSV export, driven through the real binary.

#[path = "support/vault.rs"]
mod vault;

use std::{path::Path, process::Command as StdCommand};

use vault::{Vault, fails_with};

fn import(v: &Vault, args: &[&str]) -> String {
    let out = v.cmd().arg("import").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn has(v: &Vault, client: &str, vault: &str, record: &str, value: &str) {
    assert_eq!(
        v.get(client, vault, record).as_deref(),
        Some(value.as_bytes()),
        "{client}/{vault}/{record}"
    );
}

const BITWARDEN: &str = r#"{
  "encrypted": false,
  "folders": [{"id": "f1", "name": "Email"}, {"id": "f2", "name": "Work/Servers"}],
  "items": [
    {"id": "i1", "type": 1, "name": "gmail", "folderId": "f1", "notes": "2FA on phone",
     "login": {"username": "me@gmail.com", "password": "hunter2",
               "uris": [{"match": null, "uri": "https://mail.google.com"}], "totp": "otpauth://x"},
     "fields": [{"name": "pin", "value": "1234", "type": 1}]},
    {"id": "i2", "type": 1, "name": "db", "folderId": "f2",
     "login": {"username": "root", "password": "s3cret", "uris": null, "totp": null}},
    {"id": "i3", "type": 2, "name": "wifi", "folderId": null, "notes": "guest: letmein",
     "secureNote": {"type": 0}},
    {"id": "i4", "type": 3, "name": "visa", "folderId": null, "notes": "the blue one",
     "card": {"number": "4111111111111111"}},
    {"id": "i5", "type": 1, "name": "gmail", "folderId": "f1",
     "login": {"username": "other@gmail.com", "password": "second", "uris": []}}
  ]
}"#;

#[test]
fn bitwarden_json_maps_folders_items_and_fields() {
    let v = Vault::new();
    let file = v.path.with_file_name("bitwarden.json");
    std::fs::write(&file, BITWARDEN).unwrap();
    let out = import(&v, &["bitwarden", file.to_str().unwrap()]);
    assert_eq!(
        out,
        "imported into client bitwarden: added 12, replaced 0, kept 0 existing, skipped 0\n"
    );
    has(&v, "bitwarden", "Email", "gmail", "hunter2");
    has(&v, "bitwarden", "Email", "gmail/username", "me@gmail.com");
    has(
        &v,
        "bitwarden",
        "Email",
        "gmail/uri",
        "https://mail.google.com",
    );
    has(&v, "bitwarden", "Email", "gmail/totp", "otpauth://x");
    has(&v, "bitwarden", "Email", "gmail/notes", "2FA on phone");
    has(&v, "bitwarden", "Email", "gmail/field/pin", "1234");
    has(&v, "bitwarden", "Work", "Servers/db", "s3cret");
    has(&v, "bitwarden", "Work", "Servers/db/username", "root");
    has(&v, "bitwarden", "root", "wifi", "guest: letmein");
    has(&v, "bitwarden", "root", "visa/notes", "the blue one");
    assert!(
        v.get("bitwarden", "root", "visa").is_none(),
        "card numbers stay out"
    );
    // A second item with the same name keeps its own place.
    has(&v, "bitwarden", "Email", "gmail (2)", "second");
    has(
        &v,
        "bitwarden",
        "Email",
        "gmail (2)/username",
        "other@gmail.com",
    );

    // Again: nothing replaced without --force.
    let out = import(
        &v,
        &["bitwarden", file.to_str().unwrap(), "--client", "bitwarden"],
    );
    assert!(out.contains("added 0, replaced 0, kept 12"), "{out}");
    let out = import(&v, &["bitwarden", file.to_str().unwrap(), "--force"]);
    assert!(out.contains("replaced 12"), "{out}");

    std::fs::write(
        &file,
        r#"{"encrypted": true, "passwordProtected": true, "data": "x"}"#,
    )
    .unwrap();
    fails_with(
        v.cmd().args(["import", "bitwarden"]).arg(&file),
        "export again as unencrypted JSON",
    );
    std::fs::write(&file, "{\"items\": [\"hunter2\"").unwrap();
    let out = v
        .cmd()
        .args(["import", "bitwarden"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not a Bitwarden JSON export"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn keepassxc_csv_maps_groups_titles_and_columns() {
    let v = Vault::new();
    let file = v.path.with_file_name("keepassxc.csv");
    std::fs::write(
        &file,
        "\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\",\"TOTP\",\"Icon\",\"Last Modified\",\"Created\"\r\n\
         \"Root/Email\",\"gmail\",\"me\",\"pa,ss\"\"word\",\"https://mail.google.com\",\"line one\nline two\",\"\",\"0\",\"2026-01-01T00:00:00Z\",\"2026-01-01T00:00:00Z\"\r\n\
         \"Root\",\"router\",\"admin\",\"admin123\",\"\",\"\",\"\",\"0\",\"\",\"\"\r\n\
         \"Root/Work/Servers\",\"db\",\"\",\"s3cret\",\"\",\"\",\"otpauth://y\",\"0\",\"\",\"\"\r\n",
    )
    .unwrap();
    let out = import(&v, &["keepassxc", file.to_str().unwrap(), "--client", "kp"]);
    assert_eq!(
        out,
        "imported into client kp: added 8, replaced 0, kept 0 existing, skipped 0\n"
    );
    has(&v, "kp", "Email", "gmail", "pa,ss\"word");
    has(&v, "kp", "Email", "gmail/username", "me");
    has(&v, "kp", "Email", "gmail/url", "https://mail.google.com");
    has(&v, "kp", "Email", "gmail/notes", "line one\nline two");
    has(&v, "kp", "root", "router", "admin123");
    has(&v, "kp", "root", "router/username", "admin");
    has(&v, "kp", "Work", "Servers/db", "s3cret");
    has(&v, "kp", "Work", "Servers/db/totp", "otpauth://y");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    fails_with(
        v.cmd().args(["import", "keepassxc"]).arg(&file),
        "not a KeePassXC CSV export",
    );
}

fn gpg(home: &Path, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = StdCommand::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--quiet", "--yes"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gpg is installed");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops the test's gpg-agent when the test ends, passed or not.
struct Agent<'a>(&'a Path);

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        let _ = StdCommand::new("gpgconf")
            .env("GNUPGHOME", self.0)
            .args(["--kill", "all"])
            .status();
    }
}

#[test]
fn a_pass_store_is_decrypted_through_gpg() {
    let v = Vault::new();
    let home = tempfile::tempdir().unwrap();
    let gnupg = home.path().join("g");
    std::fs::create_dir(&gnupg).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let _agent = Agent(&gnupg);
    gpg(
        &gnupg,
        &[
            "--passphrase",
            "",
            "--quick-generate-key",
            "Redoubt Test <test@redoubt.invalid>",
            "default",
            "default",
            "never",
        ],
        None,
    );
    let store = home.path().join("store");
    std::fs::create_dir_all(store.join("email/work")).unwrap();
    std::fs::create_dir_all(store.join(".git")).unwrap();
    std::fs::write(store.join(".gpg-id"), "test@redoubt.invalid\n").unwrap();
    for (name, value) in [
        ("github", "gh-token\n"),
        ("email/gmail", "hunter2\nusername: me\n"),
        ("email/work/outlook", "s3cret"),
    ] {
        let out = store.join(format!("{name}.gpg"));
        gpg(
            &gnupg,
            &[
                "--trust-model",
                "always",
                "--recipient",
                "test@redoubt.invalid",
                "--output",
                out.to_str().unwrap(),
                "--encrypt",
            ],
            Some(value),
        );
    }
    std::fs::write(store.join(".git/config.gpg"), "not a secret").unwrap();
    let out = v
        .cmd()
        .env("GNUPGHOME", &gnupg)
        .args(["import", "pass"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "imported into client pass: added 3, replaced 0, kept 0 existing, skipped 0\n"
    );
    has(&v, "pass", "root", "github", "gh-token\n");
    has(&v, "pass", "email", "gmail", "hunter2\nusername: me\n");
    has(&v, "pass", "email", "work/outlook", "s3cret");
    // PASSWORD_STORE_DIR is the default store.
    let out = v
        .cmd()
        .env("GNUPGHOME", &gnupg)
        .env("PASSWORD_STORE_DIR", &store)
        .args(["import", "pass", "--client", "p2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    has(&v, "p2", "email", "gmail", "hunter2\nusername: me\n");
    // Without the key, gpg's reason reaches the user in one line.
    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let _other = Agent(&empty);
    fails_with(
        v.cmd()
            .env("GNUPGHOME", &empty)
            .args(["import", "pass", "--client", "p3"])
            .arg(&store),
        "gpg could not decrypt",
    );
}
