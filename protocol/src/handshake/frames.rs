//! Handshake frames and their strict codecs. See `docs/protocol.md` for the byte layouts.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::Id;
use crate::keys::{PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::reason::Reason;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

pub const HELLO: u8 = 0x01;
pub const CHALLENGE: u8 = 0x02;
pub const AUTH: u8 = 0x03;
pub const RESULT: u8 = 0x04;
pub const ERROR: u8 = 0x7F;

pub const NONCE_LEN: usize = 16;
pub(crate) const MAX_CERT_FIELD: usize = crate::certificate::MAX_CERTIFICATE_LEN;
pub(crate) const MAX_SEALED_AUTH: usize = 16 + 64 + 2 + crate::credential::MAX_CREDENTIAL_LEN + 16;
pub(crate) const MAX_SEALED_RESULT: usize = 64;
pub const HELLO_LEN: usize = 1 + 1 + 1 + 16 + PUBLIC_KEY_LEN;

/// What the phone asks the door to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A person tapped the door in the app.
    Unlock = 1,
    /// Hands-free unlock on approach; the door applies its own RSSI check too.
    WalkUp = 2,
}

impl Action {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Action::Unlock),
            2 => Some(Action::WalkUp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u8,
    pub action: u8,
    pub lock: Id,
    pub phone_ephemeral: [u8; PUBLIC_KEY_LEN],
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(HELLO)
            .u8(self.version)
            .u8(self.action)
            .bytes(&self.lock.0)
            .bytes(&self.phone_ephemeral);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_type(&mut r, HELLO)?;
        let hello = Hello {
            version: r.u8("version")?,
            action: r.u8("action")?,
            lock: Id(r.array("lock id")?),
            phone_ephemeral: r.array("phone ephemeral key")?,
        };
        r.finish("HELLO")?;
        Ok(hello)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub version: u8,
    pub door_ephemeral: [u8; PUBLIC_KEY_LEN],
    pub nonce: [u8; NONCE_LEN],
    pub certificate: Vec<u8>,
    pub signature: [u8; SIGNATURE_LEN],
}

impl Challenge {
    /// Everything the door signs, i.e. the frame without its trailing signature.
    pub fn encode_unsigned(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(CHALLENGE)
            .u8(self.version)
            .bytes(&self.door_ephemeral)
            .bytes(&self.nonce);
        w.var_bytes(&self.certificate);
        w.into_vec()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_unsigned();
        out.extend_from_slice(&self.signature);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_type(&mut r, CHALLENGE)?;
        let c = Challenge {
            version: r.u8("version")?,
            door_ephemeral: r.array("door ephemeral key")?,
            nonce: r.array("nonce")?,
            certificate: r.var_bytes(MAX_CERT_FIELD, "certificate")?.to_vec(),
            signature: r.array("door signature")?,
        };
        r.finish("CHALLENGE")?;
        Ok(c)
    }
}

/// AUTH and RESULT share one shape: a type, an explicit counter and an AEAD-sealed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub frame_type: u8,
    pub counter: u32,
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.frame_type)
            .u32(self.counter)
            .var_bytes(&self.ciphertext);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8], frame_type: u8) -> Result<Self, DecodeError> {
        let max = if frame_type == AUTH {
            MAX_SEALED_AUTH
        } else {
            MAX_SEALED_RESULT
        };
        let mut r = Reader::new(bytes);
        expect_type(&mut r, frame_type)?;
        let s = Sealed {
            frame_type,
            counter: r.u32("counter")?,
            ciphertext: r.var_bytes(max, "ciphertext")?.to_vec(),
        };
        r.finish("sealed frame")?;
        Ok(s)
    }

    /// Associated data: the frame header, so type and counter cannot be swapped.
    pub fn aad(frame_type: u8, counter: u32) -> [u8; 5] {
        let c = counter.to_be_bytes();
        [frame_type, c[0], c[1], c[2], c[3]]
    }
}

/// Plaintext inside AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthBody {
    pub command_id: Id,
    pub device_signature: [u8; SIGNATURE_LEN],
    pub credential: Vec<u8>,
}

impl AuthBody {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.command_id.0)
            .bytes(&self.device_signature)
            .var_bytes(&self.credential);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let b = AuthBody {
            command_id: Id(r.array("command id")?),
            device_signature: r.array("device signature")?,
            credential: r
                .var_bytes(crate::credential::MAX_CREDENTIAL_LEN, "credential")?
                .to_vec(),
        };
        r.finish("AUTH body")?;
        Ok(b)
    }
}

/// Plaintext inside RESULT: the door's verdict, authenticated by the session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResultBody {
    pub command_id: Id,
    pub granted: bool,
    /// `None` when granted.
    pub reason: Option<Reason>,
    /// The door's event-log sequence number for this attempt.
    pub event_seq: u64,
    /// How long the relay is held open, milliseconds (0 when denied).
    pub relay_ms: u32,
    /// Set when the command id was already executed: the door did not actuate again.
    pub duplicate: bool,
}

impl ResultBody {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let flags = u8::from(self.granted) | (u8::from(self.duplicate) << 1);
        w.bytes(&self.command_id.0)
            .u8(flags)
            .u16(self.reason.map_or(0, Reason::wire));
        w.u64(self.event_seq).u32(self.relay_ms);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let command_id = Id(r.array("command id")?);
        let flags = r.u8("result flags")?;
        if flags & !0b11 != 0 {
            return Err(DecodeError::BadValue {
                field: "result flags",
                value: flags as u64,
            });
        }
        let wire = r.u16("reason")?;
        let reason = match wire {
            0 => None,
            n => Some(Reason::from_wire(n).ok_or(DecodeError::BadValue {
                field: "reason",
                value: n as u64,
            })?),
        };
        let granted = flags & 1 != 0;
        if granted == reason.is_some() {
            return Err(DecodeError::BadValue {
                field: "reason",
                value: wire as u64,
            });
        }
        let b = ResultBody {
            command_id,
            granted,
            reason,
            event_seq: r.u64("event seq")?,
            relay_ms: r.u32("relay ms")?,
            duplicate: flags & 2 != 0,
        };
        r.finish("RESULT body")?;
        Ok(b)
    }
}

/// Plaintext error the door sends before a session key exists.
pub fn encode_error(reason: Reason) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(ERROR).u16(reason.wire());
    w.into_vec()
}

pub fn decode_error(bytes: &[u8]) -> Result<Reason, DecodeError> {
    let mut r = Reader::new(bytes);
    expect_type(&mut r, ERROR)?;
    let n = r.u16("reason")?;
    r.finish("ERROR")?;
    Reason::from_wire(n).ok_or(DecodeError::BadValue {
        field: "reason",
        value: n as u64,
    })
}

fn expect_type(r: &mut Reader<'_>, t: u8) -> Result<(), DecodeError> {
    let got = r.u8("frame type")?;
    if got != t {
        return Err(DecodeError::BadValue {
            field: "frame type",
            value: got as u64,
        });
    }
    Ok(())
}
