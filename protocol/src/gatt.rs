//! GATT layout and MTU-aware fragmentation.
//!
//! The phone writes protocol messages to the control point (write without response) and the
//! door answers with notifications on the response characteristic. Each ATT payload carries
//! one fragment:
//! ```text
//! header u8 (0x80 FIRST | 0x40 LAST | seq & 0x3F) | total length u16 (FIRST only) | bytes
//! ```
//! Messages are at most [`MAX_MESSAGE_LEN`]; the reassembler refuses anything larger before
//! buffering it, and resets on any out-of-order or inconsistent fragment.

/// Keyway GATT service.
pub const SERVICE_UUID: &str = "6b657977-6179-4000-a000-000000000001";
/// Phone → door messages (write without response).
pub const CONTROL_POINT_UUID: &str = "6b657977-6179-4000-a000-000000000002";
/// Door → phone messages (notify).
pub const RESPONSE_UUID: &str = "6b657977-6179-4000-a000-000000000003";
/// The 128-bit service UUID as bytes, in the order it appears in UUID text.
pub const SERVICE_UUID_BYTES: [u8; 16] = [
    0x6b, 0x65, 0x79, 0x77, 0x61, 0x79, 0x40, 0x00, 0xa0, 0x00, 0, 0, 0, 0, 0, 0x01,
];

/// Largest protocol message either side accepts.
pub const MAX_MESSAGE_LEN: usize = 2048;
/// Smallest ATT MTU allowed by the Bluetooth spec.
pub const MIN_ATT_MTU: usize = 23;
const ATT_HEADER: usize = 3;
const FIRST: u8 = 0x80;
const LAST: u8 = 0x40;
const SEQ_MASK: u8 = 0x3F;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("empty fragment")]
    Empty,
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    TooLarge(usize),
    #[error("continuation fragment without a first fragment")]
    NoStart,
    #[error("fragment sequence {got}, expected {expected}")]
    OutOfOrder { expected: u8, got: u8 },
    #[error("fragments do not add up to the announced length")]
    LengthMismatch,
    #[error("ATT MTU {0} is below the minimum {MIN_ATT_MTU}")]
    MtuTooSmall(usize),
}

impl FragmentError {
    pub fn reason(&self) -> crate::Reason {
        match self {
            FragmentError::TooLarge(_) => crate::Reason::FrameTooLarge,
            _ => crate::Reason::MalformedFrame,
        }
    }
}

/// A fragment's sequence number and whether it ends its message, from its header (`None` for
/// an empty payload). For transports that can hand over writes out of order: they restore the
/// sender's order with it before reassembly.
pub fn fragment_seq(fragment: &[u8]) -> Option<(u8, bool)> {
    let &header = fragment.first()?;
    Some((header & SEQ_MASK, header & LAST != 0))
}

/// Splits `message` into ATT payloads for the given ATT MTU.
pub fn fragment(message: &[u8], att_mtu: usize) -> Result<Vec<Vec<u8>>, FragmentError> {
    if att_mtu < MIN_ATT_MTU {
        return Err(FragmentError::MtuTooSmall(att_mtu));
    }
    if message.is_empty() || message.len() > MAX_MESSAGE_LEN {
        return Err(FragmentError::TooLarge(message.len()));
    }
    let room = att_mtu - ATT_HEADER;
    let mut out = Vec::new();
    let mut rest = message;
    let mut seq = 0u8;
    while !rest.is_empty() || out.is_empty() {
        let first = out.is_empty();
        let take = rest.len().min(room - 1 - if first { 2 } else { 0 });
        let (chunk, tail) = rest.split_at(take);
        let mut header = seq & SEQ_MASK;
        if first {
            header |= FIRST;
        }
        if tail.is_empty() {
            header |= LAST;
        }
        let mut frag = Vec::with_capacity(chunk.len() + 3);
        frag.push(header);
        if first {
            frag.extend_from_slice(&(message.len() as u16).to_be_bytes());
        }
        frag.extend_from_slice(chunk);
        out.push(frag);
        rest = tail;
        seq = seq.wrapping_add(1);
    }
    Ok(out)
}

/// Rebuilds messages from fragments; one per connection and direction.
#[derive(Debug, Default)]
pub struct Reassembler {
    buf: Vec<u8>,
    expected_len: usize,
    next_seq: u8,
    in_progress: bool,
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one ATT payload; returns a complete message when the LAST fragment arrives.
    /// Any error drops the partial message.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, FragmentError> {
        let result = self.push_inner(fragment);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn push_inner(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, FragmentError> {
        let (&header, mut body) = fragment.split_first().ok_or(FragmentError::Empty)?;
        let seq = header & SEQ_MASK;
        if header & FIRST != 0 {
            // A new FIRST abandons any partial message (the peer restarted).
            let [hi, lo, rest @ ..] = body else {
                return Err(FragmentError::LengthMismatch);
            };
            let total = u16::from_be_bytes([*hi, *lo]) as usize;
            if total > MAX_MESSAGE_LEN {
                return Err(FragmentError::TooLarge(total));
            }
            if total == 0 || seq != 0 {
                return Err(FragmentError::LengthMismatch);
            }
            self.reset();
            self.in_progress = true;
            self.expected_len = total;
            body = rest;
        } else {
            if !self.in_progress {
                return Err(FragmentError::NoStart);
            }
            if seq != self.next_seq {
                return Err(FragmentError::OutOfOrder {
                    expected: self.next_seq,
                    got: seq,
                });
            }
        }
        if self.buf.len() + body.len() > self.expected_len {
            return Err(FragmentError::LengthMismatch);
        }
        self.buf.extend_from_slice(body);
        self.next_seq = (seq + 1) & SEQ_MASK;
        if header & LAST != 0 {
            if self.buf.len() != self.expected_len {
                return Err(FragmentError::LengthMismatch);
            }
            let msg = std::mem::take(&mut self.buf);
            self.reset();
            return Ok(Some(msg));
        }
        Ok(None)
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.expected_len = 0;
        self.next_seq = 0;
        self.in_progress = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_seq_reads_sequence_and_last() {
        let frags = fragment(&[5u8; 60], MIN_ATT_MTU).unwrap();
        let seqs: Vec<_> = frags.iter().map(|f| fragment_seq(f).unwrap()).collect();
        let n = frags.len() as u8;
        let want: Vec<_> = (0..n).map(|i| (i, i == n - 1)).collect();
        assert_eq!(seqs, want);
        assert_eq!(fragment_seq(&[]), None);
    }

    #[test]
    fn service_uuid_bytes_match_text() {
        let hex: String = SERVICE_UUID.chars().filter(|c| *c != '-').collect();
        assert_eq!(hex::encode(SERVICE_UUID_BYTES), hex);
    }

    #[test]
    fn splits_and_joins_at_minimum_mtu() {
        let msg: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let frags = fragment(&msg, MIN_ATT_MTU).unwrap();
        assert!(frags.iter().all(|f| f.len() <= MIN_ATT_MTU - 3));
        let mut r = Reassembler::new();
        let mut out = None;
        for f in &frags {
            out = r.push(f).unwrap();
        }
        assert_eq!(out.unwrap(), msg);
    }

    #[test]
    fn rejects_oversize_gaps_and_orphans() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(&[0x80 | 0x40, 0x10, 0x00]),
            Err(FragmentError::TooLarge(4096))
        );
        assert_eq!(r.push(&[0x01, 1, 2]), Err(FragmentError::NoStart));
        let frags = fragment(&[5u8; 100], 23).unwrap();
        r.push(&frags[0]).unwrap();
        assert!(matches!(
            r.push(&frags[2]),
            Err(FragmentError::OutOfOrder { .. })
        ));
        assert_eq!(r.push(&[]), Err(FragmentError::Empty));
        assert!(fragment(&[0u8; MAX_MESSAGE_LEN + 1], 185).is_err());
        assert!(fragment(&[1], 22).is_err());
    }
}
