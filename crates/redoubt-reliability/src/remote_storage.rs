//! Sync through shared storage, three devices on two remotes at once — a folder, and an S3
//! bucket on a moto server (started here, on loopback) — driven through the real `redoubt`
//! binary: device a syncs with both, b only with the folder, c only with the bucket, so
//! whatever b and c write reaches the other only through a. Random writes, deletes,
//! `remote sync`, `remote compact`, and syncs killed with SIGKILL at a random moment (0 to
//! 40 ms in: opening the vault, listing, uploading a segment, between the segment and the head
//! update, or merging). Then every device syncs three times over and must hold exactly the
//! last thing done to each record, whichever device did it. Each run is counted; a failing one
//! names the step and the seed replays it.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, Result, anyhow, bail, ensure};

#[path = "../../redoubt-remote/tests/support/servers.rs"]
#[allow(dead_code, missing_docs)]
mod servers;

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

/// Where the devices sync: each remote's name and URL, and the environment their commands
/// get (S3 credentials and endpoint, as the AWS tools read them).
struct Storage {
    remotes: [(&'static str, String); 2],
    env: Vec<(&'static str, String)>,
}

/// Which remotes (by index in [`Storage::remotes`]) each device syncs with.
const DEVICES: [&[usize]; 3] = [&[0, 1], &[0], &[1]];

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let (runs, steps) = if quick { (3, 30) } else { (20, 150) };
    let bin = binary()?;
    let moto = std::panic::catch_unwind(servers::moto)
        .map_err(|_| anyhow!("moto_server (S3) could not be started: see .ci/run"))?;
    let mut rng = Rng::new("remote-storage");
    let mut tally = Tally::new();
    for i in 0..runs {
        let dir = tempfile::tempdir()?;
        let storage = Storage {
            remotes: [
                (
                    "folder",
                    format!("file://{}", dir.path().join("shared").display()),
                ),
                ("s3", format!("s3://redoubt-test/run{i}")),
            ],
            env: vec![
                ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", moto.port)),
                ("AWS_ALLOW_HTTP", "true".into()),
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".into()),
            ],
        };
        tally.record(one(&bin, &dir, &storage, &mut rng, steps));
    }
    Ok(tally)
}

fn command(v: &Vault, storage: &Storage) -> std::process::Command {
    let mut c = v.cmd();
    c.envs(storage.env.iter().map(|(k, v)| (k, v)));
    c
}

fn remote(v: &Vault, storage: &Storage, args: &[&str]) -> Result<String> {
    let out = command(v, storage)
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

/// `redoubt remote sync NAME`, killed with SIGKILL `delay` after it started (if still
/// running).
fn killed_sync(v: &Vault, storage: &Storage, name: &str, delay: Duration) -> Result<()> {
    let mut child = command(v, storage)
        .args(["remote", "sync", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait()?;
    Ok(())
}

fn one(
    bin: &Path,
    dir: &tempfile::TempDir,
    storage: &Storage,
    rng: &mut Rng,
    steps: usize,
) -> Result<()> {
    let devices = [
        Vault::init(bin, dir.path().join("a.redb"))?,
        Vault::init(bin, dir.path().join("b.redb"))?,
        Vault::init(bin, dir.path().join("c.redb"))?,
    ];
    // Device a sets both remotes up; b and c join the one each uses.
    for (r, (name, url)) in storage.remotes.iter().enumerate() {
        for (d, uses) in devices.iter().zip(DEVICES) {
            if uses.contains(&r) {
                let how = if uses.len() == 2 { "add" } else { "join" };
                remote(d, storage, &[how, name, url])?;
            }
        }
    }
    // The last thing done to each record, in real time: the newest stamp wins everywhere.
    let mut last: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for step in 0..steps {
        let i = rng.below(3) as usize;
        let d = &devices[i];
        let name = storage.remotes[DEVICES[i][rng.below(DEVICES[i].len() as u64) as usize]].0;
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
            5..=7 => remote(d, storage, &["sync", name]).map(drop),
            8 => killed_sync(d, storage, name, Duration::from_millis(rng.below(40))),
            _ => remote(d, storage, &["compact", name]).map(drop),
        };
        done.with_context(|| format!("step {step} (action {what} on device {i}, {name})"))?;
    }
    // Three rounds: what c wrote reaches a in the first, the folder in the second, b by then.
    for round in 0..3 {
        for (d, uses) in devices.iter().zip(DEVICES) {
            for &r in uses {
                let name = storage.remotes[r].0;
                remote(d, storage, &["sync", name])
                    .with_context(|| format!("final round {round}, {name}"))?;
            }
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
