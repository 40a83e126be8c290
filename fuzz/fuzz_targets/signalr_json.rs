//! The JSON hub protocol's decoder, through the shared codec harness (common/hub_codec.rs).
#![no_main]

#[path = "common/hub_codec.rs"]
mod hub_codec;

use hub::protocol::JsonHubProtocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hub_codec::round_trip(&JsonHubProtocol, data));
