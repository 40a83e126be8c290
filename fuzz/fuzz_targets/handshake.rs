//! The handshake request: any bytes give a request, "not yet", or an error text.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = BytesMut::from(data);
    let before = input.len();
    if let Ok(Some(_request)) = hub::handshake::parse_request(&mut input, 32 * 1024) {
        assert!(
            input.len() < before,
            "the handshake record is taken off the input"
        );
    }
});
