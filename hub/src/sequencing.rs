//! Stateful reconnect on the receiving side: numbering the client's hub messages, dropping the
//! ones replayed twice, and deciding when to acknowledge.

use crate::protocol::HubMessage;

/// The .NET and JS text for a client that claims more than it sent.
pub(crate) const SEQUENCE_TOO_HIGH: &str =
    "Sequence ID greater than amount of messages we've received.";

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    Process,
    /// A duplicate, or input between a re-attach and the client's `Sequence`.
    Skip,
}

#[derive(Debug)]
pub(crate) struct Sequencing {
    /// The highest sequence id processed.
    received: u64,
    /// The id the next sequenced message from the client carries.
    next_incoming: u64,
    /// The highest id acknowledged to the client.
    acked: u64,
    /// After a re-attach, input is discarded until the client's `Sequence`.
    awaiting_sequence: bool,
}

impl Sequencing {
    pub fn new() -> Self {
        Self {
            received: 0,
            next_incoming: 1,
            acked: 0,
            awaiting_sequence: false,
        }
    }

    pub fn reattached(&mut self) {
        self.awaiting_sequence = true;
    }

    /// The client's `Sequence`: it resends from `id` on.
    pub fn sequence(&mut self, id: u64) -> Result<(), &'static str> {
        if id > self.received + 1 {
            return Err(SEQUENCE_TOO_HIGH);
        }
        self.next_incoming = id;
        self.awaiting_sequence = false;
        Ok(())
    }

    /// Whether to act on a message other than Ack and Sequence.
    pub fn admit(&mut self, message: &HubMessage) -> Admit {
        if self.awaiting_sequence {
            return Admit::Skip;
        }
        if !message.is_sequenced() {
            return Admit::Process;
        }
        let id = self.next_incoming;
        self.next_incoming += 1;
        if id <= self.received {
            return Admit::Skip;
        }
        self.received = id;
        Admit::Process
    }

    /// The id to acknowledge, if anything new arrived since the last Ack.
    pub fn take_ack(&mut self) -> Option<u64> {
        (self.received > self.acked).then(|| {
            self.acked = self.received;
            self.received
        })
    }

    pub fn ack_pending(&self) -> bool {
        self.received > self.acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation() -> HubMessage {
        HubMessage::CancelInvocation {
            headers: Default::default(),
            invocation_id: "1".into(),
        }
    }

    #[test]
    fn replayed_messages_are_processed_once() {
        let mut s = Sequencing::new();
        for _ in 0..3 {
            assert_eq!(s.admit(&invocation()), Admit::Process);
        }
        assert_eq!(
            s.admit(&HubMessage::Ping),
            Admit::Process,
            "pings are not numbered"
        );
        assert_eq!(s.take_ack(), Some(3));
        assert_eq!(s.take_ack(), None);

        s.reattached();
        assert_eq!(
            s.admit(&invocation()),
            Admit::Skip,
            "before the client's Sequence"
        );
        // The client resends from 2: messages 2 and 3 are duplicates, 4 is new.
        s.sequence(2).unwrap();
        assert_eq!(s.admit(&invocation()), Admit::Skip);
        assert_eq!(s.admit(&invocation()), Admit::Skip);
        assert_eq!(s.admit(&invocation()), Admit::Process);
        assert!(s.ack_pending());
        assert_eq!(s.take_ack(), Some(4));
    }

    #[test]
    fn a_sequence_beyond_what_was_received_is_an_error() {
        let mut s = Sequencing::new();
        s.admit(&invocation());
        assert_eq!(s.sequence(3), Err(SEQUENCE_TOO_HIGH));
        assert_eq!(s.sequence(2), Ok(()));
    }
}
