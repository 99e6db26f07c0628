//! Round trips and encoded lengths of the messages version 2 added, which version 3 sessions
//! carry unchanged apart from a bound opening's version byte.

use proptest::prelude::*;
use redoubt_vault::sketch::{FINE_PROBE_COUNT, MAX_SYMBOLS, Symbol};

use super::mode;
use crate::{
    Error,
    message::{
        FallbackReason, Mode, OpenSketch, Request, Response, SYMBOL_LEN, SessionId, Summary,
        VERSION_2, VERSION_3,
    },
};
/// Bytes of `v` as an unsigned LEB128 varint.
fn varint_len(v: u64) -> usize {
    (1..10).find(|&n| v >> (7 * n) == 0).unwrap_or(10)
}

/// Bytes of an encoded [`Mode`]: kind, then length-prefixed paths under u32 counts.
fn mode_len(mode: &Mode) -> usize {
    match mode {
        Mode::Full { client } => 1 + 2 + client.len(),
        Mode::Partial {
            client,
            vaults,
            records,
        } => {
            1 + 2
                + client.len()
                + 4
                + vaults.iter().map(|v| 2 + v.len()).sum::<usize>()
                + 4
                + records
                    .iter()
                    .map(|l| 4 + l.vault_path().len() + l.record_path().len())
                    .sum::<usize>()
        }
        Mode::Import { clients } => 1 + 4 + clients.iter().map(|c| 2 + c.len()).sum::<usize>(),
    }
}

fn summary() -> impl Strategy<Value = Summary> {
    (any::<u64>(), any::<u64>(), any::<u32>(), any::<[u8; 15]>()).prop_map(
        |(len, key, check, probes)| Summary {
            len,
            first: Symbol {
                key,
                check,
                count: 0,
            },
            probes,
        },
    )
}

fn summary_len(s: &Summary) -> usize {
    varint_len(s.len) + 8 + 4 + s.probes.len()
}

/// Decodes `m`'s frame back to `m`, checks its version byte and length, and returns the frame.
fn round_trip_request(m: &Request, version: u8, len: usize) -> Result<Vec<u8>, TestCaseError> {
    let frame = m.encode().unwrap();
    prop_assert_eq!(frame[0], version);
    prop_assert_eq!(frame.len(), len);
    prop_assert_eq!(&Request::decode(&frame).unwrap(), m);
    Ok(frame)
}

/// As [`round_trip_request`], for a response.
fn round_trip_response(m: &Response, version: u8, len: usize) -> Result<(), TestCaseError> {
    let frame = m.encode().unwrap();
    prop_assert_eq!(frame[0], version);
    prop_assert_eq!(frame.len(), len);
    prop_assert_eq!(&Response::decode(&frame).unwrap(), m);
    Ok(())
}

/// The version 2 caps hold on encode as on decode.
#[test]
fn version_2_caps_are_checked_on_encode() {
    let session = SessionId([0; 16]);
    let symbol = Symbol {
        key: 1,
        check: 2,
        count: 3,
    };
    let past_cap = Request::Symbols {
        session,
        from: MAX_SYMBOLS as u32,
        symbols: vec![symbol],
    };
    assert!(matches!(past_cap.encode(), Err(Error::Malformed(_))));
    let at_cap = Request::Symbols {
        session,
        from: MAX_SYMBOLS as u32 - 1,
        symbols: vec![symbol],
    };
    assert_eq!(Request::decode(&at_cap.encode().unwrap()).unwrap(), at_cap);
    let more = Response::More {
        session,
        want: 0,
        probes: vec![0; FINE_PROBE_COUNT + 1],
    };
    assert!(matches!(more.encode(), Err(Error::Malformed(_))));
    let settled = Response::Settled {
        digest: [0; 32],
        lacking: vec![0; MAX_SYMBOLS + 1],
    };
    assert!(matches!(settled.encode(), Err(Error::Malformed(_))));
}

proptest! {
    /// An unbound and a bound sketch opening differ in the version byte only.
    #[test]
    fn open_sketch_round_trips_bound_and_unbound(
        mode in mode(),
        invite in proptest::option::of(any::<[u8; 16]>()),
        key in any::<[u8; 32]>(),
        summary in proptest::option::of(summary()),
    ) {
        // Version, tag, mode, invite flag (and invite), key, summary flag (and summary).
        let len = 2
            + mode_len(&mode)
            + 1
            + invite.map_or(0, |i| i.len())
            + 32
            + 1
            + summary.as_ref().map_or(0, summary_len);
        let open = OpenSketch { mode, invite, key, summary, bound: false, lineage: false };
        let unbound = round_trip_request(&Request::OpenSketch(open.clone()), VERSION_2, len)?;
        let bound = OpenSketch { bound: true, ..open };
        let bound = round_trip_request(&Request::OpenSketch(bound), VERSION_3, len)?;
        prop_assert_eq!(&unbound[1..], &bound[1..]);
    }

    #[test]
    fn sketch_round_trips(session in any::<[u8; 16]>(), summary in summary()) {
        let m = Request::Sketch { session: SessionId(session), summary };
        round_trip_request(&m, VERSION_2, 2 + 16 + summary_len(&summary))?;
    }

    /// Counts travel modulo 2^16, so these stay within 0..2^16; `from` reaches the cap exactly.
    #[test]
    fn symbols_round_trip(
        session in any::<[u8; 16]>(),
        from in any::<u32>(),
        symbols in proptest::collection::vec(
            (any::<u64>(), any::<u32>(), any::<u16>()),
            0..40,
        ),
    ) {
        let symbols: Vec<Symbol> = symbols
            .into_iter()
            .map(|(key, check, count)| Symbol { key, check, count: i32::from(count) })
            .collect();
        let from = from % (MAX_SYMBOLS - symbols.len() + 1) as u32;
        let len = 2 + 16 + varint_len(u64::from(from)) + varint_len(symbols.len() as u64)
            + symbols.len() * SYMBOL_LEN;
        let m = Request::Symbols { session: SessionId(session), from, symbols };
        round_trip_request(&m, VERSION_2, len)?;
    }

    #[test]
    fn more_round_trips(
        session in any::<[u8; 16]>(),
        want in 0..=MAX_SYMBOLS as u32,
        probes in proptest::collection::vec(any::<u8>(), 0..=FINE_PROBE_COUNT),
    ) {
        let len = 2 + 16 + varint_len(u64::from(want)) + varint_len(probes.len() as u64)
            + probes.len();
        let m = Response::More { session: SessionId(session), want, probes };
        round_trip_response(&m, VERSION_2, len)?;
    }

    #[test]
    fn settled_round_trips(
        digest in any::<[u8; 32]>(),
        lacking in proptest::collection::vec(any::<u64>(), 0..300),
    ) {
        let len = 2 + 32 + varint_len(lacking.len() as u64) + 8 * lacking.len();
        round_trip_response(&Response::Settled { digest, lacking }, VERSION_2, len)?;
    }

    #[test]
    fn decoded_round_trips(
        session in any::<[u8; 16]>(),
        key in any::<[u8; 32]>(),
        records in any::<u64>(),
        bytes in any::<u64>(),
        digest in any::<[u8; 32]>(),
        lacking in proptest::collection::vec(any::<u64>(), 0..40),
        sealed in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let len = 2 + 16 + 32 + varint_len(records) + varint_len(bytes) + 32
            + varint_len(lacking.len() as u64) + 8 * lacking.len() + sealed.len();
        let m = Response::Decoded {
            session: SessionId(session),
            key,
            records,
            bytes,
            digest,
            lacking,
            sealed,
        };
        round_trip_response(&m, VERSION_2, len)?;
    }

    /// Every reason byte, known or not, comes back as it went.
    #[test]
    fn fallback_round_trips(code in any::<u8>()) {
        let m = Response::Fallback { reason: FallbackReason::from_byte(code) };
        round_trip_response(&m, VERSION_2, 3)?;
        prop_assert_eq!(m.encode().unwrap()[2], code);
    }
}
