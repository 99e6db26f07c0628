//! What the agents must hold in the end, from what the commands reported: per record, the last
//! acknowledged state, and the states of attempts after it whose command failed (one that was
//! cut short by a kill may or may not have been committed). Each record is written through one
//! agent only, its owner, so its writes are ordered by that agent's clock and the last one wins
//! everywhere.

use std::collections::BTreeMap;

/// A record's state: a value (named by the number of the write that stored it) or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Holds the value of write number N.
    Value(u64),
    /// Never written, or deleted.
    Absent,
}

impl State {
    /// For a failure message.
    fn describe(self) -> String {
        match self {
            Self::Value(n) => format!("the value of write #{n}"),
            Self::Absent => "no record".to_string(),
        }
    }
}

/// One record's history as far as the commands tell.
#[derive(Debug)]
struct Record {
    owner: usize,
    acked: State,
    /// Attempts since `acked` whose command failed: each may have been committed.
    unsure: Vec<State>,
}

impl Record {
    fn allowed(&self) -> impl Iterator<Item = State> + '_ {
        std::iter::once(self.acked).chain(self.unsure.iter().copied())
    }
}

/// Every record the part wrote, by record path.
#[derive(Debug, Default)]
pub(crate) struct Model {
    records: BTreeMap<String, Record>,
}

impl Model {
    /// A command through `owner` set `record` to `state` and reported it done.
    pub(crate) fn acked(&mut self, owner: usize, record: &str, state: State) {
        let r = self.entry(owner, record);
        r.acked = state;
        r.unsure.clear();
    }

    /// A command through `owner` tried to set `record` to `state` and failed: it may or may not
    /// have happened.
    pub(crate) fn unsure(&mut self, owner: usize, record: &str, state: State) {
        self.entry(owner, record).unsure.push(state);
    }

    fn entry(&mut self, owner: usize, record: &str) -> &mut Record {
        self.records
            .entry(record.to_string())
            .or_insert_with(|| Record {
                owner,
                acked: State::Absent,
                unsure: Vec::new(),
            })
    }

    /// Whether `record`'s last acknowledged state is a value with no attempt after it (so that
    /// a delete of it must find it).
    pub(crate) fn surely_present(&self, record: &str) -> bool {
        self.records
            .get(record)
            .is_some_and(|r| matches!(r.acked, State::Value(_)) && r.unsure.is_empty())
    }

    /// The records `owner` wrote, in order.
    pub(crate) fn owned_by(&self, owner: usize) -> Vec<&str> {
        self.records
            .iter()
            .filter(|(_, r)| r.owner == owner)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Every record the part wrote.
    pub(crate) fn records(&self) -> impl Iterator<Item = &str> {
        self.records.keys().map(String::as_str)
    }

    /// Checks what an agent holds at `record`: `Ok` if a state the commands allow, or a
    /// message naming the record, what was expected and what was found.
    pub(crate) fn check(&self, record: &str, found: Found) -> Result<(), String> {
        let Some(r) = self.records.get(record) else {
            return Err(format!(
                "{record}: found {}, a record no command wrote",
                found.describe()
            ));
        };
        if r.allowed().any(|s| found.is(s)) {
            return Ok(());
        }
        let mut expected = format!("{} (acknowledged)", r.acked.describe());
        for s in &r.unsure {
            expected.push_str(&format!(" or {} (not acknowledged)", s.describe()));
        }
        let what = match (r.acked, found) {
            (State::Value(_), Found::Absent) if r.unsure.iter().all(|s| *s != State::Absent) => {
                "an acknowledged write was lost"
            }
            (State::Absent, Found::Value(_)) if r.unsure.is_empty() => {
                "an acknowledged delete was undone"
            }
            _ => "another state than the commands allow",
        };
        Err(format!(
            "{record} (written through agent {}): {what}: expected {expected}, found {}",
            r.owner,
            found.describe()
        ))
    }
}

/// What an agent holds at a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// The value of write number N.
    Value(u64),
    /// A value that no write of the part stored (its length).
    Unknown(usize),
    /// No record.
    Absent,
}

impl Found {
    /// What `value` is: the suite's values start with `w` and the write's number, then `:`.
    pub(crate) fn of(value: Option<&[u8]>) -> Self {
        let Some(value) = value else {
            return Self::Absent;
        };
        let number = value
            .strip_prefix(b"w")
            .and_then(|rest| rest.split(|&b| b == b':').next())
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse().ok());
        match number {
            Some(n) => Self::Value(n),
            None => Self::Unknown(value.len()),
        }
    }

    fn is(self, state: State) -> bool {
        match (self, state) {
            (Self::Value(a), State::Value(b)) => a == b,
            (Self::Absent, State::Absent) => true,
            _ => false,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Value(n) => format!("the value of write #{n}"),
            Self::Unknown(len) => format!("a value of {len} bytes that no write stored"),
            Self::Absent => "no record".to_string(),
        }
    }
}

/// The value of write number `n`: `w<n>:` then `pad` bytes that vary the length.
pub(crate) fn value(n: u64, pad: &[u8]) -> Vec<u8> {
    let mut v = format!("w{n}:").into_bytes();
    v.extend_from_slice(pad);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_acknowledged_state_is_expected() {
        let mut m = Model::default();
        m.acked(0, "r", State::Value(1));
        m.acked(0, "r", State::Value(2));
        assert_eq!(m.check("r", Found::Value(2)), Ok(()));
        let lost = m.check("r", Found::Value(1)).unwrap_err();
        assert!(lost.contains("expected the value of write #2"), "{lost}");
        let lost = m.check("r", Found::Absent).unwrap_err();
        assert!(lost.contains("an acknowledged write was lost"), "{lost}");
        m.acked(0, "r", State::Absent);
        let back = m.check("r", Found::Value(2)).unwrap_err();
        assert!(back.contains("an acknowledged delete was undone"), "{back}");
        assert!(!m.surely_present("r"));
    }

    #[test]
    fn an_unacknowledged_attempt_may_or_may_not_have_happened_until_the_next_ack() {
        let mut m = Model::default();
        m.acked(1, "r", State::Value(1));
        m.unsure(1, "r", State::Value(2));
        m.unsure(1, "r", State::Absent);
        for found in [Found::Value(1), Found::Value(2), Found::Absent] {
            assert_eq!(m.check("r", found), Ok(()), "{found:?}");
        }
        assert!(!m.surely_present("r"));
        m.acked(1, "r", State::Value(3));
        assert!(m.surely_present("r"));
        assert!(m.check("r", Found::Value(2)).is_err());
        assert_eq!(m.owned_by(1), ["r"]);
        assert!(m.owned_by(0).is_empty());
    }

    #[test]
    fn unknown_values_and_records_are_refused() {
        let mut m = Model::default();
        m.acked(0, "r", State::Value(7));
        assert_eq!(Found::of(Some(&value(7, b"xyz"))), Found::Value(7));
        assert_eq!(Found::of(Some(b"junk")), Found::Unknown(4));
        assert_eq!(Found::of(None), Found::Absent);
        assert!(m.check("r", Found::Unknown(4)).is_err());
        let stray = m.check("s", Found::Value(7)).unwrap_err();
        assert!(stray.contains("no command wrote"), "{stray}");
    }
}
