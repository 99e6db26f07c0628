//! `agents`: real `redoubt agent` processes on loopback keeping each other in sync by
//! themselves (issue 14, point 5).
//!
//! For each agent count: that many vaults (one client, `bench`, every vault granting every
//! other read and write on it: a full mesh), each owned by a `redoubt agent` (the release
//! binary beside this one) with its own runtime directory, hence its own control socket, each
//! told where every other listens (`--peer`). Once every agent has synced with every peer, this
//! process talks the control protocol (`redoubt-control`) to their sockets directly:
//! - baselines, in the same run: a `Get` round trip on agent 0's socket, and one explicit sync
//!   session (`Sync`, both ways) from agent 0 with agent 1 through that socket;
//! - latency: `--writes` puts on agent 0, one after another, each timed from sending the put
//!   until the value reads back through every other agent's socket (each polled every
//!   [`POLL`]); p50, p99 and max per reader and for the last reader of each write;
//! - idle: every agent's CPU time (utime + stime in `/proc/PID/stat`, all threads) and wakeups
//!   (voluntary and involuntary context switches summed over `/proc/PID/task/*/status`) over
//!   `--idle-secs` in which nothing is asked of them;
//! - burst: `--burst` puts on agent 0 as fast as its socket acknowledges them, then how long
//!   until every other agent holds all of them, and how many sync sessions agent 0 ran with
//!   each peer for them (the `sessions` count of its status).
//!
//! One JSON object per line on stdout; a summary on stderr.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use redoubt_control::{ErrorKind, HEADER_LEN, Request, Response, SecretBytes, Target, frame};
use redoubt_node::store::{KdfParams, Store};
use redoubt_snapshot::{Identity, Snapshot};
use redoubt_vault::Rights;
use serde_json::{Value, json};

use crate::{
    cli_sync::{Serve, binary, cli, listening, password, peer},
    median, ms,
};

/// The client every vault shares.
const CLIENT: &str = "bench";
/// How often a reader is polled while a write is on its way.
const POLL: Duration = Duration::from_millis(1);
/// How long anything may take before the run is called a failure.
const PATIENCE: Duration = Duration::from_secs(60);
/// Explicit sync sessions timed for the baseline.
const BASELINE_SYNCS: usize = 20;

/// What to measure.
pub(crate) struct Options {
    pub(crate) writes: usize,
    pub(crate) idle_secs: u64,
    pub(crate) burst: usize,
    pub(crate) cli: Option<PathBuf>,
}

/// `agents`: see the module docs.
pub(crate) fn run(counts: &[usize], options: &Options) -> Result<()> {
    let bin = binary(options.cli.clone())?;
    for &n in counts {
        ensure!(n >= 2, "--agents {n}: at least two agents are needed");
        let dir = tempfile::tempdir()?;
        let mesh = Mesh::start(&bin, dir.path(), n)?;
        eprintln!("agents n={n}: {n} agents started and synced with each other");
        measure(&mesh, options)?;
    }
    Ok(())
}

fn measure(mesh: &Mesh, options: &Options) -> Result<()> {
    let n = mesh.agents.len();
    let baseline = baseline(mesh)?;
    println!(
        "{}",
        json!({"bench": "agents", "agents": n, "what": "baseline",
               "socket_get_ms": baseline.get_ms, "sync_session_ms": baseline.sync_ms})
    );
    let latency = latency(mesh, options.writes)?;
    println!("{latency}");
    eprintln!(
        "agents n={n}: latency over {} writes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (every \
         reader: p99 {:.1} ms); one sync session {:.1} ms, a socket get {:.2} ms",
        options.writes,
        num(&latency["p50_ms"]),
        num(&latency["p99_ms"]),
        num(&latency["max_ms"]),
        num(&latency["all_p99_ms"]),
        baseline.sync_ms,
        baseline.get_ms,
    );
    mesh.settled()?;
    for line in idle(mesh, Duration::from_secs(options.idle_secs))? {
        eprintln!(
            "agents n={n}: idle agent {}: {:.3} ms CPU/s, {:.2} wakeups/s over {} s",
            line["agent"],
            num(&line["cpu_ms_per_s"]),
            num(&line["wakeups_per_s"]),
            options.idle_secs
        );
        println!("{line}");
    }
    let burst = burst(mesh, options.burst)?;
    eprintln!(
        "agents n={n}: burst of {}: puts took {:.0} ms, every peer had all of them {:.0} ms \
         after the first, in {} session(s) per peer at most",
        options.burst,
        num(&burst["puts_ms"]),
        num(&burst["converge_ms"]),
        burst["sessions_max"]
    );
    println!("{burst}");
    Ok(())
}

/// A figure of a JSON line, for the summary.
fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// One `redoubt agent` and a connection to its control socket.
struct Agent {
    process: Serve,
    control: Control,
    addr: String,
}

/// The agents of one run, killed on drop.
struct Mesh {
    agents: Vec<Agent>,
}

impl Mesh {
    /// Makes `n` vaults in `dir` granting each other read and write on [`CLIENT`], starts an
    /// agent on each, and waits until every agent has synced with every peer.
    fn start(bin: &Path, dir: &Path, n: usize) -> Result<Self> {
        let seeds: Vec<[u8; 32]> = (0..n).map(|i| [40 + i as u8; 32]).collect();
        let ids = seeds.iter().map(peer).collect::<Result<Vec<_>>>()?;
        let ports = (0..n).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let all = Rights {
            read: true,
            write: true,
        };
        let mut agents = Vec::new();
        for (i, seed) in seeds.iter().enumerate() {
            let vault = dir.join(format!("vault-{i}.rdb"));
            let mut snapshot = Snapshot::new(Identity::from_seed(*seed));
            for (j, id) in ids.iter().enumerate() {
                if j != i {
                    snapshot
                        .access
                        .grant(id.as_bytes(), CLIENT.as_bytes(), all)?;
                }
            }
            Store::create_from_snapshot(&vault, &snapshot, &password(), KdfParams::default())?;
            let runtime = dir.join(format!("run-{i}"));
            std::fs::create_dir_all(&runtime)?;
            let log = std::fs::File::create(dir.join(format!("agent-{i}.log")))?;
            let mut command = cli(bin, &vault);
            command
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("RUST_LOG", "info,libp2p=warn")
                .args(["agent", "--no-discovery", "--listen"])
                .arg(format!("/ip4/127.0.0.1/tcp/{}", ports[i]))
                .stderr(Stdio::from(log));
            for (j, id) in ids.iter().enumerate() {
                if j != i {
                    command
                        .arg("--peer")
                        .arg(format!("/ip4/127.0.0.1/tcp/{}/p2p/{id}", ports[j]));
                }
            }
            let (process, addr) = listening(command)?;
            let control = Control::connect(&socket_in(&runtime.join("redoubt"))?)?;
            agents.push(Agent {
                process,
                control,
                addr,
            });
        }
        let mesh = Self { agents };
        // An agent started before a peer failed to reach it and backs off; the peer dialing
        // it at its own start makes it try again at once.
        mesh.wait("every agent synced with every peer", |peers| {
            peers
                .iter()
                .all(|p| p["reachable"] == true && p["changes_waiting"] == 0)
                && peers.len() == n - 1
        })?;
        Ok(mesh)
    }

    /// Waits until `done` holds of every agent's `peers` status.
    fn wait(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut all = true;
            for agent in &self.agents {
                let peers = agent.control.peers()?;
                all &= done(&peers);
            }
            if all {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until no agent has a change waiting for a peer.
    fn settled(&self) -> Result<()> {
        self.wait("nothing waits", |peers| {
            peers.iter().all(|p| p["changes_waiting"] == 0)
        })
    }
}

/// A TCP port on loopback that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The one socket the agent made in `dir` (its own runtime directory).
fn socket_in(dir: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        found.push(entry?.path());
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one socket in {}: {found:?}", dir.display()),
    }
}

/// A connection to an agent's control socket.
struct Control(std::cell::RefCell<UnixStream>);

impl Control {
    fn connect(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to {}", path.display()))?;
        Ok(Self(std::cell::RefCell::new(stream)))
    }

    /// Sends `request`; its items and its final response.
    fn ask(&self, request: &Request) -> Result<(Vec<Response>, Response)> {
        let mut stream = self.0.borrow_mut();
        stream.write_all(&redoubt_control::message::encode_request(request)?)?;
        let mut items = Vec::new();
        loop {
            let mut head = [0u8; HEADER_LEN];
            stream.read_exact(&mut head).context("the agent hung up")?;
            let mut payload = vec![0u8; frame::header(&head)?];
            stream.read_exact(&mut payload)?;
            let response = redoubt_control::message::decode_response(&payload)?;
            if response.is_item() {
                items.push(response);
            } else {
                return Ok((items, response));
            }
        }
    }

    /// The final response, which must not be an error.
    fn ok(&self, request: &Request) -> Result<Response> {
        match self.ask(request)?.1 {
            Response::Error { message, .. } => bail!("the agent answered: {message}"),
            r => Ok(r),
        }
    }

    fn put(&self, record: &Target, value: &str) -> Result<()> {
        self.ok(&Request::Put {
            target: record.clone(),
            value: SecretBytes::new(value.as_bytes().to_vec()),
            force: true,
        })?;
        Ok(())
    }

    /// Whether `value` is at `record`.
    fn holds(&self, record: &Target, value: &str) -> Result<bool> {
        match self.ask(&Request::Get(record.clone()))?.1 {
            Response::Value(v) => Ok(v.expose() == value.as_bytes()),
            Response::Error {
                kind: ErrorKind::NotFound,
                ..
            } => Ok(false),
            r => bail!("unexpected answer to a get: {r:?}"),
        }
    }

    /// The `peers` of its status.
    fn peers(&self) -> Result<Vec<Value>> {
        let Response::Text(text) = self.ok(&Request::Status)? else {
            bail!("status is not a text");
        };
        let status: Value = serde_json::from_str(&text)?;
        status["peers"]
            .as_array()
            .cloned()
            .context("status without peers")
    }

    /// Successful sessions with each peer, in the order of its status (by peer id).
    fn sessions(&self) -> Result<Vec<u64>> {
        self.peers()?
            .iter()
            .map(|p| p["sessions"].as_u64().context("status without sessions"))
            .collect()
    }
}

fn target(vault: &str, record: &str) -> Target {
    Target {
        client: CLIENT.as_bytes().to_vec(),
        vault: vault.as_bytes().to_vec(),
        record: record.as_bytes().to_vec(),
    }
}

struct Baseline {
    get_ms: f64,
    sync_ms: f64,
}

/// A `Get` round trip on agent 0 (median of 200), and one explicit sync session from agent 0
/// with agent 1 (both ways, median of [`BASELINE_SYNCS`]).
fn baseline(mesh: &Mesh) -> Result<Baseline> {
    let a = &mesh.agents[0].control;
    let record = target("baseline", "r");
    a.put(&record, "baseline")?;
    mesh.settled()?;
    let mut gets = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        ensure!(a.holds(&record, "baseline")?, "agent 0 lost its own put");
        gets.push(ms(t.elapsed()));
    }
    let mut syncs = Vec::new();
    let sync = Request::Sync {
        addr: mesh.agents[1].addr.clone(),
        directions: 0,
        allow_unbound: false,
        client: Some((CLIENT.as_bytes().to_vec(), Vec::new())),
    };
    for _ in 0..BASELINE_SYNCS {
        let t = Instant::now();
        let done = a.ok(&sync)?;
        syncs.push(ms(t.elapsed()));
        ensure!(
            matches!(done, Response::Synced { .. }),
            "a sync answered {done:?}"
        );
    }
    Ok(Baseline {
        get_ms: median(gets),
        sync_ms: median(syncs),
    })
}

/// The `p`-th percentile (nearest rank) of `samples`, which must not be empty.
fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Polls every reader until each holds `value` at `record`; the time since `from` at which
/// each first did.
fn arrivals(readers: &[&Agent], record: &Target, value: &str, from: Instant) -> Result<Vec<f64>> {
    let mut seen: Vec<Option<f64>> = vec![None; readers.len()];
    while seen.iter().any(Option::is_none) {
        for (reader, seen) in readers.iter().zip(seen.iter_mut()) {
            if seen.is_none() && reader.control.holds(record, value)? {
                *seen = Some(ms(from.elapsed()));
            }
        }
        ensure!(
            from.elapsed() < PATIENCE,
            "a write never arrived everywhere"
        );
        std::thread::sleep(POLL);
    }
    Ok(seen.into_iter().flatten().collect())
}

/// `writes` puts on agent 0, each timed until every other agent reads it.
fn latency(mesh: &Mesh, writes: usize) -> Result<Value> {
    ensure!(writes > 0, "--writes 0: nothing to measure");
    let writer = &mesh.agents[0];
    let readers: Vec<&Agent> = mesh.agents[1..].iter().collect();
    let before = writer.control.sessions()?;
    let (mut each, mut last, mut acks) = (Vec::new(), Vec::new(), Vec::new());
    for w in 0..writes {
        let record = target("latency", &format!("w{w}"));
        let value = format!("latency write {w}");
        let t = Instant::now();
        writer.control.put(&record, &value)?;
        acks.push(ms(t.elapsed()));
        let got = arrivals(&readers, &record, &value, t)?;
        last.push(got.iter().copied().fold(0.0, f64::max));
        each.extend(got);
    }
    mesh.settled()?;
    let after = writer.control.sessions()?;
    let sessions: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    Ok(json!({
        "bench": "agents", "agents": mesh.agents.len(), "what": "latency", "writes": writes,
        "poll_ms": ms(POLL),
        "p50_ms": percentile(&each, 50.0), "p99_ms": percentile(&each, 99.0),
        "max_ms": percentile(&each, 100.0),
        "all_p50_ms": percentile(&last, 50.0), "all_p99_ms": percentile(&last, 99.0),
        "all_max_ms": percentile(&last, 100.0),
        "put_ack_p50_ms": percentile(&acks, 50.0),
        "sessions_per_peer": sessions,
    }))
}

/// CPU time (ticks) and context switches of process `pid` so far, and its thread count.
fn usage(pid: u32) -> Result<(u64, u64, usize)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The name is in parentheses and may hold spaces: fields are counted after it.
    let after = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let tick =
        |i: usize| -> Result<u64> { Ok(fields.get(i).context("short /proc stat")?.parse()?) };
    let cpu = tick(11)? + tick(12)?;
    let (mut switches, mut threads) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        threads += 1;
        for line in status.lines() {
            if let Some(rest) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += rest.trim().parse::<u64>()?;
            }
        }
    }
    Ok((cpu, switches, threads))
}

/// Clock ticks per second of `/proc/PID/stat` times.
fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Every agent's CPU and wakeups over `window` in which nothing is asked of them.
fn idle(mesh: &Mesh, window: Duration) -> Result<Vec<Value>> {
    // Let the last syncs' connections and timers quiet down first.
    std::thread::sleep(Duration::from_secs(2));
    let pids: Vec<u32> = mesh.agents.iter().map(|a| a.process.0.id()).collect();
    let start = pids.iter().map(|&p| usage(p)).collect::<Result<Vec<_>>>()?;
    let t = Instant::now();
    std::thread::sleep(window);
    let secs = t.elapsed().as_secs_f64();
    let end = pids.iter().map(|&p| usage(p)).collect::<Result<Vec<_>>>()?;
    let tick_ms = 1000.0 / ticks_per_second() as f64;
    Ok(start
        .iter()
        .zip(&end)
        .enumerate()
        .map(|(i, (s, e))| {
            let cpu_ms = (e.0 - s.0) as f64 * tick_ms;
            let wakeups = e.1.saturating_sub(s.1);
            json!({
                "bench": "agents", "agents": mesh.agents.len(), "what": "idle", "agent": i,
                "secs": secs, "cpu_ms": cpu_ms, "cpu_ms_per_s": cpu_ms / secs,
                "wakeups": wakeups, "wakeups_per_s": wakeups as f64 / secs, "threads": e.2,
            })
        })
        .collect())
}

/// `puts` puts on agent 0 as fast as it takes them; until every peer holds them all, and the
/// sessions agent 0 ran with each peer meanwhile.
fn burst(mesh: &Mesh, puts: usize) -> Result<Value> {
    ensure!(puts > 0, "--burst 0: nothing to measure");
    let writer = &mesh.agents[0];
    let readers: Vec<&Agent> = mesh.agents[1..].iter().collect();
    let before = writer.control.sessions()?;
    let t = Instant::now();
    for i in 0..puts {
        writer
            .control
            .put(&target("burst", &format!("b{i}")), &format!("burst {i}"))?;
    }
    let puts_ms = ms(t.elapsed());
    let last = target("burst", &format!("b{}", puts - 1));
    let got = arrivals(&readers, &last, &format!("burst {}", puts - 1), t)?;
    let converge_ms = got.iter().copied().fold(0.0, f64::max);
    // Every put arrived, not only the last.
    for (i, reader) in readers.iter().enumerate() {
        let (items, _) = reader.control.ask(&Request::List {
            client: Some(CLIENT.as_bytes().to_vec()),
        })?;
        let held = items
            .iter()
            .filter(|r| matches!(r, Response::Item(item) if item.names[1] == b"burst"))
            .count();
        ensure!(held == puts, "agent {} holds {held} of {puts}", i + 1);
    }
    let deadline = Instant::now() + PATIENCE;
    while writer
        .control
        .peers()?
        .iter()
        .any(|p| p["changes_waiting"] != 0)
    {
        ensure!(Instant::now() < deadline, "agent 0 never sent everything");
        std::thread::sleep(Duration::from_millis(10));
    }
    let after = writer.control.sessions()?;
    let sessions: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    Ok(json!({
        "bench": "agents", "agents": mesh.agents.len(), "what": "burst", "puts": puts,
        "puts_ms": puts_ms, "puts_per_s": puts as f64 / (puts_ms / 1000.0),
        "converge_ms": converge_ms, "sessions_per_peer": sessions,
        "sessions_max": sessions.iter().max(),
    }))
}
