//! The envelope shared by every organization-signed object (credentials, controller
//! certificates, revocation lists, time statements, cloud command orders, key endorsements,
//! configuration seals):
//!
//! ```text
//! kind u8 | version u8 | org id [16] | key id [8] | body ... | signature [64]
//! ```
//!
//! The signature covers every byte before it, so the kind and version are bound too.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::Id;
use crate::keys::{CryptoError, KeyId, SIGNATURE_LEN, Signature, SigningKey};
use crate::reason::Reason;
use crate::trust::TrustedKeys;
use ring::rand::SecureRandom;

/// Object kinds; the first byte of every signed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Credential = 0x10,
    ControllerCertificate = 0x11,
    RevocationList = 0x12,
    TimeStatement = 0x13,
    CommandOrder = 0x14,
    KeyEndorsement = 0x15,
    ConfigSeal = 0x16,
}

/// The only encoding version defined so far.
pub const OBJECT_VERSION: u8 = 1;

/// Header fields common to every signed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub org: Id,
    pub key_id: KeyId,
}

/// A writer holding the header of a new `kind` object signed by `org`'s `key`; the caller
/// appends the body and passes it to [`seal`].
pub(crate) fn begin(kind: Kind, org: Id, key: &SigningKey) -> Writer {
    begin_version(kind, OBJECT_VERSION, org, key)
}

/// [`begin`] for a kind with more than one encoding version.
pub(crate) fn begin_version(kind: Kind, version: u8, org: Id, key: &SigningKey) -> Writer {
    let mut w = Writer::new();
    w.u8(kind as u8)
        .u8(version)
        .bytes(&org.0)
        .bytes(&key.key_id().0);
    w
}

/// Appends the organization signature over everything written so far.
pub(crate) fn seal(
    w: Writer,
    key: &SigningKey,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, CryptoError> {
    let mut bytes = w.into_vec();
    let sig = key.sign(rng, &bytes)?;
    bytes.extend_from_slice(&sig.0);
    Ok(bytes)
}

/// A decoded but not yet verified object: header, a reader over the body, the signed bytes.
pub(crate) struct Opened<'a> {
    pub header: Header,
    pub version: u8,
    pub body: Reader<'a>,
    pub signed: &'a [u8],
    pub signature: Signature,
}

/// Splits the signature off and parses the header; fails on kind or version mismatch.
pub(crate) fn open(bytes: &[u8], kind: Kind, max_len: usize) -> Result<Opened<'_>, OpenError> {
    open_versions(bytes, kind, max_len, &[OBJECT_VERSION])
}

/// [`open`] accepting any of `versions` (the caller reads `Opened::version`).
pub(crate) fn open_versions<'a>(
    bytes: &'a [u8],
    kind: Kind,
    max_len: usize,
    versions: &[u8],
) -> Result<Opened<'a>, OpenError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLong {
            field: "signed object",
            len: bytes.len(),
            max: max_len,
        }
        .into());
    }
    if bytes.len() < 2 + 16 + 8 + SIGNATURE_LEN {
        return Err(DecodeError::Truncated("signed object").into());
    }
    let (signed, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let mut r = Reader::new(signed);
    let got_kind = r.u8("kind")?;
    if got_kind != kind as u8 {
        return Err(DecodeError::BadValue {
            field: "kind",
            value: got_kind as u64,
        }
        .into());
    }
    let version = r.u8("version")?;
    if !versions.contains(&version) {
        return Err(OpenError::UnsupportedVersion(version));
    }
    let org = Id(r.array("org id")?);
    let key_id = KeyId(r.array("key id")?);
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(sig);
    Ok(Opened {
        header: Header { org, key_id },
        version,
        body: r,
        signed,
        signature: Signature(signature),
    })
}

impl Opened<'_> {
    /// Checks the organization signature against the trusted key ring.
    pub fn verify(&self, trusted: &TrustedKeys, bad_signature: Reason) -> Result<(), Reason> {
        let key = trusted.find(self.header.org, self.header.key_id)?;
        if key.verify(self.signed, &self.signature) {
            Ok(())
        } else {
            Err(bad_signature)
        }
    }
}

/// Why a signed object failed to open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("unsupported object version {0}")]
    UnsupportedVersion(u8),
}

impl OpenError {
    pub fn reason(&self) -> Reason {
        match self {
            OpenError::Decode(e) => e.reason(),
            OpenError::UnsupportedVersion(_) => Reason::UnsupportedVersion,
        }
    }
}
