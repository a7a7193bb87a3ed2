//! Bounded big-endian reader and writer used by every binary format in this crate.
//!
//! Decoding is strict: every length is checked against what remains and against a hard cap
//! before anything is allocated, and a decoder must consume its input exactly.

use crate::reason::Reason;

/// Why a byte string could not be decoded. Every variant maps to [`Reason::MalformedFrame`]
/// or [`Reason::FrameTooLarge`] so the door can log it in the shared vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input ended early while reading {0}")]
    Truncated(&'static str),
    #[error("{0} has {1} trailing bytes")]
    TrailingBytes(&'static str, usize),
    #[error("{field} length {len} exceeds the limit {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("unexpected {field} value {value}")]
    BadValue { field: &'static str, value: u64 },
}

impl DecodeError {
    pub fn reason(&self) -> Reason {
        match self {
            DecodeError::TooLong { .. } => Reason::FrameTooLarge,
            _ => Reason::MalformedFrame,
        }
    }
}

/// Cursor over an input slice; never reads past the end.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(what));
        }
        let out = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A byte string with a u16 length prefix, at most `max` long.
    pub fn var_bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong {
                field: what,
                len,
                max,
            });
        }
        self.bytes(len, what)
    }

    /// A UTF-8 string with a u8 length prefix.
    pub fn short_str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.u8(what)? as usize;
        let raw = self.bytes(len, what)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::BadValue {
            field: what,
            value: 0,
        })
    }

    /// A count prefix (u8) checked against `max` before the caller allocates.
    pub fn count(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.u8(what)? as usize;
        if n > max {
            return Err(DecodeError::TooLong {
                field: what,
                len: n,
                max,
            });
        }
        Ok(n)
    }

    /// A u16 count prefix checked against `max`.
    pub fn count16(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.u16(what)? as usize;
        if n > max {
            return Err(DecodeError::TooLong {
                field: what,
                len: n,
                max,
            });
        }
        Ok(n)
    }

    pub fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(what, n)),
        }
    }
}

/// Append-only output buffer mirroring [`Reader`].
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Length-prefixed (u16). Callers keep `v` within the decoder's cap.
    pub fn var_bytes(&mut self, v: &[u8]) -> &mut Self {
        debug_assert!(v.len() <= u16::MAX as usize);
        self.u16(v.len() as u16).bytes(v)
    }

    pub fn short_str(&mut self, v: &str) -> &mut Self {
        debug_assert!(v.len() <= u8::MAX as usize);
        self.u8(v.len() as u8).bytes(v.as_bytes())
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}
