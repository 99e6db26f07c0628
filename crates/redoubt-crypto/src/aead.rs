//! Authenticated encryption: ChaCha20-Poly1305 and XChaCha20-Poly1305 with an explicit nonce
//! and associated data. The output is `ciphertext ‖ 16-byte tag`, as the algorithms define it.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, XChaCha20Poly1305,
    aead::{Aead, Nonce, Payload, consts::U32},
};
use zeroize::Zeroizing;

use crate::{Error, Key};

/// Length of a ChaCha20-Poly1305 nonce, in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of an XChaCha20-Poly1305 nonce, in bytes.
pub const XNONCE_LEN: usize = 24;
/// Length of the authentication tag a sealed message ends with, in bytes.
pub const TAG_LEN: usize = 16;

/// Seals `plaintext` with ChaCha20-Poly1305 under `key` and `nonce`, binding `aad`. A nonce
/// must never repeat under one key: callers derive it from a counter under a fresh key.
pub fn seal(
    key: &Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    seal_with::<ChaCha20Poly1305>(key, nonce.into(), aad, plaintext)
}

/// Opens what [`seal`] made, returning the plaintext (wiped on drop). Any change to the key,
/// the nonce, `aad` or the sealed bytes fails with [`Error::Authentication`].
pub fn open(
    key: &Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    open_with::<ChaCha20Poly1305>(key, nonce.into(), aad, sealed)
}

/// Seals `plaintext` with XChaCha20-Poly1305 under `key` and a 192-bit `nonce` (long enough to
/// draw at random for every message), binding `aad`.
pub fn seal_x(
    key: &Key,
    nonce: &[u8; XNONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    seal_with::<XChaCha20Poly1305>(key, nonce.into(), aad, plaintext)
}

/// Opens what [`seal_x`] made; any change fails with [`Error::Authentication`].
pub fn open_x(
    key: &Key,
    nonce: &[u8; XNONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    open_with::<XChaCha20Poly1305>(key, nonce.into(), aad, sealed)
}

fn seal_with<C: KeyInit<KeySize = U32> + Aead>(
    key: &Key,
    nonce: &Nonce<C>,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let msg = plaintext;
    C::new(key.expose().into())
        .encrypt(nonce, Payload { msg, aad })
        .map_err(|_| Error::TooLarge)
}

fn open_with<C: KeyInit<KeySize = U32> + Aead>(
    key: &Key,
    nonce: &Nonce<C>,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    C::new(key.expose().into())
        .decrypt(nonce, Payload { msg: sealed, aad })
        .map(Zeroizing::new)
        .map_err(|_| Error::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key() -> Key {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = 0x80 + i as u8;
        }
        Key::from_bytes(k)
    }

    const AAD: &str = "50515253c0c1c2c3c4c5c6c7";
    const PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you \
        only one tip for the future, sunscreen would be it.";

    /// RFC 8439, section 2.8.2.
    #[test]
    fn chacha20_poly1305_known_answer() {
        let nonce: [u8; 12] = unhex("070000004041424344454647").try_into().unwrap();
        let expected = unhex(
            "d31a8d34648e60db7b86afbc53ef7ec2 a4aded51296e08fea9e2b5a736ee62d6
             3dbea45e8ca9671282fafb69da92728b 1a71de0a9e060b2905d6a5b67ecd3b36
             92ddbd7f2d778b8c9803aee328091b58 fab324e4fad675945585808b4831d7bc
             3ff4def08e4b7a9de576d26586cec64b 6116
             1ae10b594f09e26a7e902ecbd0600691",
        );
        let sealed = seal(&key(), &nonce, &unhex(AAD), PLAINTEXT).unwrap();
        assert_eq!(sealed, expected);
        assert_eq!(sealed.len(), PLAINTEXT.len() + TAG_LEN);
        let opened = open(&key(), &nonce, &unhex(AAD), &sealed).unwrap();
        assert_eq!(&opened[..], PLAINTEXT);
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn xchacha20_poly1305_known_answer() {
        let nonce: [u8; 24] = unhex("404142434445464748494a4b4c4d4e4f5051525354555657")
            .try_into()
            .unwrap();
        let expected = unhex(
            "bd6d179d3e83d43b9576579493c0e939 572a1700252bfaccbed2902c21396cbb
             731c7f1b0b4aa6440bf3a82f4eda7e39 ae64c6708c54c216cb96b72e1213b452
             2f8c9ba40db5d945b11b69b982c1bb9e 3f3fac2bc369488f76b2383565d3fff9
             21f9664c97637da9768812f615c68b13 b52e
             c0875924c1c7987947deafd8780acf49",
        );
        let sealed = seal_x(&key(), &nonce, &unhex(AAD), PLAINTEXT).unwrap();
        assert_eq!(sealed, expected);
        let opened = open_x(&key(), &nonce, &unhex(AAD), &sealed).unwrap();
        assert_eq!(&opened[..], PLAINTEXT);
    }

    /// A changed tag, ciphertext byte, nonce, key or associated data fails, in both ciphers.
    #[test]
    fn any_change_fails_to_open() {
        let (k, aad, msg) = (key(), b"aad".as_slice(), b"message".as_slice());
        let other = Key::from_bytes([1; 32]);
        let sealed = seal(&k, &[0; 12], aad, msg).unwrap();
        let mut tag = sealed.clone();
        *tag.last_mut().unwrap() ^= 1;
        for bad in [
            open(&k, &[0; 12], aad, &tag),
            open(&k, &[0; 12], b"aae", &sealed),
            open(&k, &[1; 12], aad, &sealed),
            open(&other, &[0; 12], aad, &sealed),
            open(&k, &[0; 12], aad, &sealed[..sealed.len() - 1]),
            open(&k, &[0; 12], aad, &[]),
        ] {
            assert!(matches!(bad, Err(Error::Authentication)));
        }
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x40;
            assert!(open(&k, &[0; 12], aad, &t).is_err(), "byte {i}");
        }

        let sealed = seal_x(&k, &[0; 24], aad, msg).unwrap();
        let mut tag = sealed.clone();
        tag[msg.len()] ^= 1;
        for bad in [
            open_x(&k, &[0; 24], aad, &tag),
            open_x(&k, &[0; 24], b"", &sealed),
            open_x(&k, &[2; 24], aad, &sealed),
            open_x(&other, &[0; 24], aad, &sealed),
        ] {
            assert!(matches!(bad, Err(Error::Authentication)));
        }
        assert_eq!(&open_x(&k, &[0; 24], aad, &sealed).unwrap()[..], msg);
    }
}
