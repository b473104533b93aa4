//! A content MD5 held as its 16 bytes. Inventories keep one per object, so
//! at 100,000 objects the difference from a 32-character hex `String` (a
//! heap allocation each) is several megabytes per inventory.

use std::fmt;

use md5::{Digest, Md5};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The MD5 of an object's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Md5Digest([u8; 16]);

impl Md5Digest {
    /// Parses 32 hex digits (either case); anything else is `None`.
    pub fn from_hex(text: &str) -> Option<Md5Digest> {
        let text = text.as_bytes();
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(Md5Digest(bytes))
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl From<[u8; 16]> for Md5Digest {
    fn from(bytes: [u8; 16]) -> Md5Digest {
        Md5Digest(bytes)
    }
}

/// The digest of everything `hasher` was fed.
impl From<Md5> for Md5Digest {
    fn from(hasher: Md5) -> Md5Digest {
        Md5Digest(hasher.finalize().into())
    }
}

/// Lowercase hex, as tools and listings print it.
impl fmt::Display for Md5Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Md5Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Md5Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Md5Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Md5Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Md5Digest::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an MD5: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_in_lowercase() {
        let digest = Md5Digest::from_hex("D41D8CD98F00B204E9800998ECF8427E").unwrap();
        assert_eq!(digest.to_string(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(Md5Digest::from_hex(&digest.to_string()), Some(digest));
    }

    #[test]
    fn anything_but_32_hex_digits_is_not_an_md5() {
        for text in ["", "d41d8cd9", "x41d8cd98f00b204e9800998ecf8427e", "abc-2"] {
            assert_eq!(Md5Digest::from_hex(text), None, "{text}");
        }
    }

    #[test]
    fn it_serializes_as_hex_and_refuses_other_text() {
        let json = "\"0123456789abcdef0123456789abcdef\"";
        let digest: Md5Digest = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&digest).unwrap(), json);
        assert!(serde_json::from_str::<Md5Digest>("\"nope\"").is_err());
    }
}
