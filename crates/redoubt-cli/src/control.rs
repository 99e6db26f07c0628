//! The agent's control socket: where it is, and reading and writing control frames
//! (`docs/control-protocol.md`, the `redoubt-control` crate) over it.
//!
//! The socket is in a per-user runtime directory, `$XDG_RUNTIME_DIR/redoubt/` or else
//! `/tmp/redoubt-UID/`, which must be a directory of this user that no one else may enter
//! (created 0700); it is named for the vault file, so two vaults get two agents. The agent
//! creates it 0600 and checks each connection's peer credentials as well.

use std::{
    io::{Read, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use redoubt_control::{HEADER_LEN, Request, Response, frame, message};
use zeroize::Zeroizing;

/// This process's real user id.
pub(crate) fn my_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The runtime directory the agent's sockets are in (not created).
fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(base) if !base.is_empty() => PathBuf::from(base).join("redoubt"),
        _ => std::env::temp_dir().join(format!("redoubt-{}", my_uid())),
    }
}

/// Checks that `dir` is a directory of this user that no other user may enter (not a
/// symbolic link): only then is a socket in it this user's agent.
fn check_private(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("reading the agent directory {}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != my_uid() || mode & 0o077 != 0 {
        bail!(
            "the agent directory {} is not a private directory of this user (owner uid {}, \
             mode {mode:04o}, {}); remove it, or set XDG_RUNTIME_DIR",
            dir.display(),
            meta.uid(),
            if meta.is_dir() {
                "a directory"
            } else {
                "not a directory"
            }
        );
    }
    Ok(())
}

/// The socket's file name for the vault at `vault`: a hash of its canonical path.
fn socket_name(vault: &Path) -> Result<String> {
    let canonical = vault
        .canonicalize()
        .with_context(|| format!("resolving {}", vault.display()))?;
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    Ok(format!("agent-{}.sock", &hash.to_hex()[..16]))
}

/// Where the agent of the vault at `vault` listens, creating the runtime directory (0700).
pub(crate) fn socket_for_agent(vault: &Path) -> Result<PathBuf> {
    let dir = runtime_dir();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("creating the agent directory {}", dir.display()));
        }
    }
    check_private(&dir)?;
    Ok(dir.join(socket_name(vault)?))
}

/// Where the agent of the vault at `vault` would listen, if its directory exists and is
/// private to this user (`None` when there is no directory: no agent runs).
pub(crate) fn socket_of(vault: &Path) -> Result<Option<PathBuf>> {
    let dir = runtime_dir();
    if !dir.exists() {
        return Ok(None);
    }
    check_private(&dir)?;
    Ok(Some(dir.join(socket_name(vault)?)))
}

/// A connection to a running agent, from a command.
pub(crate) struct Connection {
    stream: std::os::unix::net::UnixStream,
}

impl Connection {
    /// The agent of the vault at `vault`, or `None` when none runs (no socket, or a socket
    /// left behind by an agent that was killed).
    pub(crate) fn to_agent_of(vault: &Path) -> Result<Option<Self>> {
        if !vault.exists() {
            return Ok(None);
        }
        let Some(path) = socket_of(vault)? else {
            return Ok(None);
        };
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(stream) => Ok(Some(Self { stream })),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => {
                Err(e).with_context(|| format!("connecting to the agent at {}", path.display()))
            }
        }
    }

    /// Sends `request` and reads its answer: each item response goes to `item`, the final
    /// one is returned; an error response becomes an error with the agent's message.
    pub(crate) fn ask(
        &mut self,
        request: &Request,
        mut item: impl FnMut(Response) -> Result<()>,
    ) -> Result<Response> {
        let bytes = message::encode_request(request)?;
        self.stream
            .write_all(&bytes)
            .context("sending a request to the agent")?;
        loop {
            let response = self.read()?;
            match response {
                Response::Error { message, .. } => bail!("{message}"),
                r if r.is_item() => item(r)?,
                r => return Ok(r),
            }
        }
    }

    fn read(&mut self) -> Result<Response> {
        let mut head = [0u8; HEADER_LEN];
        self.stream
            .read_exact(&mut head)
            .context("the agent closed the connection before it answered")?;
        let len = frame::header(&head)?;
        let mut payload = Zeroizing::new(vec![0u8; len]);
        self.stream
            .read_exact(&mut payload)
            .context("reading the agent's answer")?;
        Ok(message::decode_response(&payload)?)
    }
}

/// Reads one request frame from an agent's connection: `None` at a clean end of the stream.
/// The length is checked before the payload is allocated.
pub(crate) async fn read_request(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<Option<Result<Request, redoubt_control::Error>>> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; HEADER_LEN];
    match stream.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = match frame::header(&head) {
        Ok(len) => len,
        Err(e) => return Ok(Some(Err(e))),
    };
    let mut payload = Zeroizing::new(vec![0u8; len]);
    stream.read_exact(&mut payload).await?;
    Ok(Some(message::decode_request(&payload)))
}

/// Writes one response frame on an agent's connection.
pub(crate) async fn write_response(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    response: &Response,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(&message::encode_response(response)?)
        .await?;
    Ok(())
}
