//! A real Kafka-protocol broker for the tests, and an independent client.
//!
//! [`TestKafka`] runs `tansu` (installed by `scripts/setup.sh --test`) on a
//! free loopback port with in-memory storage and kills it on drop;
//! [`TestKafka::start_persistent`] uses SQLite storage in a temporary
//! directory instead, so a restarted broker keeps its data. Records are
//! produced, topics created and group offsets read with the `confluent-kafka`
//! Python package (`kafka_client.py`): a client that shares no code with
//! signalbox's consumer, so the tests see what a real producer sees.
//!
//! TLS: tansu 0.6 does not serve TLS (its `--cert`/`--key` are refused
//! together by its CLI, and the broker never uses the TLS acceptor it builds),
//! so [`TestKafka::start_tls`] puts a TLS terminator (rustls) in front of it:
//! tansu listens in plain TCP on one port and advertises the terminator's
//! port, so every client connection (bootstrap and the advertised broker) is
//! TLS with a server certificate for 127.0.0.1 signed by a test CA made with
//! the `openssl` CLI. SASL: `--authentication` makes tansu refuse every request
//! before a SASL login; of signalbox's mechanisms it has SCRAM only (no PLAIN).
//! Its in-memory storage keeps no SCRAM users, so every login is refused
//! there ([`TestKafka::start_tls_authenticating`]); its SQLite storage keeps
//! them, so [`TestKafka::start_tls_sasl`] creates users first and then turns
//! authentication on (see `docs/DECISIONS.md`, Kafka).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// How long an independent consumer took to read a topic
/// ([`TestKafka::consume_timing`]).
#[derive(Debug, Clone, Copy)]
pub struct ConsumeTiming {
    /// Seconds from the assign to the last record: includes the first fetch,
    /// about a quarter of a second on loopback whatever the record count.
    pub from_assign: f64,
    /// Seconds from the first record to the last: the steady-state read.
    pub from_first_record: f64,
}

/// How [`TestKafka::start_with`] sets the broker up.
#[derive(Default)]
struct Setup {
    /// A TLS terminator in front of tansu.
    tls: bool,
    /// The terminator requires a client certificate.
    mutual: bool,
    /// tansu's `--authentication` (SASL SCRAM).
    authentication: bool,
    /// SQLite storage in a temporary directory instead of memory.
    persistent: bool,
    /// SCRAM-SHA-512 users (name, password) to create first; needs
    /// `persistent`.
    users: &'static [(&'static str, &'static str)],
}

/// A tansu broker on a free port, killed on drop.
pub struct TestKafka {
    child: KillOnDrop,
    /// Where a persistent broker keeps its SQLite file (removed after the
    /// broker is killed: fields drop in order).
    storage: Option<tempfile::TempDir>,
    /// tansu's own (plain TCP) port.
    port: u16,
    /// The port clients connect to and tansu advertises: `port`, or the TLS
    /// terminator's.
    advertised: u16,
    authentication: bool,
    tls: Option<TlsFront>,
    /// librdkafka properties of the Python client (TLS, SASL).
    client_config: BTreeMap<String, String>,
}

/// The TLS terminator in front of tansu; its task (and every connection it
/// carries) ends on drop.
struct TlsFront {
    pki: crate::pki::TestPki,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_acceptor(pki: &crate::pki::TestPki, mutual: bool) -> Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(&pki.cert)
        .context("server certificate")?
        .collect::<Result<Vec<_>, _>>()
        .context("server certificate")?;
    let key = PrivateKeyDer::from_pem_file(&pki.key).context("server key")?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if mutual {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&pki.ca).context("test CA")? {
            roots.add(cert.context("test CA")?)?;
        }
        let verifier = tokio_rustls::rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider,
        )
        .build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    }
    .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS on `listener` and carries each connection's bytes to and from
/// tansu on `upstream`. A client that refuses the certificate only ends its
/// own connection.
async fn tls_front(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, upstream: u16) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut broker) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
            else {
                return;
            };
            let _ = broker.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
        });
    }
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
        TestKafka::start_with(Setup::default()).await
    }

    /// Starts a broker that keeps its data (topics, records, committed
    /// offsets) in a SQLite file in a temporary directory, so that
    /// [`TestKafka::restart`] brings it back as a real broker comes back.
    /// Needs tansu built with the `libsql` feature (`scripts/setup.sh --test`
    /// builds it so).
    pub async fn start_persistent() -> Result<TestKafka> {
        TestKafka::start_with(Setup {
            persistent: true,
            ..Setup::default()
        })
        .await
    }

    /// Starts a persistent broker behind TLS that requires a SASL
    /// SCRAM-SHA-512 login. Two users exist: the test client's
    /// (`producer`) and [`TestKafka::SASL_USER`] for the router.
    pub async fn start_tls_sasl() -> Result<TestKafka> {
        TestKafka::start_with(Setup {
            tls: true,
            authentication: true,
            persistent: true,
            users: &[("producer", "producer-secret"), TestKafka::SASL_USER],
            ..Setup::default()
        })
        .await
    }

    /// The user (name, password) [`TestKafka::start_tls_sasl`] creates for
    /// the router under test.
    pub const SASL_USER: (&'static str, &'static str) = ("signalbox", "signalbox-secret");

    /// Starts the broker behind mutual TLS: as [`TestKafka::start_tls`], and
    /// every client must present a certificate the test CA signed
    /// ([`TestKafka::client_cert_files`]); the Python client does.
    pub async fn start_mutual_tls() -> Result<TestKafka> {
        TestKafka::start_with(Setup {
            tls: true,
            mutual: true,
            ..Setup::default()
        })
        .await
    }

    /// The client certificate and key a mutual-TLS broker accepts.
    pub fn client_cert_files(&self) -> Option<(&Path, &Path)> {
        self.tls
            .as_ref()
            .map(|t| (t.pki.client_cert.as_path(), t.pki.client_key.as_path()))
    }

    /// Starts the broker behind TLS: clients connect with TLS to
    /// [`TestKafka::bootstrap`] and verify the broker with
    /// [`TestKafka::ca_file`]; the Python client does so too.
    pub async fn start_tls() -> Result<TestKafka> {
        TestKafka::start_with(Setup {
            tls: true,
            ..Setup::default()
        })
        .await
    }

    /// Starts the broker behind TLS with `--authentication`: tansu answers
    /// nothing but ApiVersions and the SASL handshake before a SASL login.
    /// Of signalbox's mechanisms it has SCRAM-SHA-256/512 only (no PLAIN),
    /// and its memory storage has no users, so every login is refused, the test client's included: topics
    /// cannot be created nor records produced on this broker.
    pub async fn start_tls_authenticating() -> Result<TestKafka> {
        TestKafka::start_with(Setup {
            tls: true,
            authentication: true,
            ..Setup::default()
        })
        .await
    }

    async fn start_with(setup: Setup) -> Result<TestKafka> {
        let Setup {
            tls,
            mutual,
            authentication,
            persistent,
            users,
        } = setup;
        let port = crate::free_port().context("free port for tansu")?;
        let mut client_config = BTreeMap::new();
        let (advertised, tls) = if tls {
            let pki = crate::pki::TestPki::make()?;
            let acceptor = tls_acceptor(&pki, mutual)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("TLS port")?;
            let advertised = listener.local_addr()?.port();
            let task = tokio::spawn(tls_front(listener, acceptor, port));
            client_config.insert("security.protocol".into(), "ssl".into());
            client_config.insert("ssl.ca.location".into(), pki.ca.display().to_string());
            if mutual {
                client_config.insert(
                    "ssl.certificate.location".into(),
                    pki.client_cert.display().to_string(),
                );
                client_config.insert(
                    "ssl.key.location".into(),
                    pki.client_key.display().to_string(),
                );
            }
            (advertised, Some(TlsFront { pki, task }))
        } else {
            (port, None)
        };
        if authentication {
            let protocol = if tls.is_some() {
                "sasl_ssl"
            } else {
                "sasl_plaintext"
            };
            client_config.insert("security.protocol".into(), protocol.into());
            client_config.insert("sasl.mechanism".into(), "SCRAM-SHA-512".into());
            client_config.insert("sasl.username".into(), "producer".into());
            client_config.insert("sasl.password".into(), "producer-secret".into());
        }
        let storage = if persistent {
            Some(tempfile::tempdir().context("tansu storage directory")?)
        } else {
            None
        };
        let dir = storage.as_ref().map(tempfile::TempDir::path);
        if !users.is_empty() {
            // Users are created through the broker's admin API, which an
            // authenticating broker only opens after a login: create them on
            // the same storage without authentication first.
            let open = TestKafka::spawn(port, advertised, false, dir).await?;
            for (name, password) in users {
                let out = std::process::Command::new(tansu_binary()?)
                    .args(["user", "create", "--broker"])
                    .arg(format!("tcp://127.0.0.1:{port}"))
                    .args([name, password])
                    .output()
                    .context("tansu user create")?;
                if !out.status.success() {
                    bail!(
                        "tansu user create {name}: {}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            drop(open);
        }
        let child = TestKafka::spawn(port, advertised, authentication, dir).await?;
        Ok(TestKafka {
            child,
            storage,
            port,
            advertised,
            authentication,
            tls,
            client_config,
        })
    }

    async fn spawn(
        port: u16,
        advertised: u16,
        authentication: bool,
        storage: Option<&Path>,
    ) -> Result<KillOnDrop> {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised_url = format!("tcp://127.0.0.1:{advertised}");
        let mut command = std::process::Command::new(tansu_binary()?);
        command.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised_url,
        ]);
        match storage {
            // tansu opens `sqlite://<name>` relative to its working directory.
            Some(dir) => command
                .current_dir(dir)
                .args(["--storage-engine", "sqlite://tansu.db"]),
            None => command.args(["--storage-engine", "memory://tansu/"]),
        };
        let child = command
            .args(authentication.then_some("--authentication"))
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

    /// Kills the broker and starts a new one on the same port. A broker from
    /// [`TestKafka::start_persistent`] comes back with its topics, records
    /// and committed offsets; any other keeps them in memory, so they are
    /// gone afterwards.
    pub async fn restart(&mut self) -> Result<()> {
        self.restart_after(Duration::ZERO).await
    }

    /// [`TestKafka::restart`], with the broker down for `down` in between.
    pub async fn restart_after(&mut self, down: Duration) -> Result<()> {
        self.kill();
        tokio::time::sleep(down).await;
        let dir = self.storage.as_ref().map(tempfile::TempDir::path);
        self.child = TestKafka::spawn(self.port, self.advertised, self.authentication, dir).await?;
        Ok(())
    }

    /// `host:port` for clients (the TLS port when the broker is behind TLS).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// The CA (PEM) that signed the broker's certificate, when behind TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.pki.ca.as_path())
    }

    /// A CA (PEM) that did not sign the broker's certificate, when behind TLS.
    pub fn other_ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.pki.other_ca.as_path())
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

    /// Sets a librdkafka property of the test client (every later command),
    /// e.g. `batch.num.messages = 1` so that each produced record is a
    /// record batch of its own. Tests that restart a consumer mid-topic need
    /// that: tansu 0.6 answers a fetch from an offset inside a record batch
    /// without that batch's remaining records (see docs/DECISIONS.md).
    pub fn set_client_property(&mut self, key: &str, value: &str) {
        self.client_config.insert(key.into(), value.into());
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
    /// group join) and returns how long that took: the broker's consume rate
    /// as an independent client sees it.
    pub async fn consume_timing(&self, topic: &str, count: usize) -> Result<ConsumeTiming> {
        let out = self
            .client(
                &["consume", &self.bootstrap(), topic, &count.to_string()],
                "",
            )
            .await?;
        let v: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("consume output {out:?}"))?;
        let field = |name: &str| {
            v[name]
                .as_f64()
                .with_context(|| format!("consume output {out:?}: no number {name:?}"))
        };
        Ok(ConsumeTiming {
            from_assign: field("seconds")?,
            from_first_record: field("from_first")?,
        })
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
        let config = serde_json::to_string(&self.client_config)?;
        let mut child = tokio::process::Command::new(&python)
            .arg("-c")
            .arg(CLIENT)
            .args(args)
            .env("SIGNALBOX_KAFKA_CLIENT_CONFIG", config)
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
