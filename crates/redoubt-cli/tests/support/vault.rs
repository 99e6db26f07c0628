//! A vault in a temporary directory and assertions on the `redoubt` binary, shared by the CLI
//! test files.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use assert_cmd::Command;

pub const PASSWORD: &str = "test password";

/// A vault in a temporary directory, made with cheap KDF parameters (tests only, hence
/// `REDOUBT_INSECURE_TEST_KDF=1` on its `init`).
pub struct Vault {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Vault {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("vault.rdb");
        let v = Self { _dir: dir, path };
        v.cmd()
            .args(["init", "--kdf-memory-kib", "8", "--kdf-iterations", "1"])
            .env("REDOUBT_INSECURE_TEST_KDF", "1")
            .assert()
            .success();
        v
    }

    /// A path for a vault in a fresh temporary directory, with nothing there yet.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("vault.rdb");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        Self { _dir: dir, path }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("redoubt").unwrap();
        c.env("REDOUBT_VAULT", &self.path)
            .env("REDOUBT_PASSWORD", PASSWORD)
            .env_remove("REDOUBT_OTHER_PASSWORD")
            .env_remove("REDOUBT_NEW_PASSWORD")
            .env_remove("REDOUBT_EXPORT_PASSWORD")
            .env_remove("REDOUBT_INSECURE_TEST_KDF");
        c
    }

    /// Stores `value`, replacing what is there (`--force`).
    pub fn put(&self, client: &str, vault: &str, record: &str, value: &[u8]) {
        self.cmd()
            .args(["put", "--force", client, vault, record])
            .write_stdin(value)
            .assert()
            .success()
            .stdout("");
    }

    pub fn get(&self, client: &str, vault: &str, record: &str) -> Option<Vec<u8>> {
        let out = self
            .cmd()
            .args(["get", client, vault, record])
            .output()
            .unwrap();
        out.status.success().then_some(out.stdout)
    }

    pub fn sync_file(&self, other: &Vault, extra: &[&str]) -> serde_json::Value {
        json_stdout(
            self.cmd()
                .env("REDOUBT_OTHER_PASSWORD", PASSWORD)
                .arg("sync-file")
                .arg(&other.path)
                .args(extra)
                .arg("--json"),
        )
    }
}

/// Runs `cmd`, asserts success, and parses its stdout as JSON.
pub fn json_stdout(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap()
}

/// Asserts a failure with exactly one line on stderr, containing `needle`.
pub fn fails_with(cmd: &mut Command, needle: &str) {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("redoubt: error: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

pub fn report(v: &serde_json::Value) -> [u64; 5] {
    [
        "added",
        "updated",
        "deleted",
        "unchanged",
        "conflicts_resolved",
    ]
    .map(|k| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("missing key {k} in {v}"))
    })
}

impl Vault {
    /// The binary as a plain process (for long-running commands such as `serve`).
    pub fn process(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("redoubt"));
        c.env("REDOUBT_VAULT", &self.path)
            .env("REDOUBT_PASSWORD", PASSWORD)
            .env_remove("REDOUBT_OTHER_PASSWORD");
        c
    }

    /// This vault's peer id, as `redoubt id` prints it.
    pub fn id(&self) -> String {
        let out = self
            .cmd()
            .arg("id")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "id prints one line: {text:?}");
        text.trim_end().to_string()
    }
}

/// Runs `args` under `script`, so that the command sees a terminal (stdin, stdout, stderr on a
/// pseudo-terminal); `typed` is what the user types. Returns the exit code and what the
/// terminal showed.
pub fn on_terminal(v: &Vault, args: &str, typed: &str) -> (Option<i32>, String) {
    on_terminal_at(&v.path, Some(PASSWORD), args, typed)
}

/// [`on_terminal`] for the vault at `path`, with `REDOUBT_PASSWORD` set to `password` or
/// unset (then the password is typed too).
pub fn on_terminal_at(
    path: &std::path::Path,
    password: Option<&str>,
    args: &str,
    typed: &str,
) -> (Option<i32>, String) {
    let bin = assert_cmd::cargo::cargo_bin("redoubt");
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &format!("{} {args}", bin.display()), "/dev/null"])
        .env("REDOUBT_VAULT", path)
        .env("REDOUBT_INSECURE_TEST_KDF", "1")
        .env_remove("REDOUBT_PASSWORD");
    if let Some(pw) = password {
        script.env("REDOUBT_PASSWORD", pw);
    }
    let mut child = script
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs the command on a pseudo-terminal");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(typed.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
