//! Sending hub messages to one connection in its protocol.

use crate::protocol::{HubMessage, HubProtocol};
use negotiate::Outbox;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct Writer {
    outbox: Outbox,
    protocol: Arc<dyn HubProtocol>,
}

impl Writer {
    pub fn new(outbox: Outbox, protocol: Arc<dyn HubProtocol>) -> Self {
        Self { outbox, protocol }
    }

    /// Queue one message. A full or closing outbox means the connection is already going
    /// down, so there is nothing more to do about a refusal here.
    pub fn send(&self, message: &HubMessage) {
        let frame = self.protocol.to_bytes(message);
        let _ = if message.is_sequenced() {
            self.outbox.push(frame)
        } else {
            self.outbox.push_control(frame)
        };
    }

    /// Queue a last message and close the connection after it.
    pub fn send_and_close(&self, message: &HubMessage) {
        self.outbox.push_and_close(self.protocol.to_bytes(message));
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}
