//! `get --clip`: the secret on the clipboard for a while, then gone.
//!
//! On X11 and Wayland a clipboard's contents live in the process that set them, so a helper
//! process (`redoubt __clip`, given the secret on stdin, never on argv) holds them until the
//! timeout and then clears them, if they are still ours; `get` itself returns at once.

use std::{
    io::{BufRead, Read, Write},
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

use crate::{cli::ClipArgs, secrets::without_passwords};

/// Where no clipboard can be opened (a headless machine, no display), what to say.
fn no_clipboard(e: &arboard::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "no clipboard on this machine ({e}); nothing was copied: run `redoubt get` without \
         --clip to print the secret"
    )
}

/// Copies `value` to the clipboard through the helper, which clears it after `timeout_s`.
pub(crate) fn copy(value: &[u8], timeout_s: u64) -> Result<()> {
    let Ok(text) = std::str::from_utf8(value) else {
        bail!("this secret is not text, so it cannot go on the clipboard; print it without --clip");
    };
    // Fail here, in the command the user ran, when there is no clipboard at all.
    drop(arboard::Clipboard::new().map_err(|e| no_clipboard(&e))?);
    // The helper gets no password (it needs none), its own process group (so a terminal's
    // hangup does not kill it before it clears), and the secret on stdin.
    let mut command = Command::new(std::env::current_exe().context("finding the redoubt binary")?);
    let mut child = without_passwords(&mut command)
        .args(["__clip", "--timeout", &timeout_s.to_string()])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the clipboard helper")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("handing the secret to the clipboard helper: {e}"))?;
    }
    // It says `ok` once the clipboard holds the secret; anything else means nothing was copied.
    let mut said = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = std::io::BufReader::new(stdout).read_line(&mut said);
    }
    if said.trim() != "ok" {
        let _ = child.kill();
        bail!("the clipboard helper could not set the clipboard; nothing was copied");
    }
    eprintln!("copied to the clipboard; cleared in {timeout_s} s");
    Ok(())
}

/// The helper: sets the clipboard to stdin, keeps it for `--timeout` seconds, then clears it
/// unless something else was copied meanwhile.
pub(crate) fn hold(args: &ClipArgs) -> Result<()> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .take(redoubt_vault::MAX_VALUE_LEN as u64)
        .read_to_string(&mut text)
        .context("reading the secret")?;
    let mut clipboard = arboard::Clipboard::new().map_err(|e| no_clipboard(&e))?;
    // Marked for clipboard managers to keep out of their history, as password managers do.
    let set = clipboard.set();
    #[cfg(all(unix, not(target_os = "macos")))]
    let set = arboard::SetExtLinux::exclude_from_history(set);
    #[cfg(target_os = "macos")]
    let set = arboard::SetExtApple::exclude_from_history(set);
    set.text(text.as_str()).map_err(|e| no_clipboard(&e))?;
    // Tell `get` the secret is on the clipboard (its stdout is a pipe to it).
    println!("ok");
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(args.timeout));
    let still_ours = clipboard
        .get_text()
        .map(Zeroizing::new)
        .is_ok_and(|now| *now == *text);
    if still_ours {
        let _ = clipboard.clear();
    }
    Ok(())
}
