//! What Web PubSub clients send: any frame parses or is refused; a message that parses and
//! carries data re-encodes (as the group message its members get) into JSON whose `data` is
//! the sender's, on both subprotocols. Access tokens of any text verify or are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use router::{Encoder, Frame, GroupMessage, Outbound};
use webpubsub::inbound::{parse, ClientMessage};
use webpubsub::{Subprotocol, WebPubSubEncoder};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rthub::webpubsub::token::verify("a-fuzzing-access-key-0000", text, "app");
    }
    let Ok(message) = parse(data) else {
        return;
    };
    let (group, payload) = match message {
        ClientMessage::SendToGroup { group, data, .. } => (group, data),
        ClientMessage::Event { event, data, .. } => (event, data),
        _ => return,
    };
    let expected = payload.to_json();
    let outbound = Outbound::Group(GroupMessage::new(group.as_str(), payload));
    for subprotocol in [Subprotocol::Json, Subprotocol::JsonReliable] {
        let encoder = WebPubSubEncoder::new(subprotocol, "app");
        let bytes = match encoder.encode(&outbound) {
            Some(Frame::Whole(bytes)) => bytes,
            Some(Frame::Stamped(stamped)) => stamped.stamp(u64::MAX),
            None => panic!("a group message always has a frame"),
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
        assert_eq!(value["group"], group.as_str());
        assert_eq!(value["data"], expected);
    }
});
