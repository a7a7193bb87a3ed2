//! 128-bit identifiers (UUID bytes) for organizations, locks, places, credentials and commands.

use std::fmt;

/// A 16-byte identifier. The server uses UUIDs; the wire carries their raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 16]);

impl Id {
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Fresh random id from the injected CSPRNG.
    pub fn random(rng: &dyn ring::rand::SecureRandom) -> Result<Self, crate::keys::CryptoError> {
        let mut b = [0u8; 16];
        rng.fill(&mut b)
            .map_err(|_| crate::keys::CryptoError::Rng)?;
        Ok(Self(b))
    }

    /// Parses 32 hex digits, with or without UUID dashes.
    pub fn parse(s: &str) -> Option<Self> {
        let clean: String = s.chars().filter(|c| *c != '-').collect();
        let mut out = [0u8; 16];
        hex::decode_to_slice(clean, &mut out).ok()?;
        Some(Self(out))
    }

    /// Canonical UUID text form (8-4-4-4-12, lower case).
    pub fn to_uuid_string(&self) -> String {
        let h = hex::encode(self.0);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_uuid_string())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uuid_string())
    }
}

// JSON carries ids in their UUID text form, so they can be map keys and read by people.
impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_uuid_string())
    }
}

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::parse(&text).ok_or_else(|| serde::de::Error::custom("invalid id"))
    }
}
