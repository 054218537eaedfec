//! The frames between the router and a Kafka worker process (see
//! `worker.rs`), over the worker's stdin and stdout.
//!
//! A frame is a little-endian `u32` length, then a one-byte tag, then the
//! body. Strings and byte strings are a `u32` length and the bytes; optional
//! ones are a presence byte first. Invariants: a frame is written whole or
//! not at all (one `write_all` of the encoded bytes under the writer's lock),
//! a frame longer than [`MAX_FRAME`] is refused before it is read, and every
//! decode error names what was being read, so a worker that is not a
//! signalbox worker (or another version of it) is a clear error, not garbage.

use std::io::{Read, Write};

/// The protocol version; the worker refuses a `Start` of another version.
pub const VERSION: u32 = 1;

/// The largest frame accepted (a batch of big records; librdkafka's own
/// default `fetch.max.bytes` is 50 MiB).
pub const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// A frame that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The pipe failed or closed in the middle of a frame.
    #[error("the Kafka worker pipe failed: {0}")]
    Io(#[from] std::io::Error),
    /// The frame's length is over [`MAX_FRAME`].
    #[error("a Kafka worker frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLong(u32),
    /// The frame ended before `what`.
    #[error("a Kafka worker frame ended before its {0}")]
    Truncated(&'static str),
    /// A string was not UTF-8.
    #[error("a Kafka worker frame's {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// Unknown tag.
    #[error("unknown Kafka worker frame tag {0}")]
    UnknownTag(u8),
    /// The source settings did not parse.
    #[error("the Kafka worker's start settings do not parse: {0}")]
    Settings(String),
}

/// One Kafka record, as the worker read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value; none for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Its headers, in order (a header may have no value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Its timestamp in milliseconds since the epoch, if it has one.
    pub timestamp_ms: Option<i64>,
}

/// How loud a worker's log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// ERROR.
    Error,
    /// WARN.
    Warn,
    /// INFO.
    Info,
    /// DEBUG.
    Debug,
}

/// A frame from the router to the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ToWorker {
    /// The first frame: the protocol version and the source (as JSON).
    Start {
        /// [`VERSION`] of the router.
        version: u32,
        /// The source's settings, serialized `KafkaSource`.
        source_json: String,
    },
    /// The last batch is stored: these are the next offsets to read per
    /// (topic, partition). The worker commits them and reads on.
    Stored(Vec<(String, i32, i64)>),
    /// Commit what is stored, leave the group and exit.
    Stop,
}

/// A frame from the worker to the router.
#[derive(Debug, Clone, PartialEq)]
pub enum FromWorker {
    /// The consumer is created and subscribed.
    Ready,
    /// The consumer cannot be created (bad settings); the worker exits.
    Fatal(String),
    /// A batch of records; the worker reads no more until `Stored`.
    Records(Vec<Record>),
    /// A log line (librdkafka's, a rebalance, a receive error).
    Log {
        /// Its level.
        level: Level,
        /// librdkafka's facility (e.g. `FAIL`), or empty.
        facility: String,
        /// The line.
        message: String,
    },
    /// Consumer lag per assigned partition: (topic, partition, lag).
    Lag(Vec<(String, i32, i64)>),
}

const T_START: u8 = 1;
const T_STORED: u8 = 2;
const T_STOP: u8 = 3;
const T_READY: u8 = 10;
const T_FATAL: u8 = 11;
const T_RECORDS: u8 = 12;
const T_LOG: u8 = 13;
const T_LAG: u8 = 14;

/// Builds one frame's bytes.
struct Out(Vec<u8>);

impl Out {
    fn new(tag: u8) -> Out {
        let mut v = vec![0; 4];
        v.push(tag);
        Out(v)
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        // Frames are bounded by MAX_FRAME, far below u32::MAX.
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
    fn offsets(&mut self, list: &[(String, i32, i64)]) {
        self.u32(list.len() as u32);
        for (topic, partition, n) in list {
            self.bytes(topic.as_bytes());
            self.i32(*partition);
            self.i64(*n);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

/// Reads one frame's body.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        self.array(what).map(u32::from_le_bytes)
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        self.array(what).map(i32::from_le_bytes)
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, WireError> {
        self.array(what).map(i64::from_le_bytes)
    }
    fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.u32(what)? as usize;
        Ok(self.take(n, what)?.to_vec())
    }
    fn string(&mut self, what: &'static str) -> Result<String, WireError> {
        String::from_utf8(self.bytes(what)?).map_err(|_| WireError::NotUtf8(what))
    }
    fn opt_bytes(&mut self, what: &'static str) -> Result<Option<Vec<u8>>, WireError> {
        match self.u8(what)? {
            0 => Ok(None),
            _ => self.bytes(what).map(Some),
        }
    }
    fn offsets(&mut self) -> Result<Vec<(String, i32, i64)>, WireError> {
        let n = self.u32("offset count")?;
        let mut list = Vec::new();
        for _ in 0..n {
            list.push((
                self.string("topic")?,
                self.i32("partition")?,
                self.i64("offset")?,
            ));
        }
        Ok(list)
    }
}

impl ToWorker {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToWorker::Start {
                version,
                source_json,
            } => {
                let mut o = Out::new(T_START);
                o.u32(*version);
                o.bytes(source_json.as_bytes());
                o.finish()
            }
            ToWorker::Stored(list) => {
                let mut o = Out::new(T_STORED);
                o.offsets(list);
                o.finish()
            }
            ToWorker::Stop => Out::new(T_STOP).finish(),
        }
    }

    fn decode(tag: u8, body: &[u8]) -> Result<ToWorker, WireError> {
        let mut i = In(body);
        match tag {
            T_START => Ok(ToWorker::Start {
                version: i.u32("version")?,
                source_json: i.string("source settings")?,
            }),
            T_STORED => Ok(ToWorker::Stored(i.offsets()?)),
            T_STOP => Ok(ToWorker::Stop),
            other => Err(WireError::UnknownTag(other)),
        }
    }
}

impl FromWorker {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FromWorker::Ready => Out::new(T_READY).finish(),
            FromWorker::Fatal(m) => {
                let mut o = Out::new(T_FATAL);
                o.bytes(m.as_bytes());
                o.finish()
            }
            FromWorker::Records(records) => {
                let mut o = Out::new(T_RECORDS);
                o.u32(records.len() as u32);
                for r in records {
                    o.bytes(r.topic.as_bytes());
                    o.i32(r.partition);
                    o.i64(r.offset);
                    o.opt_bytes(r.key.as_deref());
                    o.opt_bytes(r.payload.as_deref());
                    o.u32(r.headers.len() as u32);
                    for (k, v) in &r.headers {
                        o.bytes(k.as_bytes());
                        o.opt_bytes(v.as_deref());
                    }
                    match r.timestamp_ms {
                        Some(t) => {
                            o.u8(1);
                            o.i64(t);
                        }
                        None => o.u8(0),
                    }
                }
                o.finish()
            }
            FromWorker::Log {
                level,
                facility,
                message,
            } => {
                let mut o = Out::new(T_LOG);
                o.u8(match level {
                    Level::Error => 0,
                    Level::Warn => 1,
                    Level::Info => 2,
                    Level::Debug => 3,
                });
                o.bytes(facility.as_bytes());
                o.bytes(message.as_bytes());
                o.finish()
            }
            FromWorker::Lag(list) => {
                let mut o = Out::new(T_LAG);
                o.offsets(list);
                o.finish()
            }
        }
    }

    fn decode(tag: u8, body: &[u8]) -> Result<FromWorker, WireError> {
        let mut i = In(body);
        match tag {
            T_READY => Ok(FromWorker::Ready),
            T_FATAL => Ok(FromWorker::Fatal(i.string("fatal message")?)),
            T_RECORDS => {
                let n = i.u32("record count")?;
                let mut records = Vec::new();
                for _ in 0..n {
                    let topic = i.string("topic")?;
                    let partition = i.i32("partition")?;
                    let offset = i.i64("offset")?;
                    let key = i.opt_bytes("key")?;
                    let payload = i.opt_bytes("value")?;
                    let mut headers = Vec::new();
                    for _ in 0..i.u32("header count")? {
                        headers.push((i.string("header name")?, i.opt_bytes("header value")?));
                    }
                    let timestamp_ms = match i.u8("timestamp")? {
                        0 => None,
                        _ => Some(i.i64("timestamp")?),
                    };
                    records.push(Record {
                        topic,
                        partition,
                        offset,
                        key,
                        payload,
                        headers,
                        timestamp_ms,
                    });
                }
                Ok(FromWorker::Records(records))
            }
            T_LOG => {
                let level = match i.u8("log level")? {
                    0 => Level::Error,
                    1 => Level::Warn,
                    2 => Level::Info,
                    _ => Level::Debug,
                };
                Ok(FromWorker::Log {
                    level,
                    facility: i.string("log facility")?,
                    message: i.string("log message")?,
                })
            }
            T_LAG => Ok(FromWorker::Lag(i.offsets()?)),
            other => Err(WireError::UnknownTag(other)),
        }
    }
}

/// Reads one frame's tag and body; `Ok(None)` at a clean end of the stream
/// (the other side closed the pipe between frames).
fn read_raw(r: &mut impl Read) -> Result<Option<(u8, Vec<u8>)>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(WireError::TooLong(len));
    }
    if len == 0 {
        return Err(WireError::Truncated("tag"));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    let tag = body[0];
    body.remove(0);
    Ok(Some((tag, body)))
}

/// Reads the next frame to the worker (`None`: the router closed the pipe).
pub fn read_to_worker(r: &mut impl Read) -> Result<Option<ToWorker>, WireError> {
    match read_raw(r)? {
        Some((tag, body)) => ToWorker::decode(tag, &body).map(Some),
        None => Ok(None),
    }
}

/// Reads the next frame from the worker (`None`: the worker closed the pipe,
/// usually because it exited).
pub fn read_from_worker(r: &mut impl Read) -> Result<Option<FromWorker>, WireError> {
    match read_raw(r)? {
        Some((tag, body)) => FromWorker::decode(tag, &body).map(Some),
        None => Ok(None),
    }
}

/// Writes one encoded frame and flushes.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64) -> Record {
        Record {
            topic: "orders".into(),
            partition: 2,
            offset,
            key: Some(b"k".to_vec()),
            payload: None,
            headers: vec![
                ("traceparent".into(), Some(b"00-ab".to_vec())),
                ("empty".into(), None),
            ],
            timestamp_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn every_frame_reads_back_as_written() {
        let from = [
            FromWorker::Ready,
            FromWorker::Fatal("bad".into()),
            FromWorker::Records(vec![record(7), record(8)]),
            FromWorker::Log {
                level: Level::Warn,
                facility: "FAIL".into(),
                message: "Connection refused".into(),
            },
            FromWorker::Lag(vec![("orders".into(), 0, 12)]),
        ];
        let mut stream = Vec::new();
        for f in &from {
            stream.extend(f.encode());
        }
        let mut r = stream.as_slice();
        for f in &from {
            assert_eq!(read_from_worker(&mut r).expect("reads").as_ref(), Some(f));
        }
        assert_eq!(read_from_worker(&mut r).expect("clean end"), None);

        let to = [
            ToWorker::Start {
                version: VERSION,
                source_json: "{}".into(),
            },
            ToWorker::Stored(vec![("orders".into(), 1, 40)]),
            ToWorker::Stop,
        ];
        let mut stream = Vec::new();
        for f in &to {
            stream.extend(f.encode());
        }
        let mut r = stream.as_slice();
        for f in &to {
            assert_eq!(read_to_worker(&mut r).expect("reads").as_ref(), Some(f));
        }
    }

    #[test]
    fn a_cut_or_foreign_frame_is_an_error_that_says_what() {
        let frame = FromWorker::Records(vec![record(1)]).encode();
        // Cut inside the body: the pipe closed mid-frame.
        let mut cut = &frame[..frame.len() - 3];
        assert!(matches!(read_from_worker(&mut cut), Err(WireError::Io(_))));
        // A consistent length but a short body: names the field.
        let mut short = frame[..frame.len() - 3].to_vec();
        let len = (short.len() - 4) as u32;
        short[..4].copy_from_slice(&len.to_le_bytes());
        let err = read_from_worker(&mut short.as_slice()).expect_err("short");
        assert!(err.to_string().contains("timestamp"), "{err}");
        // Text on stdout (not a worker) reads as a huge length or a bad tag.
        let mut text = &b"running 0 tests\n"[..];
        assert!(read_from_worker(&mut text).is_err());
        let mut tag = &[1u8, 0, 0, 0, 99][..];
        assert!(matches!(
            read_from_worker(&mut tag),
            Err(WireError::UnknownTag(99))
        ));
    }
}
