//! The JSON hub protocol's decoder: any bytes either decode or fail with a `ProtocolError`,
//! and every message decoded survives encode → decode unchanged.
#![no_main]

use bytes::BytesMut;
use hub::protocol::{Decoded, HubProtocol, JsonHubProtocol};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    let protocol = JsonHubProtocol;
    let mut input = BytesMut::from(data);
    // A connection decodes messages off the front until it runs out or fails.
    for _ in 0..64 {
        let before = input.len();
        match protocol.decode(&mut input, LIMIT) {
            Ok(Decoded::Message(message)) => {
                let mut out = Vec::new();
                protocol.encode_message(&message, &mut out);
                let mut again = BytesMut::from(&out[..]);
                match protocol.decode(&mut again, usize::MAX) {
                    Ok(Decoded::Message(decoded)) => assert_eq!(decoded, message, "round trip"),
                    other => panic!("re-decoding {message:?} gave {other:?}"),
                }
                assert!(again.is_empty(), "encode wrote one whole record");
            }
            Ok(Decoded::Unknown) => {}
            Ok(Decoded::Incomplete) | Err(_) => break,
        }
        assert!(input.len() < before, "a decoded message consumes input");
    }
});
