//! What commands print: merge reports and record listings, as text or JSON.

use redoubt_control::ListItem;
use redoubt_vault::{Conflict, MergeReport, Record, Stamp, Version, hex, history};
use serde::{Deserialize, Serialize};

/// A merge report as printed with `--json`.
#[derive(Serialize)]
pub(crate) struct ReportJson {
    added: u64,
    updated: u64,
    deleted: u64,
    unchanged: u64,
    conflicts_resolved: u64,
    /// Versions refused because their stamp lay too far ahead of this node's clock.
    refused_ahead: u64,
    /// Records whose current version stayed but whose history gained versions.
    history_merged: u64,
    /// The concurrent edits resolved (the first 64; `conflicts_resolved` counts them all).
    conflicts: Vec<ConflictJson>,
}

/// One resolved conflict, by location and version ids; never a value.
#[derive(Serialize)]
pub(crate) struct ConflictJson {
    client: String,
    vault: String,
    record: String,
    kept: String,
    lost: String,
}

impl From<&Conflict> for ConflictJson {
    fn from(c: &Conflict) -> Self {
        Self {
            client: lossy(&c.client),
            vault: lossy(c.location.vault_path()),
            record: lossy(c.location.record_path()),
            kept: hex(&c.kept[..8]),
            lost: hex(&c.lost[..8]),
        }
    }
}

/// `conflict CLIENT/VAULT/RECORD kept VERSION lost VERSION`, one per named conflict (the
/// names escaped as in `list`, the versions as `history` shows them).
pub(crate) fn conflict_lines(report: &MergeReport) -> Vec<String> {
    report
        .conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict {}/{}/{} kept {} lost {}",
                escape(&c.client),
                escape(c.location.vault_path()),
                escape(c.location.record_path()),
                hex(&c.kept[..8]),
                hex(&c.lost[..8])
            )
        })
        .collect()
}

impl From<&MergeReport> for ReportJson {
    fn from(r: &MergeReport) -> Self {
        Self {
            added: r.added,
            updated: r.updated,
            deleted: r.deleted,
            unchanged: r.unchanged,
            conflicts_resolved: r.conflicts_resolved,
            refused_ahead: r.refused_ahead,
            history_merged: r.history_merged,
            conflicts: r.conflicts.iter().map(ConflictJson::from).collect(),
        }
    }
}

/// A merge report's counts as the control protocol carries them.
pub(crate) fn counts(r: &MergeReport) -> redoubt_control::message::Counts {
    [
        r.added,
        r.updated,
        r.deleted,
        r.unchanged,
        r.conflicts_resolved,
        r.refused_ahead,
    ]
}

/// The merge report of [`counts`].
pub(crate) fn from_counts(c: redoubt_control::message::Counts) -> MergeReport {
    let mut r = MergeReport::default();
    [
        r.added,
        r.updated,
        r.deleted,
        r.unchanged,
        r.conflicts_resolved,
        r.refused_ahead,
    ] = c;
    r
}

/// Prints a merge report on stdout.
pub(crate) fn print_report(report: &MergeReport, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string(&ReportJson::from(report))?);
    } else {
        outln!("{report}");
        for line in conflict_lines(report) {
            outln!("{line}");
        }
    }
    Ok(())
}

/// One version of a record as `history` prints it; never its value. (It also crosses the
/// agent's socket as this JSON, so it deserializes too.)
#[derive(Serialize, Deserialize)]
pub(crate) struct VersionEntry {
    version: String,
    stamp: StampJson,
    writer: String,
    size: u32,
    /// `current`, or why it was replaced: `overwritten`, `deleted`, `lost-conflict`.
    status: String,
    /// The version it replaced, if any.
    parent: Option<String>,
}

impl VersionEntry {
    /// The record's current version, then its history, newest first.
    pub(crate) fn all(record: &Record) -> Vec<Self> {
        let current = Self::new(record.current(), "current");
        std::iter::once(current)
            .chain(
                record
                    .history()
                    .iter()
                    .map(|v| Self::new(v, history::why_replaced(record, v).as_str())),
            )
            .collect()
    }

    fn new(v: &Version, status: &str) -> Self {
        let stamp = v.stamp();
        Self {
            version: hex(&v.hash()[..8]),
            stamp: StampJson {
                wall_ms: stamp.wall_ms,
                counter: stamp.counter,
                node: stamp.node.to_string(),
            },
            writer: stamp.node.to_string(),
            size: v.size(),
            status: status.to_owned(),
            parent: v.parent().map(|p| hex(&p[..8])),
        }
    }

    /// `version<TAB>stamp<TAB>writer<TAB>size<TAB>status`.
    pub(crate) fn line(&self) -> String {
        format!(
            "{}\t{}#{}@{}\t{}\t{}\t{}",
            self.version,
            utc(self.stamp.wall_ms),
            self.stamp.counter,
            &self.stamp.node[..8],
            self.writer,
            self.size,
            self.status
        )
    }
}

/// One listed record; never its value.
#[derive(Serialize)]
pub(crate) struct ListEntry {
    client: String,
    vault: String,
    record: String,
    size: u32,
    stamp: StampJson,
    /// The three names as stored, for sorting and escaping.
    #[serde(skip)]
    raw: [Vec<u8>; 3],
}

#[derive(Serialize, Deserialize)]
struct StampJson {
    wall_ms: u64,
    counter: u32,
    node: String,
}

impl ListEntry {
    pub(crate) fn new(client: &[u8], record: &Record) -> Self {
        Self::from(list_item(client, record))
    }

    /// The sort key: client, vault, record, as bytes.
    pub(crate) fn key(&self) -> &[Vec<u8>; 3] {
        &self.raw
    }

    /// The client, vault and record names as stored.
    pub(crate) fn names(&self) -> [&[u8]; 3] {
        [&self.raw[0], &self.raw[1], &self.raw[2]]
    }

    /// `client<TAB>vault<TAB>record<TAB>size<TAB>stamp`, the names escaped (see [`escape`]) so
    /// that the line holds exactly five fields.
    pub(crate) fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}#{}@{}",
            escape(&self.raw[0]),
            escape(&self.raw[1]),
            escape(&self.raw[2]),
            self.size,
            utc(self.stamp.wall_ms),
            self.stamp.counter,
            &self.stamp.node[..8]
        )
    }
}

/// What `list` shows of a record, as the agent sends it over the control socket; never its
/// value.
pub(crate) fn list_item(client: &[u8], record: &Record) -> ListItem {
    let stamp = record.stamp();
    ListItem {
        names: [
            client.to_vec(),
            record.location().vault_path().to_vec(),
            record.location().record_path().to_vec(),
        ],
        size: record.size(),
        wall_ms: stamp.wall_ms,
        counter: stamp.counter,
        node: stamp.node.to_string(),
    }
}

impl From<ListItem> for ListEntry {
    fn from(item: ListItem) -> Self {
        let [client, vault, record] = item.names;
        Self {
            client: lossy(&client),
            vault: lossy(&vault),
            record: lossy(&record),
            size: item.size,
            stamp: StampJson {
                wall_ms: item.wall_ms,
                counter: item.counter,
                node: item.node,
            },
            raw: [client, vault, record],
        }
    }
}

/// A stamp for people: UTC time, counter and the writer's short id.
pub(crate) fn stamp_text(stamp: &Stamp) -> String {
    format!(
        "{}#{}@{}",
        utc(stamp.wall_ms),
        stamp.counter,
        &hex(stamp.node.as_bytes())[..8]
    )
}

/// A name for one field of a line: `\\`, `\t`, `\n`, `\r` for backslash, tab, newline and
/// carriage return, `\xNN` for any other control byte and for bytes that are not UTF-8;
/// everything else as it is.
pub(crate) fn escape(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_one_field_per_name() {
        assert_eq!(escape(b"plain name/x"), "plain name/x");
        assert_eq!(escape(b"a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
        assert_eq!(escape(b"\x01\xff\x7f"), "\\x01\\xff\\x7f");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_795_318_496_789), "2026-11-22T03:34:56.789Z");
    }
}
