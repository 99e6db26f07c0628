//! Pairing codes (`NN-DDDD-DDDD`) and the QR payload that carries one with the host's address.

use std::{fmt, str::FromStr};

use spake2::Password;
use zeroize::Zeroizing;

use super::{MAX_PAYLOAD_ADDRS, PAYLOAD_PREFIX, SECRET_DIGITS};
use crate::Error;

/// A one-time pairing code, `NN-DDDD-DDDD`: a public nameplate (10–99) that tells hosts on
/// the same network apart, and eight secret digits. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PairCode {
    nameplate: u16,
    secret: Zeroizing<String>,
}

impl PairCode {
    /// A fresh code from the system's random number generator.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 16]);
        getrandom::fill(bytes.as_mut()).map_err(|_| Error::Random)?;
        let mut x = Zeroizing::new(u128::from_le_bytes(*bytes));
        // 2^128 is so much larger than 90 * 10^8 that the modulo bias is below 2^-90.
        let nameplate = 10 + (*x % 90) as u16;
        *x /= 90;
        let mut secret = Zeroizing::new(String::with_capacity(SECRET_DIGITS));
        for _ in 0..SECRET_DIGITS {
            secret.push(char::from(b'0' + (*x % 10) as u8));
            *x /= 10;
        }
        Ok(Self { nameplate, secret })
    }

    /// The public nameplate.
    pub fn nameplate(&self) -> u16 {
        self.nameplate
    }

    pub(super) fn password(&self) -> Password {
        Password::new(self.secret.as_bytes())
    }
}

impl fmt::Display for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.nameplate,
            &self.secret[..4],
            &self.secret[4..]
        )
    }
}

impl fmt::Debug for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairCode({}-....-....)", self.nameplate)
    }
}

impl FromStr for PairCode {
    type Err = Error;

    /// Parses `NN-DDDD-DDDD`; spaces and dashes between digits are ignored, so `42 7315 0986`
    /// and `4273150986` read the same.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut digits = Zeroizing::new(String::new());
        for c in s.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '-' | ' ' => {}
                _ => return Err(Error::BadCode("a code holds digits and dashes only")),
            }
        }
        if digits.len() != 2 + SECRET_DIGITS {
            return Err(Error::BadCode("a code has 10 digits: NN-DDDD-DDDD"));
        }
        let nameplate: u16 = digits[..2]
            .parse()
            .map_err(|_| Error::BadCode("bad nameplate"))?;
        if nameplate < 10 {
            return Err(Error::BadCode("a code starts with 10 to 99"));
        }
        Ok(Self {
            nameplate,
            secret: Zeroizing::new(digits[2..].to_string()),
        })
    }
}

/// What a QR code carries: the code, the host's peer id and its addresses (as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairPayload {
    /// The code.
    pub code: PairCode,
    /// The host's peer id, base58.
    pub peer: String,
    /// Multiaddresses to dial, as text.
    pub addrs: Vec<String>,
}

impl fmt::Display for PairPayload {
    /// `redoubt-pair:1:CODE:PEER:ADDR,ADDR,...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PAYLOAD_PREFIX}{}:{}:{}",
            self.code,
            self.peer,
            self.addrs.join(",")
        )
    }
}

impl FromStr for PairPayload {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let rest = s
            .trim()
            .strip_prefix(PAYLOAD_PREFIX)
            .ok_or(Error::BadCode("a payload starts with redoubt-pair:1:"))?;
        let mut parts = rest.splitn(3, ':');
        let (Some(code), Some(peer), Some(addrs)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::BadCode("a payload is CODE:PEER:ADDRS"));
        };
        let addrs: Vec<String> = addrs
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if peer.is_empty() || peer.len() > redoubt_vault::MAX_PEER_ID_LEN {
            return Err(Error::BadCode("bad peer id in the payload"));
        }
        if addrs.len() > MAX_PAYLOAD_ADDRS {
            return Err(Error::BadCode("too many addresses in the payload"));
        }
        Ok(Self {
            code: code.parse()?,
            peer: peer.to_string(),
            addrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_payloads_parse_and_hide_their_secret() {
        let code: PairCode = "42-7315-0986".parse().unwrap();
        assert_eq!(code.nameplate(), 42);
        assert_eq!(code.to_string(), "42-7315-0986");
        assert_eq!("42 7315 0986".parse::<PairCode>().unwrap(), code);
        assert!(!format!("{code:?}").contains("7315"));
        for bad in [
            "",
            "42-7315-098",
            "42-7315-09861",
            "07-1234-5678",
            "42-73a5-0986",
        ] {
            assert!(bad.parse::<PairCode>().is_err(), "{bad}");
        }
        let payload = PairPayload {
            code: code.clone(),
            peer: "12D3KooWabc".into(),
            addrs: vec!["/ip4/127.0.0.1/tcp/7450".into()],
        };
        let text = payload.to_string();
        assert_eq!(
            text,
            "redoubt-pair:1:42-7315-0986:12D3KooWabc:/ip4/127.0.0.1/tcp/7450"
        );
        assert_eq!(text.parse::<PairPayload>().unwrap(), payload);
        let generated = PairCode::generate().unwrap();
        assert_eq!(
            generated.to_string().parse::<PairCode>().unwrap(),
            generated
        );
        assert!((10..100).contains(&generated.nameplate()));
    }
}
