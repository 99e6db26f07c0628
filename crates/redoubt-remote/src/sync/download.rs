//! The download side of a sync: a device's head and the segments after the one seen, walked
//! newest first and checked against the chain; the records they hold.

use redoubt_store::journal;
use redoubt_vault::Instance;

use super::Remote;
use super::SyncReport;
use crate::{
    Error,
    crypto::{DeviceId, Kind, chain, segment_hash},
    format::{self, HEAD_OBJECT_LEN, Head, MAX_SEGMENT_OBJECT, Segment, SegmentKind, segment_name},
    state::empty_head,
};
use object_store::ObjectMeta;

/// A fetched segment: its name, content hash and contents.
type Fetched = (String, [u8; 32], Segment);

impl Remote {
    /// Reads `device`'s head and every segment after the one seen, newest first by each
    /// segment's link to the one before, then checks the chain from the seen one to the head.
    ///
    /// A segment found missing makes it read the head once more: if the device compacted in
    /// the meantime (a base now covers the missing segment), the walk starts again from the new
    /// head; otherwise the device is refused with [`Error::SegmentMissing`].
    pub(super) async fn fetch_device(
        &self,
        device: DeviceId,
        meta: &ObjectMeta,
        report: &mut SyncReport,
    ) -> Result<(Head, Vec<Fetched>), Error> {
        let name = meta.location.to_string();
        let mut head = self.read_head(device, &name).await?;
        report.bytes_fetched += HEAD_OBJECT_LEN as u64;
        match self.walk(device, head, report).await {
            Err(missing @ Error::SegmentMissing { .. }) => {
                let again = self.read_head(device, &name).await?;
                report.bytes_fetched += HEAD_OBJECT_LEN as u64;
                if again == head {
                    return Err(missing);
                }
                head = again;
                Ok((head, self.walk(device, head, report).await?))
            }
            other => Ok((head, other?)),
        }
    }

    /// The segments from the one after the last seen of `device` to `head` (or from the
    /// newest format-2 base on that way), checked: names, seals, links and chain. A pack whose
    /// whole run is after the one seen is read instead of its run: the walk goes on below it.
    async fn walk(
        &self,
        device: DeviceId,
        head: Head,
        report: &mut SyncReport,
    ) -> Result<Vec<Fetched>, Error> {
        let seen = self
            .state
            .seen
            .get(&device)
            .map(|(h, _)| *h)
            .unwrap_or_else(empty_head);
        let broken = |reason| Error::ChainBroken {
            device: device.to_string(),
            reason,
        };
        if head.seq < seen.seq {
            return Err(broken("its head went backwards (rolled back)"));
        }
        if head.seq == seen.seq {
            if head.chain != seen.chain {
                return Err(broken("its head was replaced at the same sequence"));
            }
            return Ok(Vec::new());
        }
        let mut segments = Vec::new();
        let mut base_chain = None;
        let mut skipped = Vec::new();
        let (mut seq, mut hash) = (head.seq, head.latest);
        while seq > seen.seq {
            let name = segment_name(&device, seq, &hash);
            let bytes = match self.backend.get_capped(&name, MAX_SEGMENT_OBJECT).await {
                Ok((bytes, _)) => bytes,
                Err(e) if e.is_not_found() => {
                    return Err(Error::SegmentMissing {
                        device: device.to_string(),
                        name,
                    });
                }
                Err(e) => return Err(e),
            };
            report.segments_fetched += 1;
            report.bytes_fetched += bytes.len() as u64;
            let tampered = |reason| Error::Tampered {
                name: name.clone(),
                reason,
            };
            if segment_hash(&bytes) != hash {
                return Err(tampered("its content does not match the hash in its name"));
            }
            let plain = self
                .state
                .key
                .open(Kind::Segment, &device, seq, &bytes)
                .map_err(tampered)?;
            let segment = format::decode_segment(&plain).map_err(|_| tampered("malformed"))?;
            if segment.seq != seq {
                return Err(tampered("it names another sequence number"));
            }
            let this = hash;
            let (kind, before, skip) = (segment.kind, segment.chain_before, segment.skip);
            (seq, hash) = match skip {
                // The whole run is new to us: the pack stands for it.
                Some(skip) if skip.from > seen.seq => {
                    skipped.push(seq);
                    (skip.from - 1, skip.hash)
                }
                _ => (seq - 1, segment.prev),
            };
            segments.push((name, this, segment));
            // A base holds every current record: what came before it is not needed.
            if let (SegmentKind::Base, Some(before)) = (kind, before) {
                base_chain = Some(before);
                break;
            }
        }
        let mut c = match base_chain {
            Some(before) if seq > seen.seq => before,
            Some(before) if before != seen.chain => {
                return Err(broken(
                    "its base's chain does not lead back to the segment seen last",
                ));
            }
            _ => seen.chain,
        };
        if seq == seen.seq && hash != seen.latest {
            return Err(broken(
                "its chain does not lead back to the segment seen last",
            ));
        }
        segments.reverse();
        for (_, h, s) in &segments {
            if let (Some(skip), Some(before)) = (s.skip, s.chain_before) {
                if skipped.contains(&s.seq) {
                    if c != skip.chain {
                        return Err(broken(
                            "a pack's run does not start where the chain below it ends",
                        ));
                    }
                } else if c != before {
                    return Err(broken(
                        "a pack's chain disagrees with the segments before it",
                    ));
                }
                c = before;
            }
            c = chain(&c, s.seq, h);
        }
        if c != head.chain {
            return Err(broken("its chain hash disagrees with its head"));
        }
        Ok(segments)
    }

    /// The record versions `segments` carry, in order (later versions of a location replace
    /// earlier ones, as the writer's journal did), of chosen clients; and how many were of
    /// other clients (refused).
    #[allow(clippy::type_complexity)]
    pub(super) fn records_of(
        &self,
        segments: &[Fetched],
    ) -> Result<(Vec<(Vec<u8>, redoubt_vault::Record)>, u64), Error> {
        let mut scratch = Instance::new(redoubt_vault::NodeId::from_bytes([0; 16]));
        for (name, _, segment) in segments {
            for plain in &segment.events {
                let event = journal::decode(plain).map_err(|_| Error::Tampered {
                    name: name.clone(),
                    reason: "an event does not decode (or is of a schema this build cannot read)",
                })?;
                journal::apply(&mut scratch, &event)?;
            }
        }
        let (mut out, mut refused) = (Vec::new(), 0u64);
        for (id, client) in scratch.clients() {
            if self.state.chooses(client) {
                out.extend(scratch.records(id).map(|r| (client.to_vec(), r.clone())));
            } else {
                refused += scratch.records(id).count() as u64;
            }
        }
        Ok((out, refused))
    }
}
