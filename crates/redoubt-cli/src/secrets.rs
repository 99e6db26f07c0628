//! Reading passwords and secret values: environment or prompt, stdin; never argv.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use redoubt_snapshot::Password;
use redoubt_vault::{MAX_VALUE_LEN, SecretValue};
use zeroize::Zeroizing;

/// Environment variable holding this vault's password.
pub(crate) const PASSWORD_ENV: &str = "REDOUBT_PASSWORD";
/// Environment variable holding the other snapshot's password (`sync-file`).
pub(crate) const OTHER_PASSWORD_ENV: &str = "REDOUBT_OTHER_PASSWORD";

/// The password from `env`, or else a prompt on the terminal.
pub(crate) fn password(env: &str, prompt: &str) -> Result<Password> {
    if let Some(value) = std::env::var_os(env) {
        return Ok(Password::new(value.into_encoded_bytes()));
    }
    let typed = Zeroizing::new(
        rpassword::prompt_password(prompt)
            .with_context(|| format!("no password: set {env} or run in a terminal"))?,
    );
    Ok(Password::new(typed.as_bytes().to_vec()))
}

/// A new password: from `REDOUBT_PASSWORD`, or typed twice at a prompt. Never empty.
pub(crate) fn new_password() -> Result<Password> {
    if let Some(value) = std::env::var_os(PASSWORD_ENV) {
        if value.is_empty() {
            bail!("{PASSWORD_ENV} is empty; choose a password");
        }
        warn_if_weak(value.as_encoded_bytes(), false)?;
        return Ok(Password::new(value.into_encoded_bytes()));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("New vault password: ")
            .with_context(|| format!("no password: set {PASSWORD_ENV} or run in a terminal"))?,
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
    warn_if_weak(first.as_bytes(), std::io::stdin().is_terminal())?;
    Ok(Password::new(first.as_bytes().to_vec()))
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
