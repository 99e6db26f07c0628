//! Sync through shared storage, three devices on one folder remote, driven through the real
//! `redoubt` binary: random writes, deletes, `remote sync`, `remote compact`, and syncs killed
//! with SIGKILL at a random moment (0 to 40 ms in: opening the vault, listing, uploading a
//! segment, between the segment and the head update, or merging). Then every device syncs
//! twice and must hold exactly the last thing done to each record, whichever device did it.
//! Each run is counted; a failing one names the step and the seed replays it.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, Result, bail, ensure};

use crate::{
    Tally,
    redoubt::{Vault, binary},
    rng::Rng,
};

const CLIENT: &str = "alice";
const VAULT: &str = "v";
const PASSPHRASE: &str = "reliability remote passphrase";
/// Records the runs write to (few, so that devices overwrite and delete each other's).
const RECORDS: u64 = 12;

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let (runs, steps) = if quick { (3, 30) } else { (20, 150) };
    let bin = binary()?;
    let mut rng = Rng::new("remote-storage");
    let mut tally = Tally::new();
    for _ in 0..runs {
        tally.record(one(&bin, &mut rng, steps));
    }
    Ok(tally)
}

fn remote(v: &Vault, args: &[&str]) -> Result<String> {
    let out = v
        .cmd()
        .arg("remote")
        .args(args)
        .env("REDOUBT_REMOTE_PASSPHRASE", PASSPHRASE)
        .output()?;
    ensure!(
        out.status.success(),
        "`redoubt remote {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `redoubt remote sync r`, killed with SIGKILL `delay` after it started (if still running).
fn killed_sync(v: &Vault, delay: Duration) -> Result<()> {
    let mut child = v
        .cmd()
        .args(["remote", "sync", "r"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait()?;
    Ok(())
}

fn one(bin: &Path, rng: &mut Rng, steps: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("file://{}", dir.path().join("shared").display());
    let devices = [
        Vault::init(bin, dir.path().join("a.redb"))?,
        Vault::init(bin, dir.path().join("b.redb"))?,
        Vault::init(bin, dir.path().join("c.redb"))?,
    ];
    remote(&devices[0], &["add", "r", &url])?;
    for d in &devices[1..] {
        remote(d, &["join", "r", &url])?;
    }
    // The last thing done to each record, in real time: the newest stamp wins everywhere.
    let mut last: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for step in 0..steps {
        let d = &devices[rng.below(3) as usize];
        let record = format!("r{}", rng.below(RECORDS));
        let what = rng.below(10);
        let done = match what {
            0..=3 => {
                let value = format!("value {step}").into_bytes();
                d.put(CLIENT, VAULT, &record, &value)?;
                last.insert(record, Some(value));
                Ok(())
            }
            // A delete of a record this device does not hold (yet) fails and changes nothing.
            4 => {
                if d.run(&["rm", CLIENT, VAULT, &record]).is_ok() {
                    last.insert(record, None);
                }
                Ok(())
            }
            5..=7 => remote(d, &["sync", "r"]).map(drop),
            8 => killed_sync(d, Duration::from_millis(rng.below(40))),
            _ => remote(d, &["compact", "r"]).map(drop),
        };
        done.with_context(|| format!("step {step} (action {what})"))?;
    }
    for round in 0..2 {
        for d in &devices {
            remote(d, &["sync", "r"]).with_context(|| format!("final round {round}"))?;
        }
    }
    let listed = devices[0].list(CLIENT)?;
    for (i, d) in devices.iter().enumerate() {
        ensure!(d.list(CLIENT)? == listed, "device {i} did not converge");
        for (record, value) in &last {
            let got = d.get(CLIENT, VAULT, record).ok();
            if got.as_ref() != value.as_ref() {
                bail!(
                    "device {i}, {record}: {:?} where the last write was {:?}",
                    got.map(|g| String::from_utf8_lossy(&g).into_owned()),
                    value
                        .as_ref()
                        .map(|g| String::from_utf8_lossy(g).into_owned())
                );
            }
        }
    }
    Ok(())
}
