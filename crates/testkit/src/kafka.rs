//! A real Kafka-protocol broker for the tests, and an independent client.
//!
//! [`TestKafka`] runs `tansu` (installed by `scripts/setup.sh --test`) on a
//! free loopback port with in-memory storage and kills it on drop. Records are
//! produced, topics created and group offsets read with the `confluent-kafka`
//! Python package (`kafka_client.py`): a client that shares no code with
//! signalbox's consumer, so the tests see what a real producer sees.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;

use crate::KillOnDrop;

const CLIENT: &str = include_str!("kafka_client.py");

/// One record to produce.
#[derive(Debug, Clone, Default)]
pub struct KafkaRecord {
    /// The record key.
    pub key: Option<String>,
    /// The value (None: a tombstone).
    pub value: Option<String>,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The partition (None: the producer's partitioner picks by key).
    pub partition: Option<i32>,
}

impl KafkaRecord {
    /// A record with just a value.
    pub fn value(v: impl Into<String>) -> KafkaRecord {
        KafkaRecord {
            value: Some(v.into()),
            ..KafkaRecord::default()
        }
    }

    /// The same record sent to `partition`.
    pub fn to_partition(mut self, partition: i32) -> KafkaRecord {
        self.partition = Some(partition);
        self
    }
}

/// A tansu broker on a free port, killed on drop.
pub struct TestKafka {
    child: KillOnDrop,
    port: u16,
}

fn tansu_binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("SIGNALBOX_TANSU") {
        return Ok(PathBuf::from(p));
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("tansu");
        if p.is_file() {
            return Ok(p);
        }
    }
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tansu");
    if home.is_file() {
        return Ok(home);
    }
    bail!("tansu is not installed: run scripts/setup.sh --test (it builds it once)")
}

impl TestKafka {
    /// Starts the broker on a free port and waits until it listens.
    pub async fn start() -> Result<TestKafka> {
        let port = signalbox_router::embedded::free_port().context("free port for tansu")?;
        let child = TestKafka::spawn(port).await?;
        Ok(TestKafka { child, port })
    }

    async fn spawn(port: u16) -> Result<KillOnDrop> {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(tansu_binary()?)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting tansu")?;
        let mut child = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("tansu exited at start: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(child);
            }
            if Instant::now() > deadline {
                bail!("tansu did not listen on port {port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the broker and starts a new one on the same port. Its storage is
    /// in memory: topics and committed offsets are gone afterwards.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.child = TestKafka::spawn(self.port).await?;
        Ok(())
    }

    /// `host:port` for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Creates a topic with `partitions` partitions.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.client(
            &[
                "create-topic",
                &self.bootstrap(),
                topic,
                &partitions.to_string(),
            ],
            "",
        )
        .await
        .map(|_| ())
    }

    /// Produces `records` in order and returns each one's (partition, offset).
    pub async fn produce(&self, topic: &str, records: &[KafkaRecord]) -> Result<Vec<(i32, i64)>> {
        let mut input = String::new();
        for r in records {
            input.push_str(
                &serde_json::json!({
                    "key": r.key, "value": r.value, "headers": r.headers, "partition": r.partition,
                })
                .to_string(),
            );
            input.push('\n');
        }
        let out = self
            .client(&["produce", &self.bootstrap(), topic], &input)
            .await?;
        serde_json::from_str(&out).with_context(|| format!("produce output {out:?}"))
    }

    /// Reads `count` records of `topic` from offset 0 (partitions assigned, no
    /// group join) and returns the seconds from the assign to the last record:
    /// the broker's consume rate as an independent client sees it.
    pub async fn consume_seconds(&self, topic: &str, count: usize) -> Result<f64> {
        let out = self
            .client(
                &["consume", &self.bootstrap(), topic, &count.to_string()],
                "",
            )
            .await?;
        let v: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("consume output {out:?}"))?;
        v["seconds"]
            .as_f64()
            .with_context(|| format!("consume output {out:?}"))
    }

    /// The offsets `group` committed on `topic` (partition → offset; absent
    /// when none).
    pub async fn committed(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<BTreeMap<i32, i64>> {
        let out = self
            .client(
                &[
                    "committed",
                    &self.bootstrap(),
                    group,
                    topic,
                    &partitions.to_string(),
                ],
                "",
            )
            .await?;
        let raw: BTreeMap<String, i64> =
            serde_json::from_str(&out).with_context(|| format!("committed output {out:?}"))?;
        Ok(raw
            .into_iter()
            .filter(|(_, o)| *o >= 0)
            .filter_map(|(p, o)| p.parse().ok().map(|p| (p, o)))
            .collect())
    }

    async fn client(&self, args: &[&str], stdin: &str) -> Result<String> {
        let python = std::env::var("SIGNALBOX_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = tokio::process::Command::new(&python)
            .arg("-c")
            .arg(CLIENT)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {python} (the Kafka test client)"))?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
            .await
            .context("the Kafka test client took over 90 s")??;
        if !out.status.success() {
            bail!(
                "kafka client {:?} failed (is confluent-kafka installed? scripts/setup.sh --test): {}",
                args.first(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}
