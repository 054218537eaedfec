//! A hostile source adapter for the host's tests. The envelope's topic picks the
//! misbehaviour: `huge` returns 100 000 signals, `big-params` one signal with
//! 4 MiB of params, `garbage` a signal the model rejects, `loop` spins forever,
//! `retry` asks for a retry; anything else yields one valid signal.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "hostile-adapter".into(),
            argument_shape: "topic: huge | big-params | garbage | loop | retry".into(),
            version: "0".into(),
        }
    }
}

fn signal(name: &str, params: String) -> Signal {
    Signal {
        name: name.into(),
        id: None,
        params,
        payload: None,
    }
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        match envelope.topic.as_str() {
            "huge" => Ok((0..100_000)
                .map(|i| signal("flood", format!("{{\"i\":{i}}}")))
                .collect()),
            "big-params" => Ok(vec![signal(
                "big",
                format!("{{\"x\":\"{}\"}}", "a".repeat(4 << 20)),
            )]),
            "garbage" => Ok(vec![signal("-bad name-", "[1,2".into())]),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "retry" => Err(DecodeError::Retry("try later".into())),
            _ => Ok(vec![signal("fine", "{\"ok\":true}".into())]),
        }
    }
}

export!(Plugin);
