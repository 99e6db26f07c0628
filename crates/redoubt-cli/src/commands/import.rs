//! `redoubt import`: secrets from the managers people leave (`pass`, Bitwarden, KeePassXC).
//!
//! Every source becomes entries with a path of names (folders or groups, then the item's
//! name) and a value. The first name is the vault and the rest, joined by `/`, the record; an
//! item outside any folder goes into vault `root`. Around an item's main secret (its password,
//! or a note's text) go its other fields as records below it: `ITEM/username`, `ITEM/uri` (or
//! `ITEM/url`), `ITEM/totp`, `ITEM/notes`, `ITEM/field/NAME`. The README's "Importing" section
//! says the same for users.

use std::{
    collections::BTreeSet,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use redoubt_vault::{Location, MAX_VALUE_LEN, SecretValue, SyncConfig};
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::{
    cli::{ImportArgs, ImportSource},
    secrets::without_passwords,
    store::open,
};

/// The vault of items that sit in no folder or group.
const ROOT_VAULT: &str = "root";
/// The largest export file read.
const MAX_EXPORT_LEN: u64 = 256 * 1024 * 1024;

/// One secret to import.
struct Entry {
    vault: String,
    record: String,
    value: Zeroizing<Vec<u8>>,
}

/// Entries under one item path (folders, then the item's name).
struct Item {
    vault: String,
    record: String,
}

impl Item {
    fn new(folders: &[&str], name: &str) -> Self {
        let mut names: Vec<&str> = folders
            .iter()
            .flat_map(|f| f.split('/'))
            .filter(|n| !n.is_empty())
            .collect();
        let name = if name.is_empty() { "untitled" } else { name };
        if names.is_empty() {
            return Self {
                vault: ROOT_VAULT.into(),
                record: name.into(),
            };
        }
        let vault = names.remove(0).to_string();
        names.push(name);
        Self {
            vault,
            record: names.join("/"),
        }
    }

    /// This item, renamed `NAME (2)`, `NAME (3)`... if an earlier item of the import took its
    /// path, so that two items of one name in one folder both arrive, fields and all.
    fn unique(mut self, taken: &mut BTreeSet<(String, String)>) -> Self {
        let base = self.record.clone();
        let mut n = 1;
        while !taken.insert((self.vault.clone(), self.record.clone())) {
            n += 1;
            self.record = format!("{base} ({n})");
        }
        self
    }

    /// The item's main secret (at the item's own path) or a field below it; empty values are
    /// left out.
    fn push(&self, out: &mut Vec<Entry>, field: Option<&str>, value: Option<&str>) {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        let record = match field {
            Some(f) => format!("{}/{f}", self.record),
            None => self.record.clone(),
        };
        out.push(Entry {
            vault: self.vault.clone(),
            record,
            value: Zeroizing::new(value.as_bytes().to_vec()),
        });
    }
}

pub(crate) fn run(path: &Path, args: &ImportArgs) -> Result<()> {
    let (default_client, entries) = match args.from {
        ImportSource::Pass => ("pass", pass(&pass_dir(args.path.as_deref())?)?),
        ImportSource::Bitwarden => ("bitwarden", bitwarden(&read_export(args)?)?),
        ImportSource::Keepassxc => ("keepassxc", keepassxc(&read_export(args)?)?),
    };
    let client = args.client.as_deref().unwrap_or(default_client);
    let mut vault = open(path)?;
    // Written into a copy first, stamped by this node's own clock, then committed at once: an
    // import lands whole or not at all (and costs one commit, not one per secret).
    let mut staged = vault.store.load_instance()?;
    let (mut added, mut replaced, mut kept, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut seen = BTreeSet::new();
    for mut e in entries {
        // A field's path that another item's name also takes: the later one gets a suffix.
        let base = e.record.clone();
        let mut n = 1;
        while !seen.insert((e.vault.clone(), e.record.clone())) {
            n += 1;
            e.record = format!("{base} ({n})");
        }
        let at = format!("{client}/{}/{}", e.vault, e.record);
        let loc = match Location::new(e.vault.as_bytes(), e.record.as_bytes()) {
            Ok(l) => l,
            Err(err) => {
                eprintln!("note: skipped {at}: {err}");
                skipped += 1;
                continue;
            }
        };
        if e.value.len() > MAX_VALUE_LEN {
            eprintln!("note: skipped {at}: larger than {MAX_VALUE_LEN} bytes");
            skipped += 1;
            continue;
        }
        let exists = staged.read(client.as_bytes(), &loc).is_some();
        if exists && !args.force {
            kept += 1;
            continue;
        }
        staged.write(client.as_bytes(), &loc, SecretValue::new(e.value.to_vec()))?;
        if exists {
            replaced += 1;
        } else {
            added += 1;
        }
    }
    if added + replaced > 0 {
        vault
            .store
            .sync_from(&staged, &SyncConfig::full())
            .context("committing the import")?;
    }
    outln!(
        "imported into client {client}: added {added}, replaced {replaced}, kept {kept} \
         existing, skipped {skipped}"
    );
    if kept > 0 {
        eprintln!("note: {kept} secret(s) already existed and were kept; --force replaces them");
    }
    Ok(())
}

/// The export file, whole (it holds the secrets in plain text: the buffer is wiped on drop).
fn read_export(args: &ImportArgs) -> Result<Zeroizing<String>> {
    let Some(path) = &args.path else {
        let from = match args.from {
            ImportSource::Pass => "pass",
            ImportSource::Bitwarden => "bitwarden",
            ImportSource::Keepassxc => "keepassxc",
        };
        bail!("give the export file: `redoubt import {from} FILE`");
    };
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_EXPORT_LEN).read_to_string(&mut text))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

fn pass_dir(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("PASSWORD_STORE_DIR") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").context("no HOME; give the store directory")?;
    Ok(PathBuf::from(home).join(".password-store"))
}

/// Every `*.gpg` file below `dir` (dot entries such as `.git` left out), decrypted by `gpg`;
/// its whole text is the secret, as `pass show` prints it.
fn pass(dir: &Path) -> Result<Vec<Entry>> {
    if !dir.is_dir() {
        bail!("no pass store at {}", dir.display());
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(dir).unwrap_or(&file).with_extension("");
        let rel = rel.to_string_lossy().into_owned();
        let mut names: Vec<&str> = rel.split('/').collect();
        let name = names.pop().unwrap_or_default();
        let item = Item::new(&names, name);
        let value = decrypt(&file)?;
        out.push(Entry {
            vault: item.vault,
            record: item.record,
            value,
        });
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "gpg") {
            out.push(path);
        }
    }
    Ok(())
}

/// `gpg --decrypt FILE`, its output read through a pipe (never an argument or a file).
fn decrypt(file: &Path) -> Result<Zeroizing<Vec<u8>>> {
    // gpg needs no password of ours (its agent asks for its own).
    let mut command = Command::new("gpg");
    let mut child = without_passwords(&mut command)
        .args([
            "--decrypt",
            "--quiet",
            "--yes",
            "--batch",
            "--use-agent",
            "--",
        ])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running gpg (is GnuPG installed?)")?;
    let mut value = Zeroizing::new(Vec::new());
    if let Some(mut out) = child.stdout.take() {
        out.by_ref()
            .take(MAX_VALUE_LEN as u64 + 1)
            .read_to_end(&mut value)
            .context("reading gpg's output")?;
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait()?;
    if !status.success() {
        let why = err.lines().last().unwrap_or("no message").trim();
        bail!("gpg could not decrypt {}: {why}", file.display());
    }
    Ok(value)
}

#[derive(Deserialize)]
struct BwExport {
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    folders: Option<Vec<BwFolder>>,
    #[serde(default)]
    items: Option<Vec<BwItem>>,
}

#[derive(Deserialize)]
struct BwFolder {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct BwItem {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: String,
    #[serde(rename = "folderId", default)]
    folder_id: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    login: Option<BwLogin>,
    #[serde(default)]
    fields: Option<Vec<BwField>>,
}

#[derive(Deserialize)]
struct BwLogin {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    totp: Option<String>,
    #[serde(default)]
    uris: Option<Vec<BwUri>>,
}

#[derive(Deserialize)]
struct BwUri {
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize)]
struct BwField {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

// The parsed export holds secrets in plain strings: wipe them when they go.
impl Drop for BwItem {
    fn drop(&mut self) {
        self.notes.zeroize();
    }
}
impl Drop for BwLogin {
    fn drop(&mut self) {
        self.password.zeroize();
        self.totp.zeroize();
    }
}
impl Drop for BwField {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// Bitwarden's unencrypted JSON export (`bw export --format json`, or the web vault's
/// "File format: .json"). Logins give the password at the item's path; secure notes their
/// text; cards and identities only their notes and custom fields.
fn bitwarden(text: &str) -> Result<Vec<Entry>> {
    let export: BwExport = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "not a Bitwarden JSON export (line {}: {})",
            e.line(),
            e.classify_name()
        )
    })?;
    if export.encrypted {
        bail!(
            "this Bitwarden export is encrypted; export again as unencrypted JSON (and delete \
             the file once imported)"
        );
    }
    let folders = export.folders.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    let mut taken = BTreeSet::new();
    let mut partial = 0;
    for item in export.items.as_deref().unwrap_or_default() {
        let folder = item
            .folder_id
            .as_ref()
            .and_then(|id| folders.iter().find(|f| &f.id == id))
            .map(|f| f.name.as_str());
        let at = Item::new(folder.as_slice(), &item.name).unique(&mut taken);
        match item.kind {
            1 => {
                if let Some(login) = &item.login {
                    at.push(&mut out, None, login.password.as_deref());
                    at.push(&mut out, Some("username"), login.username.as_deref());
                    let uri = login
                        .uris
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .find_map(|u| u.uri.as_deref());
                    at.push(&mut out, Some("uri"), uri);
                    at.push(&mut out, Some("totp"), login.totp.as_deref());
                }
                at.push(&mut out, Some("notes"), item.notes.as_deref());
            }
            2 => at.push(&mut out, None, item.notes.as_deref()),
            _ => {
                partial += 1;
                at.push(&mut out, Some("notes"), item.notes.as_deref());
            }
        }
        for f in item.fields.as_deref().unwrap_or_default() {
            let name = f
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or("unnamed");
            at.push(&mut out, Some(&format!("field/{name}")), f.value.as_deref());
        }
    }
    if partial > 0 {
        eprintln!(
            "note: {partial} card or identity item(s): only their notes and custom fields were \
             imported"
        );
    }
    Ok(out)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// What kind of problem, without the parser's excerpt (which may quote a secret).
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected structure",
            serde_json::error::Category::Eof => "ends early",
        }
    }
}

/// KeePassXC's CSV export (Database > Export > CSV File): a header row naming the columns
/// (`Group`, `Title`, `Username`, `Password`, `URL`, `Notes`, `TOTP`, ...), the group a path
/// starting with `Root`, which is left out.
fn keepassxc(text: &str) -> Result<Vec<Entry>> {
    let mut rows = parse_csv(text)?.into_iter();
    let Some(header) = rows.next() else {
        bail!("the CSV file is empty");
    };
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(group), Some(title), Some(password)) =
        (column("Group"), column("Title"), column("Password"))
    else {
        bail!("not a KeePassXC CSV export: the first row must name Group, Title and Password");
    };
    let extra = [
        ("username", column("Username")),
        ("url", column("URL")),
        ("totp", column("TOTP")),
        ("notes", column("Notes")),
    ];
    let mut out = Vec::new();
    let mut taken = BTreeSet::new();
    for row in rows {
        if row.iter().all(|f| f.is_empty()) {
            continue;
        }
        let cell = |i: usize| row.get(i).map(|f| f.as_str());
        let groups = cell(group).unwrap_or_default();
        let groups = groups
            .strip_prefix("Root")
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .unwrap_or(groups);
        let at = Item::new(&[groups], cell(title).unwrap_or_default()).unique(&mut taken);
        at.push(&mut out, None, cell(password));
        for (field, i) in extra {
            at.push(&mut out, Some(field), i.and_then(cell));
        }
    }
    Ok(out)
}

/// RFC 4180 CSV: fields separated by commas, quoted with `"` (a quote inside doubled), quoted
/// fields may hold commas and line breaks; rows end with LF or CRLF.
fn parse_csv(text: &str) -> Result<Vec<Zeroizing<Vec<String>>>> {
    let mut rows = Vec::new();
    let mut row = Zeroizing::new(Vec::new());
    let mut field = Zeroizing::new(String::new());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut *field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut *field));
                rows.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    if quoted {
        bail!("the CSV file ends inside a quoted field");
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(std::mem::take(&mut *field));
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_and_line_breaks() {
        let rows = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(*rows[0], ["a", "b,c", "say \"hi\""]);
        assert_eq!(*rows[1], ["two\nlines", "", "x"]);
        assert!(parse_csv("\"open").is_err());
    }

    #[test]
    fn items_map_folders_to_vault_and_record() {
        let i = Item::new(&["Email/Work"], "gmail");
        assert_eq!(
            (i.vault.as_str(), i.record.as_str()),
            ("Email", "Work/gmail")
        );
        let i = Item::new(&[], "github");
        assert_eq!((i.vault.as_str(), i.record.as_str()), ("root", "github"));
        let i = Item::new(&[""], "");
        assert_eq!((i.vault.as_str(), i.record.as_str()), ("root", "untitled"));
    }
}
