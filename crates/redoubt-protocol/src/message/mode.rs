//! What a request selects ([`Mode`]), the shapes a version 1 requester sends ([`ShapeGroup`])
//! and the invitation field of an opening, each encoder directly above its decoder.

use redoubt_vault::{ClientId, Location, RecordId, Selection, Shape, VaultId};

use crate::{
    Error,
    codec::{Reader, Writer},
    limits::{MAX_SELECTION_ITEMS, MAX_SHAPES_PER_FRAME, SHAPE_LEN},
};

/// What a requester asks to pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every record of one client.
    Full {
        /// The client's path.
        client: Vec<u8>,
    },
    /// Selected vaults and records of one client.
    Partial {
        /// The client's path.
        client: Vec<u8>,
        /// Whole vaults, by path.
        vaults: Vec<Vec<u8>>,
        /// Single records.
        records: Vec<Location>,
    },
    /// Several clients at once: the listed ones, or every client the responder lets us read
    /// when the list is empty.
    Import {
        /// Client paths; empty means "every client I may read".
        clients: Vec<Vec<u8>>,
    },
}

impl Mode {
    /// The records asked for inside each client: the partial selection, or everything.
    pub fn selection(&self) -> Result<Selection, Error> {
        let mut selection = Selection::all();
        if let Self::Partial {
            vaults, records, ..
        } = self
        {
            for v in vaults {
                selection = selection.with_vault(v)?;
            }
            for l in records {
                selection = selection.with_record(l);
            }
        }
        Ok(selection)
    }
}

const MODE_FULL: u8 = 0;
const MODE_PARTIAL: u8 = 1;
const MODE_IMPORT: u8 = 2;

fn check_path(p: &[u8]) -> Result<(), Error> {
    if p.is_empty() || p.len() > redoubt_vault::MAX_PATH_LEN {
        return Err(Error::Malformed("path must be 1 to 1024 bytes"));
    }
    Ok(())
}

fn check_items(n: usize) -> Result<(), Error> {
    if n > MAX_SELECTION_ITEMS {
        return Err(Error::Malformed("too many items in a selection"));
    }
    Ok(())
}

pub(super) fn encode_mode(w: &mut Writer, mode: &Mode) -> Result<(), Error> {
    match mode {
        Mode::Full { client } => {
            check_path(client)?;
            w.u8(MODE_FULL);
            w.bytes_u16(client);
        }
        Mode::Partial {
            client,
            vaults,
            records,
        } => {
            check_path(client)?;
            check_items(vaults.len())?;
            check_items(records.len())?;
            w.u8(MODE_PARTIAL);
            w.bytes_u16(client);
            w.count(vaults.len());
            for v in vaults {
                check_path(v)?;
                w.bytes_u16(v);
            }
            w.count(records.len());
            for l in records {
                w.bytes_u16(l.vault_path());
                w.bytes_u16(l.record_path());
            }
        }
        Mode::Import { clients } => {
            check_items(clients.len())?;
            w.u8(MODE_IMPORT);
            w.count(clients.len());
            for c in clients {
                check_path(c)?;
                w.bytes_u16(c);
            }
        }
    }
    Ok(())
}

pub(super) fn decode_mode(r: &mut Reader<'_>) -> Result<Mode, Error> {
    Ok(match r.u8()? {
        MODE_FULL => Mode::Full {
            client: r.path()?.to_vec(),
        },
        MODE_PARTIAL => {
            let client = r.path()?.to_vec();
            let n = r.count(MAX_SELECTION_ITEMS, 3, "too many vault paths")?;
            let mut vaults = Vec::with_capacity(n);
            for _ in 0..n {
                vaults.push(r.path()?.to_vec());
            }
            let n = r.count(MAX_SELECTION_ITEMS, 6, "too many record locations")?;
            let mut records = Vec::with_capacity(n);
            for _ in 0..n {
                let vault = r.path()?.to_vec();
                let record = r.path()?.to_vec();
                records.push(Location::new(vault, record)?);
            }
            Mode::Partial {
                client,
                vaults,
                records,
            }
        }
        MODE_IMPORT => {
            let n = r.count(MAX_SELECTION_ITEMS, 3, "too many clients")?;
            let mut clients = Vec::with_capacity(n);
            for _ in 0..n {
                clients.push(r.path()?.to_vec());
            }
            Mode::Import { clients }
        }
        _ => return Err(Error::Malformed("unknown mode")),
    })
}

/// The shapes of one client, in location order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeGroup {
    /// Whose shapes.
    pub client: ClientId,
    /// The shapes, ordered by (vault id, record id).
    pub shapes: Vec<Shape>,
}

pub(super) fn encode_groups(w: &mut Writer, groups: &[ShapeGroup]) -> Result<(), Error> {
    let total: usize = groups.iter().map(|g| g.shapes.len()).sum();
    if total > MAX_SHAPES_PER_FRAME || groups.len() > MAX_SHAPES_PER_FRAME {
        return Err(Error::Malformed("too many shapes in one frame"));
    }
    w.buf.reserve(groups.len() * 36 + total * SHAPE_LEN + 4);
    w.count(groups.len());
    for g in groups {
        w.raw(g.client.as_bytes());
        w.count(g.shapes.len());
        for s in &g.shapes {
            w.raw(s.vault.as_bytes());
            w.raw(s.record.as_bytes());
            w.u32(s.size);
            w.raw(&s.hash);
        }
    }
    Ok(())
}

pub(super) fn decode_groups(r: &mut Reader<'_>) -> Result<Vec<ShapeGroup>, Error> {
    let n = r.count(MAX_SHAPES_PER_FRAME, 36, "too many shape groups")?;
    let mut groups = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let client = ClientId::from_bytes(r.array()?);
        let m = r.count(MAX_SHAPES_PER_FRAME, SHAPE_LEN, "too many shapes")?;
        total += m;
        if total > MAX_SHAPES_PER_FRAME {
            return Err(Error::Malformed("too many shapes in one frame"));
        }
        let mut shapes = Vec::with_capacity(m);
        for _ in 0..m {
            shapes.push(Shape {
                vault: VaultId::from_bytes(r.array()?),
                record: RecordId::from_bytes(r.array()?),
                size: r.u32()?,
                hash: r.array()?,
            });
        }
        groups.push(ShapeGroup { client, shapes });
    }
    Ok(groups)
}

pub(super) fn encode_invite(w: &mut Writer, invite: Option<[u8; 16]>) {
    match invite {
        Some(invite) => {
            w.u8(1);
            w.raw(&invite);
        }
        None => w.u8(0),
    }
}

pub(super) fn decode_invite(r: &mut Reader<'_>) -> Result<Option<[u8; 16]>, Error> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.array()?)),
        _ => Err(Error::Malformed("invite flag is neither 0 nor 1")),
    }
}
