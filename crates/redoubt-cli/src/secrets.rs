//! Reading passwords and secret values: environment or prompt, stdin; never argv.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use redoubt_vault::{MAX_VALUE_LEN, SecretValue};
use zeroize::Zeroizing;

/// Environment variable holding this vault's password.
pub(crate) const PASSWORD_ENV: &str = "REDOUBT_PASSWORD";
/// Environment variable holding the other vault's or snapshot's password (`sync-file`).
pub(crate) const OTHER_PASSWORD_ENV: &str = "REDOUBT_OTHER_PASSWORD";
/// Environment variable holding the new password of `passwd` (for scripts).
pub(crate) const NEW_PASSWORD_ENV: &str = "REDOUBT_NEW_PASSWORD";
/// Environment variable holding the password an `export` is sealed with, when it should not
/// be the vault's own.
pub(crate) const EXPORT_PASSWORD_ENV: &str = "REDOUBT_EXPORT_PASSWORD";
/// Every environment variable above that may hold a password: the one list that every child
/// process (`gpg`, the clipboard helper) has removed from its environment.
pub(crate) const PASSWORD_ENVS: [&str; 4] = [
    PASSWORD_ENV,
    OTHER_PASSWORD_ENV,
    NEW_PASSWORD_ENV,
    EXPORT_PASSWORD_ENV,
];

/// `command` with every [`PASSWORD_ENVS`] variable removed from the environment it will get:
/// a child (`gpg`, the clipboard helper) needs none of them, and what it inherits can leak
/// (its own children, `/proc/PID/environ`, crash reports).
pub(crate) fn without_passwords(command: &mut std::process::Command) -> &mut std::process::Command {
    for name in PASSWORD_ENVS {
        command.env_remove(name);
    }
    command
}

/// A password as typed or given: wiped on drop, never printed. The store and the snapshot
/// file each take their own password type; both are made from this one.
#[derive(Clone)]
pub(crate) struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes `bytes` (wiped with this value): a password that came over the agent's socket.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The password for a store.
    pub(crate) fn store(&self) -> redoubt_node::store::Password {
        redoubt_node::store::Password::new(self.0.to_vec())
    }

    /// The password for a format-1 snapshot file.
    pub(crate) fn snapshot(&self) -> redoubt_snapshot::Password {
        redoubt_snapshot::Password::new(self.0.to_vec())
    }

    /// The bytes, for a KDF of another crate (the remote's recovery passphrase).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether it is the same password as `other` (constant time in the length).
    pub(crate) fn same_as(&self, other: &Secret) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The password from `env`, or else a prompt on the terminal.
pub(crate) fn password(env: &str, prompt: &str) -> Result<Secret> {
    if let Some(value) = std::env::var_os(env) {
        return Ok(Secret::new(value.into_encoded_bytes()));
    }
    let typed = Zeroizing::new(
        rpassword::prompt_password(prompt)
            .with_context(|| format!("no password: set {env} or run in a terminal"))?,
    );
    Ok(Secret::new(typed.as_bytes().to_vec()))
}

/// A new password: from `env`, or typed twice at a prompt (`what` names it there). Never
/// empty, never `current` (when given); warned about when weak ([`warn_if_weak`]).
pub(crate) fn new_password(env: &str, what: &str, current: Option<&Secret>) -> Result<Secret> {
    let unchanged = |new: &Secret| -> Result<()> {
        if current.is_some_and(|c| c.same_as(new)) {
            bail!("the new password is the current one; nothing was changed");
        }
        Ok(())
    };
    if let Some(value) = std::env::var_os(env) {
        if value.is_empty() {
            bail!("{env} is empty; choose a password");
        }
        let new = Secret::new(value.into_encoded_bytes());
        unchanged(&new)?;
        warn_if_weak(&new.0, false)?;
        return Ok(new);
    }
    let first = Zeroizing::new(
        rpassword::prompt_password(format!("{what}: "))
            .with_context(|| format!("no password: set {env} or run in a terminal"))?,
    );
    if first.is_empty() {
        bail!("the password must not be empty");
    }
    let second = Zeroizing::new(
        rpassword::prompt_password("Repeat the password: ").context("reading the password")?,
    );
    if first != second {
        bail!("the passwords differ");
    }
    let new = Secret::new(first.as_bytes().to_vec());
    unchanged(&new)?;
    warn_if_weak(&new.0, std::io::stdin().is_terminal())?;
    Ok(new)
}

/// The lowest zxcvbn score (0 to 4) taken without a warning: 3, "safely unguessable"
/// (about 10^10 guesses).
pub(crate) const STRONG_SCORE: u8 = 3;

/// Warns on stderr when zxcvbn scores `password` below [`STRONG_SCORE`]; when `ask` (a
/// terminal), asks whether to use it anyway. A password from the environment is only warned
/// about, so scripts proceed.
pub(crate) fn warn_if_weak(password: &[u8], ask: bool) -> Result<()> {
    let text = Zeroizing::new(String::from_utf8_lossy(password).into_owned());
    let estimate = zxcvbn::zxcvbn(&text, &["redoubt", "vault"]);
    let score = u8::from(estimate.score());
    if score >= STRONG_SCORE {
        return Ok(());
    }
    let mut why = String::new();
    if let Some(feedback) = estimate.feedback() {
        if let Some(w) = feedback.warning() {
            why.push_str(&format!(" {w}"));
        }
        for s in feedback.suggestions() {
            why.push_str(&format!(" {s}"));
        }
    }
    eprintln!(
        "redoubt: warning: this password is weak (strength {score} of 4, {STRONG_SCORE} wanted): \
         anyone who copies the vault file can guess it.{why}"
    );
    if ask {
        eprint!("Use it anyway? [y/N] ");
        std::io::Write::flush(&mut std::io::stderr())?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            bail!("choose a stronger password");
        }
    }
    Ok(())
}

/// The secret to store: all of stdin byte for byte, or a hidden prompt, asked twice, when stdin
/// is a terminal. Refused above the value cap without reading further.
pub(crate) fn secret_from_stdin() -> Result<SecretValue> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let typed =
            Zeroizing::new(rpassword::prompt_password("Secret: ").context("reading the secret")?);
        if !typed.is_empty() {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the secret: ").context("reading the secret")?,
            );
            if typed != again {
                bail!("the two secrets typed differ; nothing was stored");
            }
        }
        return Ok(SecretValue::new(typed.as_bytes().to_vec()));
    }
    let mut buf = Zeroizing::new(Vec::new());
    let cap = MAX_VALUE_LEN as u64 + 1;
    stdin
        .lock()
        .take(cap)
        .read_to_end(&mut buf)
        .context("reading the secret from stdin")?;
    if buf.len() > MAX_VALUE_LEN {
        bail!("the secret on stdin is larger than {MAX_VALUE_LEN} bytes");
    }
    // Move into an exact-size allocation so the growth copies above are all wiped by Zeroizing.
    Ok(SecretValue::new(buf.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_command_gets_none_of_the_password_variables() {
        let mut command = std::process::Command::new("true");
        for name in PASSWORD_ENVS {
            command.env(name, "leaked");
        }
        without_passwords(&mut command);
        let envs: Vec<_> = command.get_envs().collect();
        for name in PASSWORD_ENVS {
            assert!(
                envs.contains(&(std::ffi::OsStr::new(name), None)),
                "{name} is removed: {envs:?}"
            );
        }
        assert!(PASSWORD_ENVS.iter().all(|n| n.starts_with("REDOUBT_")));
        assert!(PASSWORD_ENVS.contains(&"REDOUBT_PASSWORD"));
        assert!(PASSWORD_ENVS.contains(&"REDOUBT_OTHER_PASSWORD"));
        assert!(PASSWORD_ENVS.contains(&"REDOUBT_NEW_PASSWORD"));
        assert!(PASSWORD_ENVS.contains(&"REDOUBT_EXPORT_PASSWORD"));
    }
}
