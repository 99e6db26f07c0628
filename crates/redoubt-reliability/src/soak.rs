//! Convergence soak: five live nodes, random writes, edits and deletes, a random pairwise sync
//! after each, for 200 rounds; then every node holds the same state and no record deleted last
//! has come back. Each round counts as one run: its sync must succeed.

use std::{collections::HashMap, time::Duration};

use anyhow::{Result, ensure};
use redoubt_protocol::Mode;
use redoubt_tests::TestNode;

use crate::{Tally, rng::Rng};

/// The last thing done to a record, in real time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Last {
    Wrote(Vec<u8>),
    Deleted,
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let rounds = if quick { 40 } else { 200 };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let mut nodes = Vec::new();
        for n in 1..=5u8 {
            nodes.push(TestNode::start(n).await?);
        }
        for a in &nodes {
            for b in &nodes {
                if a.peer() != b.peer() {
                    a.allow(b, "alice", true, true);
                }
            }
        }
        let alice = Mode::Full {
            client: b"alice".to_vec(),
        };
        // Every node starts with the client, so any pair can sync from the first round.
        nodes[0].put("alice", "v", "seed", b"seed");
        for n in &nodes[1..] {
            n.handle.pull(&nodes[0].addr(), alice.clone()).await?;
        }
        let mut rng = Rng::new("convergence-soak");
        let mut last: HashMap<String, Last> = HashMap::new();
        let mut tally = Tally::new();
        for round in 0..rounds {
            let result = async {
                // Later operations get later wall-clock stamps.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let who = &nodes[rng.below(5) as usize];
                let key = format!("r{}", rng.below(40));
                match rng.below(3) {
                    0 if who.get("alice", "v", &key).is_some() => {
                        who.delete("alice", "v", &key);
                        last.insert(key, Last::Deleted);
                    }
                    _ => {
                        let value = format!("{round}-{}", rng.next()).into_bytes();
                        who.put("alice", "v", &key, &value);
                        last.insert(key, Last::Wrote(value));
                    }
                }
                let a = rng.below(5) as usize;
                let b = (a + 1 + rng.below(4) as usize) % 5;
                nodes[a]
                    .handle
                    .sync(&nodes[b].addr(), alice.clone(), None)
                    .await?;
                Ok(())
            }
            .await;
            tally.record(result);
        }
        // Settle: everyone syncs with node 0, twice around.
        let settle = async {
            for _ in 0..2 {
                for n in &nodes[1..] {
                    n.handle.sync(&nodes[0].addr(), alice.clone(), None).await?;
                }
            }
            let d0 = nodes[0].digest();
            ensure!(
                nodes.iter().all(|n| n.digest() == d0),
                "the five nodes hold different states"
            );
            for (key, what) in &last {
                let got = nodes[0].get("alice", "v", key);
                match what {
                    Last::Deleted => ensure!(got.is_none(), "deleted record {key} came back"),
                    Last::Wrote(v) => {
                        ensure!(got.as_ref() == Some(v), "record {key} lost its last write")
                    }
                }
            }
            Ok(())
        }
        .await;
        tally.record(settle);
        Ok(tally)
    })
}
