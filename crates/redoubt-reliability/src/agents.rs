//! Agents killed and restarted: 3 `redoubt agent`s (5 in a full run), all paired with each
//! other, each listening on a fixed port and reached by the others through a loopback proxy
//! of its own that can cut connections (the proxy of [`crate::cuts`]). Rounds of random
//! commands through a random live agent's control socket (`redoubt put --force` and `redoubt
//! rm`: a new record, an overwrite or a delete of one this agent wrote before), SIGKILLs of
//! agents (some of them while a command runs) and their restart after a random pause, cuts of
//! the connections to an agent after a random number of bytes, and pauses that let the
//! agents sync. A command that exits 0 is acknowledged; one that fails is unsure (it may
//! have been committed), and fails the run unless its agent was killed during it.
//!
//! At the end every agent is restarted and the cuts healed; within [`CONVERGE`] every agent
//! must list the same records (same versions, by their stamps), each record must hold the
//! value of its last acknowledged write (or one of the unsure writes after it), every
//! acknowledged delete must stay deleted, and once every agent is SIGKILLed its vault file must
//! hold what the agent listed. Each record is written through one agent only, so its last
//! write is well defined: it has the greatest stamp of that agent's clock.

mod model;

use std::{
    collections::BTreeSet,
    fs::OpenOptions,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use model::{Found, Model, State};

use crate::{
    Tally,
    cuts::proxy,
    redoubt::{Vault, binary},
    rng::Rng,
};

const CLIENT: &str = "alice";
const VAULT: &str = "v";

/// How long the agents may take to agree at the end: a hang detector, not a bound on speed.
const CONVERGE: Duration = Duration::from_secs(60);
/// How long an agent may take to say where it listens.
const START: Duration = Duration::from_secs(30);
/// The longest a killed agent stays down, in milliseconds.
const MAX_DOWN_MS: u64 = 2_000;
/// The longest a cut lasts (new connections are cut at once meanwhile), in milliseconds.
const MAX_CUT_MS: u64 = 2_000;
/// The most bytes a cut connection still carries (a sync session of this part moves a few
/// hundred bytes to a few KiB).
const MAX_CUT_BYTES: u64 = 4 * 1024;
/// The latest a kill lands after a command started, in microseconds (a command through an
/// agent takes about 10 ms in a debug build).
const MAX_KILL_DELAY_US: u64 = 30_000;

/// What the runs did, over all of them.
#[derive(Default)]
struct Counts {
    puts: usize,
    rms: usize,
    unsure: usize,
    kills: usize,
    kills_during_a_command: usize,
    restarts: usize,
    cuts: usize,
    /// Cuts (of one proxy) that cut a connection (others found none carrying data before they healed).
    cuts_that_cut: usize,
    /// The longest wait at the end before the agents agreed.
    longest_wait: Duration,
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let (agents, runs, rounds) = if quick { (3, 6, 90) } else { (5, 12, 200) };
    let bin = binary()?;
    let mut rng = Rng::new("agents-kill-restart");
    let mut tally = Tally::new();
    let mut counts = Counts::default();
    for _ in 0..runs {
        let dir = tempfile::tempdir()?;
        let result = match one_run(&bin, dir.path(), agents, rounds, &mut rng, &mut counts) {
            Ok(()) => Ok(()),
            // A failed run keeps its vaults and its agents' logs.
            Err(e) => {
                let kept = dir.keep();
                Err(e.context(format!(
                    "its vaults and logs are kept in {}",
                    kept.display()
                )))
            }
        };
        tally.record(result);
    }
    eprintln!(
        "(agents-kill-restart: {} puts and {} deletes acknowledged, {} commands cut short by a \
         kill; {} SIGKILLs ({} during a command), {} restarts, {} cuts ({} of which cut a \
         connection); the agents agreed at most {:.1} s after the end)",
        counts.puts,
        counts.rms,
        counts.unsure,
        counts.kills,
        counts.kills_during_a_command,
        counts.restarts,
        counts.cuts,
        counts.cuts_that_cut,
        counts.longest_wait.as_secs_f64()
    );
    Ok(tally)
}

/// One agent's vault, where it listens and the proxy the others reach it through.
struct Member {
    /// The vault file, opened by the commands themselves (with the password).
    file: Vault,
    /// The same vault, its commands going through the agent.
    through: Vault,
    id: String,
    port: u16,
    proxy_port: u16,
    /// The proxy's byte budget and count ([`crate::cuts`]).
    limit: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    /// Its agent, while it runs.
    agent: Option<Child>,
    /// When a killed agent is started again.
    down_until: Option<Instant>,
    /// When the current cut of its proxy heals.
    cut_until: Option<Instant>,
    log: PathBuf,
}

impl Member {
    /// Where the others reach it: its proxy.
    fn addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", self.proxy_port, self.id)
    }

    /// Starts its agent and waits until it says where it listens.
    fn start(&mut self, peers: &[String]) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let listen = format!("/ip4/127.0.0.1/tcp/{}", self.port);
        let mut child = self
            .through
            .cmd_with_password()
            .args(["agent", "--no-discovery", "--listen", &listen])
            .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        // Read on a thread, so that an agent that hangs fails the run instead of the suite;
        // the thread reads on until the agent exits, so it never meets a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let first = rx.recv_timeout(START);
        match first {
            Ok(Some(Ok(line))) if line.starts_with("listening on ") => {
                self.agent = Some(child);
                self.down_until = None;
                Ok(())
            }
            other => {
                let _ = child.kill();
                let status = child.wait()?;
                bail!(
                    "the agent on port {} did not start: its first line was {other:?} ({status}); \
                     see {}",
                    self.port,
                    self.log.display()
                )
            }
        }
    }

    /// SIGKILLs its agent, which starts again after `down`.
    fn kill(&mut self, down: Duration) -> Result<()> {
        if let Some(mut child) = self.agent.take() {
            child.kill()?;
            child.wait()?;
        }
        self.down_until = Some(Instant::now() + down);
        Ok(())
    }

    /// Cuts the connections through its proxy once `bytes` more have passed, and every new
    /// one at once, until `until`.
    fn cut(&mut self, bytes: u64, until: Instant) {
        self.limit
            .store(self.passed.load(Ordering::SeqCst) + bytes, Ordering::SeqCst);
        self.cut_until = Some(until);
    }

    /// Ends a cut; whether it cut a connection (more bytes came than it let through).
    fn heal(&mut self) -> bool {
        let limit = self.limit.swap(u64::MAX, Ordering::SeqCst);
        self.cut_until = None;
        self.passed.load(Ordering::SeqCst) > limit
    }

    /// `redoubt list CLIENT` through its agent: the lines, sorted as listed.
    fn list(&self) -> Result<Vec<String>> {
        self.through.list(CLIENT)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.agent.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP port on loopback that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The record of a `redoubt list` line (`client vault record size stamp`, tab-separated).
fn record_of(line: &str) -> &str {
    line.split('\t').nth(2).unwrap_or(line)
}

/// One run: fresh vaults and agents, the rounds, and the checks at the end.
fn one_run(
    bin: &Path,
    dir: &Path,
    agents: usize,
    rounds: usize,
    rng: &mut Rng,
    counts: &mut Counts,
) -> Result<()> {
    // The proxies run on a runtime of their own, dropped (with them) at the end of the run.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let agents_dir = dir.join("runtime");
    std::fs::create_dir(&agents_dir)?;
    std::fs::set_permissions(
        &agents_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let mut members = Vec::new();
    for i in 0..agents {
        let file = Vault::init(bin, dir.join(format!("agent{i}.rdb")))?;
        let (limit, passed) = (
            Arc::new(AtomicU64::new(u64::MAX)),
            Arc::new(AtomicU64::new(0)),
        );
        let port = free_port()?;
        let proxy_port = runtime.block_on(proxy(port, limit.clone(), passed.clone()))?;
        members.push(Member {
            through: file.through_agent(&agents_dir),
            id: file.id()?,
            file,
            port,
            proxy_port,
            limit,
            passed,
            agent: None,
            down_until: None,
            cut_until: None,
            log: dir.join(format!("agent{i}.log")),
        });
    }
    for a in &members {
        for b in &members {
            if a.id != b.id {
                a.file.allow(&b.id, CLIENT, true, true)?;
            }
        }
    }
    let peers: Vec<Vec<String>> = (0..agents)
        .map(|i| {
            let others = members.iter().enumerate().filter(|(j, _)| *j != i);
            others.map(|(_, m)| m.addr()).collect()
        })
        .collect();
    for (m, peers) in members.iter_mut().zip(&peers) {
        m.start(peers)?;
    }
    let mut model = Model::default();
    let mut writes = 0u64;
    for _ in 0..rounds {
        let now = Instant::now();
        for (m, peers) in members.iter_mut().zip(&peers) {
            if m.down_until.is_some_and(|t| t <= now) {
                m.start(peers)?;
                counts.restarts += 1;
            }
            if m.cut_until.is_some_and(|t| t <= now) {
                counts.cuts_that_cut += usize::from(m.heal());
            }
        }
        let live: Vec<usize> = (0..agents)
            .filter(|&i| members[i].agent.is_some())
            .collect();
        if live.is_empty() {
            // Every agent is down: the first comes back now.
            members[0].start(&peers[0])?;
            counts.restarts += 1;
            continue;
        }
        let pick = live[rng.below(live.len() as u64) as usize];
        match rng.below(100) {
            0..60 => write(
                &mut members[pick],
                pick,
                None,
                rng,
                &mut model,
                &mut writes,
                counts,
            )?,
            60..70 => {
                let delay = Duration::from_micros(rng.below(MAX_KILL_DELAY_US + 1));
                let down = Duration::from_millis(rng.below(MAX_DOWN_MS + 1));
                write(
                    &mut members[pick],
                    pick,
                    Some((delay, down)),
                    rng,
                    &mut model,
                    &mut writes,
                    counts,
                )?;
                counts.kills += 1;
                counts.kills_during_a_command += 1;
            }
            70..80 if live.len() > 1 => {
                members[pick].kill(Duration::from_millis(rng.below(MAX_DOWN_MS + 1)))?;
                counts.kills += 1;
            }
            // The connections to one agent, or (a blip of the whole network) to every agent.
            80..90 => {
                let one = rng.below(agents as u64) as usize;
                let targets = if rng.below(2) == 0 {
                    one..one + 1
                } else {
                    0..agents
                };
                let until = now + Duration::from_millis(rng.below(MAX_CUT_MS + 1));
                for m in &mut members[targets] {
                    if m.cut_until.is_some() {
                        counts.cuts_that_cut += usize::from(m.heal());
                    }
                    m.cut(rng.below(MAX_CUT_BYTES + 1), until);
                    counts.cuts += 1;
                }
            }
            _ => std::thread::sleep(Duration::from_millis(rng.below(500))),
        }
    }
    for (m, peers) in members.iter_mut().zip(&peers) {
        if m.cut_until.is_some() {
            counts.cuts_that_cut += usize::from(m.heal());
        }
        if m.agent.is_none() {
            m.start(peers)?;
            counts.restarts += 1;
        }
    }
    let start = Instant::now();
    let listed = converged(&members)?;
    counts.longest_wait = counts.longest_wait.max(start.elapsed());
    check(&members, &listed, &model)?;
    // What the agents serve is on disk: killed, their vault files hold it.
    for (i, m) in members.iter_mut().enumerate() {
        m.kill(Duration::ZERO)?;
        let on_disk = m.file.list(CLIENT)?;
        ensure!(
            on_disk == listed,
            "agent {i}'s vault file, once the agent was killed, lists {} records where the \
             agent listed {}; first difference: {}",
            on_disk.len(),
            listed.len(),
            first_difference(&listed, &on_disk)
        );
    }
    runtime.shutdown_background();
    Ok(())
}

/// One command through `member`'s agent: a put of a new record, or an overwrite or a delete
/// of one it wrote before. With `kill`, the agent is SIGKILLed that long after the command
/// started, and started again after the second duration.
#[allow(clippy::too_many_arguments)]
fn write(
    member: &mut Member,
    index: usize,
    kill: Option<(Duration, Duration)>,
    rng: &mut Rng,
    model: &mut Model,
    writes: &mut u64,
    counts: &mut Counts,
) -> Result<()> {
    let owned = model.owned_by(index);
    let record = if owned.is_empty() || rng.below(3) == 0 {
        *writes += 1;
        format!("a{index}-n{writes}")
    } else {
        owned[rng.below(owned.len() as u64) as usize].to_string()
    };
    let delete = model.surely_present(&record) && rng.below(3) == 0;
    *writes += 1;
    let (state, stdin) = if delete {
        (State::Absent, None)
    } else {
        let pad: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        (State::Value(*writes), Some(model::value(*writes, &pad)))
    };
    let args: &[&str] = if delete {
        &["rm", CLIENT, VAULT, &record]
    } else {
        &["put", "--force", CLIENT, VAULT, &record]
    };
    let mut child = member
        .through
        .cmd()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(mut pipe), Some(value)) = (child.stdin.take(), &stdin) {
        pipe.write_all(value)?;
    }
    if let Some((delay, down)) = kill {
        std::thread::sleep(delay);
        member.kill(down)?;
    }
    let out: Output = child.wait_with_output()?;
    if out.status.success() {
        model.acked(index, &record, state);
        if delete {
            counts.rms += 1;
        } else {
            counts.puts += 1;
        }
        return Ok(());
    }
    ensure!(
        kill.is_some(),
        "`redoubt {}` through agent {index}, which was not killed, failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    model.unsure(index, &record, state);
    counts.unsure += 1;
    Ok(())
}

/// Waits (up to [`CONVERGE`]) until every agent lists the same records in the same versions;
/// that list.
fn converged(members: &[Member]) -> Result<Vec<String>> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let lists = members
            .iter()
            .map(Member::list)
            .collect::<Result<Vec<_>>>()?;
        if lists.windows(2).all(|w| w[0] == w[1]) {
            return Ok(lists.into_iter().next().unwrap_or_default());
        }
        if Instant::now() >= deadline {
            let (i, other) = lists
                .iter()
                .enumerate()
                .find(|(_, l)| **l != lists[0])
                .context("the lists differ")?;
            bail!(
                "{} s after the end the agents still differ: agent 0 lists {} records, agent \
                 {i} lists {}; first difference: {}",
                CONVERGE.as_secs(),
                lists[0].len(),
                other.len(),
                first_difference(&lists[0], other)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first line that one list holds and the other does not, for a failure message.
fn first_difference(a: &[String], b: &[String]) -> String {
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
    match (sa.difference(&sb).next(), sb.difference(&sa).next()) {
        (Some(line), _) => format!("only the first has {line:?}"),
        (None, Some(line)) => format!("only the second has {line:?}"),
        (None, None) => "none (the same lines in another order)".to_string(),
    }
}

/// Every agent holds what the commands allow at every record: by the list it agreed on for
/// which records are there, and by `get` through each agent for their values.
fn check(members: &[Member], listed: &[String], model: &Model) -> Result<()> {
    let present: BTreeSet<&str> = listed.iter().map(|l| record_of(l)).collect();
    let mut wrong = Vec::new();
    for record in model.records().filter(|r| !present.contains(r)) {
        if let Err(e) = model.check(record, Found::Absent) {
            wrong.push(format!("every agent: {e}"));
        }
    }
    for (i, m) in members.iter().enumerate() {
        for record in &present {
            let value = m.through.get(CLIENT, VAULT, record).ok();
            if let Err(e) = model.check(record, Found::of(value.as_deref())) {
                wrong.push(format!("agent {i}: {e}"));
            }
        }
    }
    if !wrong.is_empty() {
        let more = wrong.len().saturating_sub(5);
        wrong.truncate(5);
        bail!(
            "{}{}",
            wrong.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_list_lines_and_names_differences() {
        let line = "alice\tv\ta0-n3\t33\t2025-01-01T00:00:00.000Z#0@0123abcd";
        assert_eq!(record_of(line), "a0-n3");
        let (a, b) = (
            vec!["x".to_string(), "y".to_string()],
            vec!["x".to_string()],
        );
        assert_eq!(first_difference(&a, &b), "only the first has \"y\"");
        assert_eq!(first_difference(&b, &a), "only the second has \"y\"");
    }
}
