//! Where a JetStream message sits in its stream, read from its `$JS.ACK`
//! reply subject (ADR-15) by taking two tokens apart.
//!
//! async-nats's `Message::info` parses every token of that subject (the
//! publish time as an `i128` of nanoseconds among them) and each ingest path
//! calls it once per message only to learn the stream and the stream
//! sequence. [`stream_position`] accepts exactly the token counts `info`
//! accepts, the original 7 tokens after `$JS.ACK.` and 9 or more with the
//! domain and account hash in front, and returns the same stream and
//! sequence; it does not check the tokens it does not return.

/// A message's stream and its sequence there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamPosition<'a> {
    /// The stream's name.
    pub(crate) stream: &'a str,
    /// The message's sequence in the stream.
    pub(crate) seq: u64,
}

/// The stream position in a JetStream reply subject, or `None` when the
/// subject is not one (a core message, a malformed subject).
pub(crate) fn stream_position(reply: &str) -> Option<StreamPosition<'_>> {
    let rest = reply.strip_prefix("$JS.ACK.")?;
    // Where each of the first ten tokens starts and ends, as async-nats
    // counts them (a byte scan: `str::split` costs several times more).
    let mut tokens: [(usize, usize); 10] = [(0, 0); 10];
    let mut count = 0;
    let mut start = 0;
    for (i, &b) in rest.as_bytes().iter().enumerate() {
        if b == b'.' {
            if let Some(slot) = tokens.get_mut(count) {
                *slot = (start, i);
            }
            count += 1;
            start = i + 1;
        }
    }
    if let Some(slot) = tokens.get_mut(count) {
        *slot = (start, rest.len());
    }
    count += 1;
    let token = |i: usize| tokens.get(i).and_then(|&(a, b)| rest.get(a..b));
    let (stream, seq) = match count {
        7 => (token(0)?, token(3)?),
        9.. => (token(2)?, token(5)?),
        _ => return None,
    };
    Some(StreamPosition {
        stream,
        seq: seq.parse().ok()?,
    })
}

/// The stream sequence of a message read from a consumer, or 0 when its
/// reply subject is not an ack subject.
pub(crate) fn stream_seq(msg: &async_nats::Message) -> u64 {
    msg.reply
        .as_deref()
        .and_then(stream_position)
        .map_or(0, |at| at.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stream: &str, seq: u64) -> Option<StreamPosition<'_>> {
        Some(StreamPosition { stream, seq })
    }

    #[test]
    fn reads_the_original_seven_token_form() {
        assert_eq!(
            stream_position("$JS.ACK.SIGNALS.signalbox.1.4021.4020.1733570000000000000.12"),
            at("SIGNALS", 4021)
        );
    }

    #[test]
    fn reads_the_form_with_domain_and_account_hash() {
        // nats-server 2.10+ without a domain writes `_`, and may add a token.
        let subject = "$JS.ACK._.ACCHASH.SIGNALS.signalbox.2.77.70.1733570000000000000.0";
        assert_eq!(stream_position(subject), at("SIGNALS", 77));
        let with_token = format!("{subject}.k3Jt9");
        assert_eq!(stream_position(&with_token), at("SIGNALS", 77));
        let hub = "$JS.ACK.hub.ACCHASH.ORDERS.c.1.5.5.1733570000000000000.0.tok.more";
        assert_eq!(stream_position(hub), at("ORDERS", 5));
    }

    #[test]
    fn refuses_what_is_not_an_ack_subject() {
        for subject in [
            "",
            "_INBOX.abc",
            "$JS.ACK.",
            "$JS.ACK.S.c.1.2.3.4",                      // six tokens
            "$JS.ACK.S.c.1.2.3.4.5.6",                  // eight tokens
            "$JS.ACK.S.c.1.x.3.4.5",                    // sequence not a number
            "$JS.ACK.S.c.1.-2.3.4.5",                   // nor negative
            "$JS.ACK._.H.S.c.1..3.4.5",                 // nor empty
            "$JS.ACK.S.c.1.18446744073709551616.3.4.5", // past u64
        ] {
            assert_eq!(stream_position(subject), None, "{subject}");
        }
    }
}
