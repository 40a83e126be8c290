//! The hub codecs' shared harness: any bytes either decode or fail with a `ProtocolError`, and
//! every message decoded survives encode → decode unchanged.

use bytes::BytesMut;
use hub::protocol::{Decoded, HubProtocol};

const LIMIT: usize = 32 * 1024;

pub fn round_trip(protocol: &dyn HubProtocol, data: &[u8]) {
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
                assert!(again.is_empty(), "encode wrote one whole frame");
            }
            Ok(Decoded::Unknown) => {}
            Ok(Decoded::Incomplete) | Err(_) => break,
        }
        assert!(input.len() < before, "a decoded message consumes input");
    }
}
