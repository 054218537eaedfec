//! The plain Rust types of the host's public API, independent of the generated
//! bindings: a plugin's description, its world, and the envelope handed to an
//! adapter. Conversions to and from the WIT types live next to each use.

/// What a plugin says about itself (its `describe` export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The name the plugin gives itself.
    pub name: String,
    /// Its argument (operators) or settings (adapters), for humans.
    pub argument_shape: String,
    /// The plugin's own version.
    pub version: String,
}

/// The world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `signalbox:plugin/operator@0.1.0`.
    Operator,
    /// `signalbox:plugin/source-adapter@0.1.0`.
    SourceAdapter,
}

impl World {
    /// The world's WIT name.
    pub fn wit_name(self) -> &'static str {
        match self {
            World::Operator => "signalbox:plugin/operator@0.1.0",
            World::SourceAdapter => "signalbox:plugin/source-adapter@0.1.0",
        }
    }
}

/// The transport a message came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A Kafka record.
    Kafka,
    /// An AWS SNS notification.
    Sns,
    /// An HTTP request.
    Http,
    /// A NATS message.
    Nats,
}

/// One received message, as handed to an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Which transport delivered it.
    pub transport: Transport,
    /// Kafka topic, SNS topic ARN, HTTP path or NATS subject.
    pub topic: String,
    /// Kafka key or NATS reply subject.
    pub key: Option<String>,
    /// Headers in arrival order (HTTP names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// Transport details (`partition`, `offset`, `message-id`, `method` …).
    pub metadata: Vec<(String, String)>,
    /// When the host received it, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

impl Envelope {
    /// An envelope with just a transport, topic and body; the rest empty and
    /// the receive time now.
    pub fn new(
        transport: Transport,
        topic: impl Into<String>,
        body: impl Into<Vec<u8>>,
    ) -> Envelope {
        Envelope {
            transport,
            topic: topic.into(),
            key: None,
            headers: Vec::new(),
            body: body.into(),
            metadata: Vec::new(),
            received_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Envelope {
        self.headers.push((name.into(), value.into()));
        self
    }
}
