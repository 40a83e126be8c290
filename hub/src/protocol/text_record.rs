//! Text framing shared by the handshake and the JSON protocol: each record ends with 0x1E.

/// The ASCII record separator that ends every JSON message and the handshake.
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// Where the first record ends (the index of its separator), looking no further than
/// `limit` bytes. `Err(())` when the record is already longer than `limit`.
pub fn find_record(input: &[u8], limit: usize) -> Result<Option<usize>, ()> {
    let window = &input[..input.len().min(limit.saturating_add(1))];
    match window.iter().position(|&b| b == RECORD_SEPARATOR) {
        Some(end) if end <= limit => Ok(Some(end)),
        Some(_) => Err(()),
        None if input.len() > limit => Err(()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_record_within_the_limit() {
        assert_eq!(find_record(b"{}\x1e{}\x1e", 10), Ok(Some(2)));
        assert_eq!(find_record(b"{\"a\"", 10), Ok(None));
        assert_eq!(find_record(b"0123456789\x1e", 10), Ok(Some(10)));
        assert_eq!(find_record(b"0123456789a\x1e", 10), Err(()));
        assert_eq!(find_record(b"0123456789ab", 10), Err(()));
    }
}
