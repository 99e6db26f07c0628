//! Remotes a host shares in a version 3 `Welcome` (`docs/pairing.md`, "Version 3"): each
//! remote's name, URL, clients and storage key, sealed under a key only the two devices that
//! ran this SPAKE2 session hold.
//!
//! ```text
//! remotes key = BLAKE3-derive_key("redoubt pair v3 remotes key", SPAKE2 key)
//! sealed      = nonce (24) ‖ XChaCha20-Poly1305(remotes key, nonce, AAD, plaintext)
//! AAD         = "redoubt pair v3 remotes" ‖ 0x00 ‖ n: u32 ‖ (u16 length ‖ client) × n
//!               (the Welcome's client list, exactly as the frame carries it)
//! plaintext   = count: u16 (≤ 64) ‖ remote × count
//! remote      = name: u16 length ‖ 1–128 bytes UTF-8 ‖ url: u16 length ‖ 1–4096 bytes UTF-8
//!               ‖ every client: u8 (1: no list follows; 0: a list follows)
//!               ‖ [clients: u16 count (1–1024) ‖ (u16 length ‖ 1–1024 bytes) × count]
//!               ‖ storage key (32)
//! ```

use std::fmt;

use redoubt_crypto::{KEY_LEN, Key, XNONCE_LEN, derive, is_versioned};
use zeroize::Zeroizing;

use crate::{
    Error,
    codec::{Reader, Writer},
};

/// `blake3::derive_key` context of the key the shared remotes are sealed under.
pub const REMOTES_KEY_CONTEXT: &str = "redoubt pair v3 remotes key";
/// Associated-data label of the sealed remotes.
pub const REMOTES_AAD_LABEL: &[u8] = b"redoubt pair v3 remotes";
/// Most remotes one `Welcome` shares.
pub const MAX_SHARED_REMOTES: usize = 64;
/// Longest remote name, bytes.
pub const MAX_REMOTE_NAME_LEN: usize = 128;
/// Longest remote URL, bytes.
pub const MAX_REMOTE_URL_LEN: usize = 4096;
/// Most clients one shared remote names.
pub const MAX_REMOTE_CLIENTS: usize = 1024;
/// Largest sealed remotes field of a `Welcome`, bytes (checked before anything is allocated).
pub const MAX_SEALED_REMOTES_LEN: usize = 1024 * 1024;
/// Bytes the seal adds: the nonce and the tag.
pub const REMOTES_SEAL_OVERHEAD: usize = XNONCE_LEN + redoubt_crypto::TAG_LEN;

const _: () = assert!(is_versioned(REMOTES_KEY_CONTEXT));

/// One remote on shared storage, as a host shares it with the device it paired.
#[derive(Clone)]
pub struct SharedRemote {
    /// The remote's name on the host (the joiner stores it under the same name).
    pub name: String,
    /// The storage's URL (`file:///…`, a path, `s3://…`, `az://…`, `gs://…`).
    pub url: String,
    /// The clients that travel through it; `None`: every client.
    pub clients: Option<Vec<Vec<u8>>>,
    /// The storage key: it opens everything on that storage. Wiped on drop, never printed.
    pub key: Key,
}

impl SharedRemote {
    /// A remote to share, its storage key given as bytes (the caller wipes its copy).
    pub fn new(
        name: String,
        url: String,
        clients: Option<Vec<Vec<u8>>>,
        key: [u8; KEY_LEN],
    ) -> Self {
        Self {
            name,
            url,
            clients,
            key: Key::from_bytes(key),
        }
    }
}

impl fmt::Debug for SharedRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRemote")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("clients", &self.clients.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// The key the remotes of one pairing are sealed under, from its SPAKE2 key (the 32 bytes
/// SPAKE2 agreed).
pub fn remotes_key(spake_key: &[u8]) -> Key {
    derive(REMOTES_KEY_CONTEXT, spake_key)
}

/// The sealed remotes' associated data: the label and the `Welcome`'s client list.
fn aad(clients: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let mut w = Writer::with_capacity(REMOTES_AAD_LABEL.len() + 5 + clients.len() * 8);
    w.raw(REMOTES_AAD_LABEL);
    w.u8(0);
    w.count(clients.len());
    for c in clients {
        w.checked_bytes_u16(c, redoubt_vault::MAX_PATH_LEN, "client path too long")?;
    }
    Ok(w.into_bytes())
}

/// Seals `remotes` for a `Welcome` sharing `clients`, under `key` with `nonce` (fresh and
/// random for every seal; fixed only in test vectors).
pub fn seal_remotes_with(
    key: &Key,
    nonce: &[u8; XNONCE_LEN],
    clients: &[Vec<u8>],
    remotes: &[SharedRemote],
) -> Result<Vec<u8>, Error> {
    let plain = encode_plaintext(remotes)?;
    let sealed = redoubt_crypto::seal_x(key, nonce, &aad(clients)?, &plain)
        .map_err(|_| Error::Malformed("could not seal the remotes"))?;
    let mut out = Vec::with_capacity(XNONCE_LEN + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    if out.len() > MAX_SEALED_REMOTES_LEN {
        return Err(Error::Malformed("the shared remotes are over their cap"));
    }
    Ok(out)
}

/// Opens what [`seal_remotes_with`] made for a `Welcome` sharing `clients`. Fails, naming why,
/// when the bytes were altered, sealed under another key or for another client list, or do
/// not decode.
pub fn open_remotes_with(
    key: &Key,
    clients: &[Vec<u8>],
    sealed: &[u8],
) -> Result<Vec<SharedRemote>, Error> {
    if sealed.len() > MAX_SEALED_REMOTES_LEN {
        return Err(Error::Malformed("the shared remotes are over their cap"));
    }
    if sealed.len() < REMOTES_SEAL_OVERHEAD {
        return Err(Error::Malformed(
            "the shared remotes are shorter than their seal",
        ));
    }
    let (nonce, body) = sealed.split_at(XNONCE_LEN);
    let nonce: &[u8; XNONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Error::Malformed("shared remotes nonce"))?;
    let plain = redoubt_crypto::open_x(key, nonce, &aad(clients)?, body).map_err(|_| {
        Error::Malformed(
            "the shared remotes did not authenticate (altered, or not for this pairing)",
        )
    })?;
    decode_plaintext(&plain)
}

/// The plaintext of `remotes`, wiped when dropped (it holds storage keys).
pub fn encode_plaintext(remotes: &[SharedRemote]) -> Result<Zeroizing<Vec<u8>>, Error> {
    if remotes.len() > MAX_SHARED_REMOTES {
        return Err(Error::Malformed("too many shared remotes"));
    }
    let mut w = Writer::secret(2 + remotes.len() * 128);
    w.u16(remotes.len() as u16);
    for r in remotes {
        text_out(
            &mut w,
            &r.name,
            MAX_REMOTE_NAME_LEN,
            "remote name must be 1 to 128 bytes",
        )?;
        text_out(
            &mut w,
            &r.url,
            MAX_REMOTE_URL_LEN,
            "remote URL must be 1 to 4096 bytes",
        )?;
        match &r.clients {
            None => w.u8(1),
            Some(clients) => {
                if clients.is_empty() || clients.len() > MAX_REMOTE_CLIENTS {
                    return Err(Error::Malformed("a shared remote names 1 to 1024 clients"));
                }
                w.u8(0);
                w.u16(clients.len() as u16);
                for c in clients {
                    if c.is_empty() {
                        return Err(Error::Malformed("path must be 1 to 1024 bytes"));
                    }
                    w.checked_bytes_u16(
                        c,
                        redoubt_vault::MAX_PATH_LEN,
                        "path must be 1 to 1024 bytes",
                    )?;
                }
            }
        }
        w.raw(r.key.expose());
    }
    Ok(w.into_secret())
}

/// Decodes what [`encode_plaintext`] made; every count and length is checked against its cap
/// and the bytes left before anything is allocated.
pub fn decode_plaintext(bytes: &[u8]) -> Result<Vec<SharedRemote>, Error> {
    let mut r = Reader::new(bytes);
    let n = usize::from(r.u16()?);
    // The smallest remote: two 1-byte strings with their lengths, the flag and the key.
    const MIN_REMOTE: usize = 3 + 3 + 1 + KEY_LEN;
    if n > MAX_SHARED_REMOTES || n * MIN_REMOTE > r.remaining() {
        return Err(Error::Malformed("too many shared remotes"));
    }
    let mut remotes = Vec::with_capacity(n);
    for _ in 0..n {
        let name = text_in(&mut r, MAX_REMOTE_NAME_LEN, "remote name")?;
        let url = text_in(&mut r, MAX_REMOTE_URL_LEN, "remote URL")?;
        let clients = match r.u8()? {
            1 => None,
            0 => {
                let count = usize::from(r.u16()?);
                if count == 0 || count > MAX_REMOTE_CLIENTS || count * 3 > r.remaining() {
                    return Err(Error::Malformed("a shared remote names 1 to 1024 clients"));
                }
                let mut clients = Vec::with_capacity(count);
                for _ in 0..count {
                    clients.push(r.path()?.to_vec());
                }
                Some(clients)
            }
            _ => return Err(Error::Malformed("bad every-client flag")),
        };
        let key = Key::from_bytes(r.array()?);
        remotes.push(SharedRemote {
            name,
            url,
            clients,
            key,
        });
    }
    r.finish()?;
    Ok(remotes)
}

fn text_out(w: &mut Writer, s: &str, max: usize, what: &'static str) -> Result<(), Error> {
    if s.is_empty() || s.len() > max {
        return Err(Error::Malformed(what));
    }
    w.bytes_u16(s.as_bytes());
    Ok(())
}

fn text_in(r: &mut Reader<'_>, max: usize, what: &'static str) -> Result<String, Error> {
    let b = r.bytes_u16(max, what)?;
    if b.is_empty() {
        return Err(Error::Malformed(what));
    }
    String::from_utf8(b.to_vec())
        .map_err(|_| Error::Malformed("a shared remote's text is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn remote(name: &str, clients: Option<Vec<&str>>, key: u8) -> SharedRemote {
        SharedRemote {
            name: name.into(),
            url: format!("file:///srv/{name}"),
            clients: clients.map(|c| c.iter().map(|c| c.as_bytes().to_vec()).collect()),
            key: Key::from_bytes([key; 32]),
        }
    }

    fn same(a: &[SharedRemote], b: &[SharedRemote]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.name == y.name
                    && x.url == y.url
                    && x.clients == y.clients
                    && x.key.expose() == y.key.expose()
            })
    }

    #[test]
    fn seal_opens_only_for_its_key_and_clients() {
        let key = Key::from_bytes([7; 32]);
        let clients = vec![b"alice".to_vec()];
        let remotes = vec![
            remote("nas", Some(vec!["alice"]), 0x42),
            remote("all", None, 9),
        ];
        let sealed = seal_remotes_with(&key, &[1; XNONCE_LEN], &clients, &remotes).unwrap();
        let opened = open_remotes_with(&key, &clients, &sealed).unwrap();
        assert!(same(&opened, &remotes));
        let other = Key::from_bytes([8; 32]);
        assert!(
            open_remotes_with(&other, &clients, &sealed).is_err(),
            "another key"
        );
        assert!(
            open_remotes_with(&key, &[b"bob".to_vec()], &sealed).is_err(),
            "another client list"
        );
        for i in [0, XNONCE_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                open_remotes_with(&key, &clients, &bad).is_err(),
                "byte {i} flipped"
            );
        }
        assert!(open_remotes_with(&key, &clients, &sealed[..REMOTES_SEAL_OVERHEAD - 1]).is_err());
        let debug = format!("{:?}", opened[0]);
        assert!(
            debug.contains("nas") && !debug.contains("42, 42"),
            "{debug}"
        );
    }

    #[test]
    fn plaintext_caps_are_checked() {
        assert!(
            decode_plaintext(&[0xff, 0xff]).is_err(),
            "count over the cap"
        );
        assert!(decode_plaintext(&[2, 0]).is_err(), "count past the end");
        let bad_name = remote("", None, 1);
        assert!(encode_plaintext(&[bad_name]).is_err());
        let no_clients = remote("x", Some(vec![]), 1);
        assert!(encode_plaintext(&[no_clients]).is_err());
        let plain = encode_plaintext(&[remote("x", None, 1)]).unwrap();
        let mut flag = plain.to_vec();
        let at = 2 + 3 + 2 + "file:///srv/x".len();
        flag[at] = 2;
        assert!(decode_plaintext(&flag).is_err(), "flag is 0 or 1");
        let mut trailing = plain.to_vec();
        trailing.push(0);
        assert!(decode_plaintext(&trailing).is_err());
    }

    proptest! {
        #[test]
        fn plaintext_round_trips(
            names in proptest::collection::vec("[a-z]{1,8}", 0..4),
            every in any::<bool>(),
        ) {
            let remotes: Vec<_> = names
                .iter()
                .map(|n| remote(n, (!every).then(|| vec!["alice", "bob"]), 3))
                .collect();
            let plain = encode_plaintext(&remotes).unwrap();
            let back = decode_plaintext(&plain).unwrap();
            prop_assert!(same(&back, &remotes));
            prop_assert_eq!(encode_plaintext(&back).unwrap(), plain);
        }
    }
}
