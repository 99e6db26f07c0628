//! `redoubt agent` (also `serve`): unlock the vault once, own it, serve peers and this user's
//! commands over the control socket until interrupted.
//!
//! The agent's vault is open (its node runs and owns it) or locked: after `redoubt lock` or
//! `--lock-after` of no command, the node is stopped and the vault dropped, so the key is
//! gone from memory; the agent keeps the socket, answers `status` and `id`, refuses record
//! access as "locked", and holds the vault file's lock, so no other process opens it behind
//! it. `redoubt unlock` opens it again with the password it brings.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use redoubt_node::{
    Handle,
    libp2p::{Multiaddr, PeerId},
    store::Store,
};
use tokio::{net::UnixListener, sync::Notify, time::Instant};
use tracing::{info, warn};

use super::serve;
use crate::{
    cli::AgentArgs,
    control::{Connection, socket_for_agent},
    live,
    secrets::Secret,
    store::{open, open_store},
};

pub(crate) fn run(path: &Path, args: &AgentArgs) -> Result<()> {
    let listen = serve::listen_addrs(args)?;
    live::check_listen(&listen)?;
    let lock_after = args.lock_after.as_deref().map(parse_duration).transpose()?;
    if path.exists() && Connection::to_agent_of(path)?.is_some() {
        bail!("an agent already runs on {}", path.display());
    }
    let store = open(path)?.store;
    live::init_logs("info");
    live::runtime()?.block_on(async {
        // Listen for signals before anything else, once.
        let stop = serve::shutdown_signal()?;
        tokio::pin!(stop);
        let socket = socket_for_agent(path)?;
        let listener = bind(&socket)?;
        let peer_id = live::peer_id(&store)?;
        let handle = serve::start(store, listen, args).await?;
        let agent = Arc::new(Agent {
            path: path.to_path_buf(),
            peer_id,
            listen: serve::bound(&handle),
            args: AgentSettings::from(args),
            lock_after,
            state: tokio::sync::Mutex::new(State::Open(handle.clone())),
            last_use: std::sync::Mutex::new(Instant::now()),
            used: Notify::new(),
        });
        // A reader that went away (a closed pipe) must not stop the agent.
        let mut out = std::io::stdout().lock();
        for addr in handle.listen_addrs() {
            let _ = writeln!(out, "listening on {addr}");
        }
        let _ = out.flush();
        drop(out);
        drop(handle);
        info!(socket = %socket.display(), "control socket ready");
        let idle = tokio::spawn(idle_lock(agent.clone()));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(super::agent_requests::serve_connection(agent.clone(), stream));
                    }
                    Err(e) => warn!("control socket: {e}"),
                },
                () = &mut stop => {
                    info!("interrupted; stopping");
                    break;
                }
            }
        }
        idle.abort();
        let _ = std::fs::remove_file(&socket);
        agent.close().await;
        Ok::<_, anyhow::Error>(())
    })
}

/// Binds the control socket at `path` (mode 0600; its directory is already 0700), replacing
/// one left behind by an agent that was killed.
fn bind(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("an agent already listens on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("creating the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok(listener)
}

/// What a node is started with again at an unlock.
pub(crate) struct AgentSettings {
    listen: Vec<String>,
    no_discovery: bool,
    allow_unbound: bool,
}

impl From<&AgentArgs> for AgentSettings {
    fn from(a: &AgentArgs) -> Self {
        Self {
            listen: a.listen.clone(),
            no_discovery: a.no_discovery,
            allow_unbound: a.allow_unbound,
        }
    }
}

impl AgentSettings {
    fn args(&self) -> AgentArgs {
        AgentArgs {
            listen: self.listen.clone(),
            no_discovery: self.no_discovery,
            allow_unbound: self.allow_unbound,
            lock_after: None,
        }
    }
}

/// The running agent, shared by its connections.
pub(crate) struct Agent {
    pub(crate) path: PathBuf,
    pub(crate) peer_id: PeerId,
    /// Where the node listened first (ports included), to listen there again at an unlock.
    pub(crate) listen: Vec<Multiaddr>,
    args: AgentSettings,
    pub(crate) lock_after: Option<Duration>,
    /// Open or locked; each request holds it while it runs, so requests take turns.
    pub(crate) state: tokio::sync::Mutex<State>,
    /// When a command last asked for something.
    last_use: std::sync::Mutex<Instant>,
    /// Told at each use, so the idle timer starts again.
    used: Notify,
}

/// The agent's vault: owned by its running node, or locked (key dropped, file still held).
pub(crate) enum State {
    Open(Handle),
    /// The vault file, held locked so no other process opens it meanwhile.
    Locked {
        _hold: Option<std::fs::File>,
    },
    /// Stopping.
    Closed,
}

impl Agent {
    /// Notes that a command used the agent now.
    pub(crate) fn touch(&self) {
        *self.last_use.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.used.notify_one();
    }

    /// How long the agent has been idle.
    pub(crate) fn idle(&self) -> Duration {
        self.last_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Stops the node and drops the vault (and its key), keeping the file locked.
    pub(crate) async fn lock(&self, state: &mut State) {
        if let State::Open(handle) = std::mem::replace(state, State::Closed) {
            drop_vault(handle).await;
            let hold = std::fs::File::open(&self.path)
                .ok()
                .filter(|f| f.try_lock().is_ok());
            if hold.is_none() {
                warn!(
                    "locked, but could not hold {} against other processes",
                    self.path.display()
                );
            }
            info!("locked: the key is no longer in memory");
            *state = State::Locked { _hold: hold };
        }
    }

    /// Opens the vault with `password` and starts its node again.
    pub(crate) async fn unlock(&self, state: &mut State, password: Secret) -> Result<()> {
        if matches!(state, State::Open(_)) {
            return Ok(());
        }
        // Let go of the file so the store can take it; keep it again on failure.
        *state = State::Locked { _hold: None };
        let path = self.path.clone();
        let opened = tokio::task::spawn_blocking(move || open_store(&path, &password))
            .await
            .context("opening the vault")?;
        let store: Store = match opened {
            Ok(store) => store,
            Err(e) => {
                let hold = std::fs::File::open(&self.path)
                    .ok()
                    .filter(|f| f.try_lock().is_ok());
                *state = State::Locked { _hold: hold };
                return Err(e);
            }
        };
        // The same ports as before, so peers find the agent where they found it.
        let handle = match serve::start(store, self.listen.clone(), &self.args.args()).await {
            Ok(h) => h,
            Err(e) => {
                let hold = std::fs::File::open(&self.path)
                    .ok()
                    .filter(|f| f.try_lock().is_ok());
                *state = State::Locked { _hold: hold };
                return Err(e.context("serving the vault again (stop and start the agent)"));
            }
        };
        info!("unlocked");
        *state = State::Open(handle);
        Ok(())
    }

    /// Stops the node (every change is already committed) and drops the vault.
    async fn close(&self) {
        let mut state = self.state.lock().await;
        if let State::Open(handle) = std::mem::replace(&mut *state, State::Closed) {
            drop_vault(handle).await;
        }
    }
}

/// Stops `handle`'s node and drops its vault, key included.
async fn drop_vault(handle: Handle) {
    match handle.stop().await {
        Ok(vault) => drop(vault),
        Err(e) => warn!("stopping the node: {e}"),
    }
}

/// Locks the agent once it has been idle for `--lock-after`.
async fn idle_lock(agent: Arc<Agent>) {
    let Some(after) = agent.lock_after else {
        return;
    };
    loop {
        let idle = agent.idle();
        if idle < after {
            tokio::select! {
                () = tokio::time::sleep(after - idle) => {}
                () = agent.used.notified() => {}
            }
            continue;
        }
        let mut state = agent.state.lock().await;
        if matches!(*state, State::Open(_)) && agent.idle() >= after {
            info!("idle for {} s", after.as_secs());
            agent.lock(&mut state).await;
        }
        drop(state);
        // Locked: nothing to time until a command uses the agent again.
        agent.used.notified().await;
    }
}

/// `90`, `90s`, `15m`, `2h`, `1d`: a duration of at least one second.
pub(crate) fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0);
    match secs {
        Some(n) => Ok(Duration::from_secs(n)),
        None => bail!(
            "--lock-after {text:?} is not a duration (a whole number of seconds, or one \
             followed by s, m, h or d, such as 15m; at least 1 s)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        for bad in ["", "0", "m", "5x", "1.5h", "-3", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
