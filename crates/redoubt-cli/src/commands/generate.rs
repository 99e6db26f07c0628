//! `redoubt generate`: random passwords and passphrases, printed or stored.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_vault::SecretValue;
use zeroize::Zeroizing;

use crate::{
    cli::GenerateArgs,
    commands::records::{confirm_overwrite, exists, location, store},
    paths::{default_client, parse_path},
    store::open,
};

/// The bundled word list (see the file's header for where it comes from and its license).
const WORDS: &str = include_str!("../words.txt");

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// The words of [`WORDS`], comments left out.
fn words() -> Vec<&'static str> {
    WORDS
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A uniform random index below `n` (rejection sampling, no modulo bias).
fn below(n: usize) -> Result<usize> {
    let n = u64::try_from(n).context("range too large")?;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let x = u64::from_le_bytes(bytes);
        if x < zone {
            return Ok(usize::try_from(x % n)?);
        }
    }
}

/// The secret the arguments ask for, and its entropy in bits.
fn make(args: &GenerateArgs) -> Result<(Zeroizing<String>, f64)> {
    let mut out = Zeroizing::new(String::new());
    if let Some(n) = args.words {
        if n == 0 || n > 64 {
            bail!("--words takes 1 to 64");
        }
        let list = words();
        for i in 0..n {
            if i > 0 {
                out.push_str(&args.separator);
            }
            out.push_str(list[below(list.len())?]);
        }
        return Ok((out, n as f64 * (list.len() as f64).log2()));
    }
    if args.length == 0 || args.length > 1024 {
        bail!("--length takes 1 to 1024");
    }
    let mut alphabet = String::new();
    for (skip, class) in [
        (args.no_lower, LOWER),
        (args.no_upper, UPPER),
        (args.no_digits, DIGITS),
        (args.no_symbols, SYMBOLS),
    ] {
        if !skip {
            alphabet.push_str(class);
        }
    }
    let alphabet: Vec<char> = alphabet.chars().collect();
    if alphabet.is_empty() {
        bail!("every character class is left out; keep at least one");
    }
    for _ in 0..args.length {
        out.push(alphabet[below(alphabet.len())?]);
    }
    Ok((out, args.length as f64 * (alphabet.len() as f64).log2()))
}

pub(crate) fn run(path: &Path, args: &GenerateArgs) -> Result<()> {
    let (secret, bits) = make(args)?;
    let Some(at) = &args.store else {
        eprintln!("entropy: {bits:.0} bits");
        outln!("{}", secret.as_str());
        return Ok(());
    };
    let target =
        parse_path(at, default_client().as_deref()).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
    let loc = location(&target)?;
    let mut vault = open(path)?;
    if !args.force && exists(&vault, &target, &loc)? {
        confirm_overwrite(&target)?;
    }
    store(
        &mut vault,
        &target,
        &loc,
        SecretValue::new(secret.as_bytes().to_vec()),
    )?;
    eprintln!("stored a new secret at {target} (entropy: {bits:.0} bits)");
    if args.print {
        outln!("{}", secret.as_str());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_word_list_has_4096_distinct_short_words() {
        let list = words();
        assert_eq!(list.len(), 4096);
        assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), 4096);
        assert!(
            list.iter()
                .all(|w| w.len() <= 8 && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn below_stays_in_range() {
        for n in [1, 2, 3, 26, 94] {
            assert!((0..200).all(|_| below(n).is_ok_and(|x| x < n)));
        }
    }
}
