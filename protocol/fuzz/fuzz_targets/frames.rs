//! Every handshake frame decoder and the advertisement decoder on arbitrary bytes.
#![no_main]
use keyway_protocol::advert::Advertisement;
use keyway_protocol::handshake::frames::{self, AuthBody, Challenge, Hello, ResultBody, Sealed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Hello::decode(data) {
        assert_eq!(h.encode(), data);
    }
    if let Ok(c) = Challenge::decode(data) {
        assert_eq!(c.encode(), data);
    }
    let _ = Sealed::decode(data, frames::AUTH);
    let _ = Sealed::decode(data, frames::RESULT);
    let _ = AuthBody::decode(data);
    if let Ok(r) = ResultBody::decode(data) {
        assert_eq!(r.encode(), data);
    }
    let _ = frames::decode_error(data);
    let _ = Advertisement::decode(data);
});
