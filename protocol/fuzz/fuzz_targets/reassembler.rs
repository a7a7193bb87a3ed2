//! GATT reassembly: the input is split into fragments at 0xFF-prefixed length bytes.
#![no_main]
use keyway_protocol::gatt::{MAX_MESSAGE_LEN, Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (frag, next) = tail.split_at(n);
        if let Ok(Some(msg)) = r.push(frag) {
            assert!(msg.len() <= MAX_MESSAGE_LEN);
        }
        rest = next;
    }
});
