//! The replies to the drainer's JetStream publishes, read from one inbox
//! subscription per drainer instead of one request per firing.
//!
//! Each JetStream publish carries the reply subject `<inbox>.<n>`, where `n`
//! counts the drainer's publishes. The settling task reads that inbox's one
//! wildcard subscription and matches each reply to its number. A stream's
//! `PubAck` (`{"stream":…,"seq":…}`, with `"duplicate":true` when the
//! `Nats-Msg-Id` was seen within the duplicate window) settles the firing; an
//! API error (`{"error":{…}}`), a no-responders status (no stream captures
//! the subject any more) or no reply before the deadline fails it, and the
//! drainer publishes it again under the same `Nats-Msg-Id`.
//!
//! This is what async-nats's JetStream publish does per request (an inbox, a
//! channel and a timer per firing, the reply buffered before it is parsed),
//! done once per pass: the numbers of a pass are consecutive, so finding a
//! reply's firing is a binary search.
//!
//! Invariants: a number is used once per inbox; replies are settled only for
//! the numbers a round asks for, so a late reply to a round that already gave
//! up is dropped (its firing was failed and goes out again); replies that
//! arrive before their round are kept until it asks, and dropped once a
//! later round has started past them.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

/// The reply subjects of one drainer's JetStream publishes.
pub(super) struct AckInbox {
    prefix: String,
    next: u64,
}

impl AckInbox {
    /// The next publish's number and reply subject.
    pub(super) fn next_reply(&mut self) -> (u64, String) {
        let n = self.next;
        self.next += 1;
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n);
        let mut reply = String::with_capacity(self.prefix.len() + 1 + digits.len());
        reply.push_str(&self.prefix);
        reply.push('.');
        reply.push_str(digits);
        (n, reply)
    }
}

/// Reads the replies of one [`AckInbox`].
pub(super) struct AckReplies {
    prefix_dot: String,
    sub: async_nats::Subscriber,
    /// Replies that came before their round asked for them.
    early: HashMap<u64, Result<(), String>>,
}

/// Subscribes to a new inbox on `client`.
pub(super) async fn open(
    client: &async_nats::Client,
) -> Result<(AckInbox, AckReplies), async_nats::SubscribeError> {
    let prefix = format!("{}.acks", client.new_inbox());
    let sub = client.subscribe(format!("{prefix}.*")).await?;
    Ok((
        AckInbox {
            prefix: prefix.clone(),
            next: 0,
        },
        AckReplies {
            prefix_dot: format!("{prefix}."),
            sub,
            early: HashMap::new(),
        },
    ))
}

impl AckReplies {
    /// The replies to the publishes numbered `wanted` (ascending), in that
    /// order; a number without a reply within `timeout` is an error.
    pub(super) async fn collect(
        &mut self,
        wanted: &[u64],
        timeout: Duration,
    ) -> Vec<Result<(), String>> {
        let mut answers = Answers::new(wanted, &mut self.early);
        // One timer for the round, not one per reply.
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        while answers.missing > 0 {
            let next = tokio::select! {
                next = self.sub.next() => Ok(next),
                () = &mut deadline => Err(()),
            };
            match next {
                Ok(Some(msg)) => {
                    let Some(n) = msg
                        .subject
                        .as_str()
                        .strip_prefix(self.prefix_dot.as_str())
                        .and_then(|n| n.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    answers.offer(n, reply_result(&msg), &mut self.early);
                }
                // The subscription ended (the client is closing): what is
                // missing fails below.
                Ok(None) => break,
                // The deadline passed.
                Err(()) => break,
            }
        }
        answers.finish(timeout)
    }
}

/// The answers of one round, and where a reply that is not for it goes.
struct Answers<'w> {
    wanted: &'w [u64],
    got: Vec<Option<Result<(), String>>>,
    missing: usize,
}

impl<'w> Answers<'w> {
    /// Starts a round: earlier replies below it are dropped, those for it taken.
    fn new(wanted: &'w [u64], early: &mut HashMap<u64, Result<(), String>>) -> Self {
        let mut got = vec![None; wanted.len()];
        let mut missing = wanted.len();
        if let Some(&first) = wanted.first() {
            early.retain(|&n, _| n >= first);
            for (slot, n) in got.iter_mut().zip(wanted) {
                if let Some(answer) = early.remove(n) {
                    *slot = Some(answer);
                    missing -= 1;
                }
            }
        }
        Answers {
            wanted,
            got,
            missing,
        }
    }

    /// Files reply `n`: into this round, kept for a later one, or dropped
    /// (a round that already ended, or a repeat).
    fn offer(
        &mut self,
        n: u64,
        answer: Result<(), String>,
        early: &mut HashMap<u64, Result<(), String>>,
    ) {
        match self.wanted.binary_search(&n) {
            Ok(i) => {
                if self.got[i].is_none() {
                    self.got[i] = Some(answer);
                    self.missing -= 1;
                }
            }
            Err(_) => {
                if self.wanted.last().is_some_and(|&last| n > last) {
                    early.insert(n, answer);
                }
            }
        }
    }

    fn finish(self, timeout: Duration) -> Vec<Result<(), String>> {
        self.got
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(format!(
                        "timed out: no ack within {} ms",
                        timeout.as_millis()
                    ))
                })
            })
            .collect()
    }
}

/// A stream's reply to a publish: `{"error": {…}}` or a `PubAck`.
#[derive(serde::Deserialize)]
struct Reply {
    #[serde(default)]
    error: Option<async_nats::jetstream::Error>,
    #[serde(default)]
    stream: Option<serde::de::IgnoredAny>,
}

/// Whether one reply acknowledges its publish.
fn reply_result(msg: &async_nats::Message) -> Result<(), String> {
    if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        return Err("no stream found for given subject (no responders)".to_string());
    }
    // nats-server writes an ack as `{"stream":…,"seq":…}` (an error's
    // `"error"` member comes first): such a reply with no `"error"` in it
    // is an ack, without parsing it.
    let payload = msg.payload.as_ref();
    if payload.starts_with(br#"{"stream":""#)
        && payload.ends_with(b"}")
        && !payload.windows(7).any(|w| w == br#""error""#)
    {
        return Ok(());
    }
    match serde_json::from_slice::<Reply>(payload) {
        Ok(Reply {
            error: Some(error), ..
        }) => Err(format!("publish failed: {error}")),
        Ok(Reply {
            stream: Some(_), ..
        }) => Ok(()),
        Ok(_) => Err(format!(
            "publish failed: a reply that is neither an ack nor an error: {}",
            String::from_utf8_lossy(&msg.payload)
        )),
        Err(e) => Err(format!("publish failed: unreadable reply ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(payload: &str, status: Option<async_nats::StatusCode>) -> async_nats::Message {
        async_nats::Message {
            subject: "_INBOX.x.acks.1".into(),
            reply: None,
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
            headers: None,
            status,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn acks_duplicates_errors_and_no_responders_are_told_apart() {
        assert_eq!(
            reply_result(&reply(r#"{"stream":"RUNS","seq":7}"#, None)),
            Ok(())
        );
        assert_eq!(
            reply_result(&reply(
                r#"{"stream":"RUNS","seq":7,"duplicate":true}"#,
                None
            )),
            Ok(())
        );
        let err = reply_result(&reply(
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
            None,
        ))
        .expect_err("an API error");
        assert!(err.contains("maximum messages exceeded"), "{err}");
        assert!(err.contains("10077"), "{err}");
        let err = reply_result(&reply("", Some(async_nats::StatusCode::NO_RESPONDERS)))
            .expect_err("no responders");
        assert!(err.contains("no stream"), "{err}");
        assert!(reply_result(&reply("{}", None)).is_err());
        assert!(reply_result(&reply("not json", None)).is_err());
        // Not taken for an ack without parsing: an error after the stream,
        // a reply cut short.
        let err = reply_result(&reply(
            r#"{"stream":"RUNS","error":{"code":500,"description":"boom"}}"#,
            None,
        ))
        .expect_err("an error after the stream");
        assert!(err.contains("boom"), "{err}");
        assert!(reply_result(&reply(r#"{"stream":"RUNS","seq":7"#, None)).is_err());
    }

    #[test]
    fn reply_subjects_are_the_prefix_and_a_growing_number() {
        let mut inbox = AckInbox {
            prefix: "_INBOX.abc.acks".into(),
            next: 9,
        };
        assert_eq!(inbox.next_reply(), (9, "_INBOX.abc.acks.9".to_string()));
        assert_eq!(inbox.next_reply(), (10, "_INBOX.abc.acks.10".to_string()));
    }

    #[test]
    fn a_round_takes_its_replies_keeps_later_ones_and_drops_stale_ones() {
        let mut early = HashMap::new();
        early.insert(3, Ok(()));
        early.insert(11, Err("kept".to_string()));
        // Round 10..=12: 3 is stale (its round is over), 11 came early.
        let wanted = [10, 11, 12];
        let mut answers = Answers::new(&wanted, &mut early);
        assert!(early.is_empty(), "{early:?}");
        assert_eq!(answers.missing, 2);
        answers.offer(12, Ok(()), &mut early);
        answers.offer(12, Err("a repeat".into()), &mut early);
        answers.offer(9, Ok(()), &mut early); // a round that ended
        answers.offer(13, Ok(()), &mut early); // the next round's
        assert_eq!(answers.missing, 1);
        assert_eq!(early.keys().copied().collect::<Vec<_>>(), vec![13]);
        let got = answers.finish(Duration::from_millis(5));
        assert!(got[0].as_ref().is_err_and(|e| e.contains("no ack")));
        assert_eq!(got[1], Err("kept".to_string()));
        assert_eq!(got[2], Ok(()));
    }
}
