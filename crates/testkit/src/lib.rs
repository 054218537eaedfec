//! The test harness of signalbox: real parts, cleaned up on drop.
//!
//! - [`TestNats`]: a real `nats-server` with JetStream on a free loopback port and
//!   a temp store directory; [`TestNats::stop`] and [`TestNats::restart`] (same
//!   port, same store) simulate an outage; dropping it kills the process.
//! - [`TestRouter`]: a router on a temp data directory (a real redb file) connected
//!   to a [`TestNats`]; [`TestRouter::restart`] stops it gracefully and starts a
//!   new one on the same data directory.
//! - helpers: publish a signal as a request and decode the reply, wait for a
//!   firing on a subject with a timeout, send one HTTP request over a real socket.
//!
//! - [`TestKafka`]: a real Kafka-protocol broker (tansu) on a free port, with
//!   an independent client (confluent-kafka) to create topics, produce records
//!   and read group offsets; in memory, or on SQLite to survive a restart and
//!   hold SASL users.
//!
//! - [`init_logs`] / [`logged`]: the one log subscriber of a test process,
//!   with a capture of warnings and errors that cases assert on.
//!
//! Every wait here is bounded (a few seconds); a test that waits for something
//! that never comes fails with a message saying what it waited for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use signalbox_router::embedded::NatsProcess;
use signalbox_router::{Router, RouterConfig};

mod fresh;
mod kafka;
mod logs;
mod pki;
pub use kafka::{KafkaRecord, TestKafka};
pub use logs::{init_logs, logged};
pub use pki::TestPki;

/// How long a test waits for a reply or a firing before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A real nats-server on a free port with a temp JetStream store.
pub struct TestNats {
    process: NatsProcess,
    _dir: tempfile::TempDir,
}

impl TestNats {
    /// Starts the server and waits until it accepts clients.
    pub fn start() -> Result<TestNats> {
        TestNats::start_with(None, "")
    }

    /// Starts the server on `port` (a free one when `None`) with extra config
    /// lines, e.g. `authorization { token: "s3cret" }`.
    pub fn start_with(port: Option<u16>, extra_config: &str) -> Result<TestNats> {
        let dir = tempfile::tempdir().context("temp dir for nats-server")?;
        let process = NatsProcess::start_with(&dir.path().join("jetstream"), port, extra_config)
            .context("starting nats-server (run scripts/setup.sh to install it)")?;
        Ok(TestNats { process, _dir: dir })
    }

    /// The client URL.
    pub fn url(&self) -> String {
        self.process.url()
    }

    /// A plain client connected to this server.
    pub async fn client(&self) -> Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("connecting to {}", self.url()))
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) -> Result<()> {
        self.process.restart().context("restarting nats-server")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// A router on a temp data directory, connected to a test server.
pub struct TestRouter {
    router: Option<Router>,
    config: RouterConfig,
    _dir: Option<tempfile::TempDir>,
}

impl TestRouter {
    /// The configuration a test router uses: the server's URL, a data directory,
    /// everything else default.
    pub fn config(nats_url: &str, data_dir: &Path) -> RouterConfig {
        let mut cfg = RouterConfig::default();
        cfg.nats.urls = vec![nats_url.to_string()];
        cfg.data_dir = data_dir.to_path_buf();
        cfg
    }

    /// Starts a router with default settings on a fresh temp data directory.
    pub async fn start(nats: &TestNats) -> Result<TestRouter> {
        TestRouter::start_configured(nats, |_| {}).await
    }

    /// Starts a router on a fresh temp data directory with the default test
    /// configuration changed by `tweak` (HTTP on, a token, limits …).
    pub async fn start_configured(
        nats: &TestNats,
        tweak: impl FnOnce(&mut RouterConfig),
    ) -> Result<TestRouter> {
        let dir = tempfile::tempdir().context("temp data dir")?;
        let mut config = TestRouter::config(&nats.url(), dir.path());
        tweak(&mut config);
        let mut r = TestRouter::start_with(config).await?;
        r._dir = Some(dir);
        Ok(r)
    }

    /// Starts a router with the given configuration. Kafka sources run in
    /// worker processes of the `signalbox` binary ([`signalbox_binary`]),
    /// as they do in production, unless `sources.kafka_worker` is set.
    pub async fn start_with(mut config: RouterConfig) -> Result<TestRouter> {
        if !config.sources.kafka.is_empty() && config.sources.kafka_worker.is_none() {
            config.sources.kafka_worker = Some(signalbox_binary()?);
        }
        let router = Router::start(config.clone())
            .await
            .context("starting the router")?;
        Ok(TestRouter {
            router: Some(router),
            config,
            _dir: None,
        })
    }

    /// The router's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The running router.
    pub fn router(&self) -> &Router {
        self.router
            .as_ref()
            .unwrap_or_else(|| unreachable!("the router is always running between calls"))
    }

    /// Stops the router gracefully and starts a new one on the same data directory.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(r) = self.router.take() {
            r.shutdown().await;
        }
        self.router = Some(
            Router::start(self.config.clone())
                .await
                .context("restarting the router")?,
        );
        Ok(())
    }

    /// Stops the router gracefully.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.router.take() {
            r.shutdown().await;
        }
    }

    /// Adds a subscription (YAML or JSON) through the admin API; returns the reply.
    pub async fn add_subscription(
        &self,
        client: &async_nats::Client,
        doc: &str,
    ) -> Result<serde_json::Value> {
        let reply = admin(client, &self.config.admin_prefix, "sub.add", doc).await?;
        if reply.get("error").is_some() {
            bail!("sub.add failed: {reply}");
        }
        Ok(reply)
    }

    /// The subject prefix signals are published under.
    pub fn subject_prefix(&self) -> &str {
        &self.config.subject_prefix
    }

    /// The admin subject prefix.
    pub fn admin_prefix(&self) -> &str {
        &self.config.admin_prefix
    }
}

/// Sends an admin request and decodes the JSON reply (errors included).
pub async fn admin(
    client: &async_nats::Client,
    prefix: &str,
    verb: &str,
    body: &str,
) -> Result<serde_json::Value> {
    let msg = tokio::time::timeout(
        WAIT,
        client.request(format!("{prefix}.{verb}"), body.to_string().into()),
    )
    .await
    .with_context(|| format!("admin {verb}: no reply within {WAIT:?}"))?
    .with_context(|| format!("admin {verb}"))?;
    serde_json::from_slice(&msg.payload).with_context(|| format!("admin {verb}: reply is not JSON"))
}

/// Deploys the component `file` under `name` into the router answering on
/// admin prefix `prefix`, as `signalbox plugin deploy` does: the bytes in
/// 256 KiB `plugin.upload` pieces, then `plugin.deploy` with their SHA-256 and
/// `settings` (none: the router's default). Returns the deploy reply, errors
/// included; allows two minutes for a cold compile.
pub async fn deploy_plugin(
    client: &async_nats::Client,
    prefix: &str,
    name: &str,
    file: &Path,
    settings: Option<&[(&str, &str)]>,
) -> Result<serde_json::Value> {
    use base64::Engine as _;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let piece = 256 * 1024;
    let upload = format!("test-{}", name.replace('.', "_"));
    for (i, chunk) in bytes.chunks(piece).enumerate() {
        let body =
            serde_json::json!({"upload": upload, "offset": i * piece, "data": b64.encode(chunk)});
        let reply = admin(client, prefix, "plugin.upload", &body.to_string()).await?;
        if reply.get("error").is_some() {
            bail!("plugin.upload: {reply}");
        }
    }
    let mut body = serde_json::json!({
        "name": name,
        "upload": upload,
        "sha256": signalbox_plugin::content_hash(&bytes),
    });
    if let Some(s) = settings {
        let map: serde_json::Map<String, serde_json::Value> = s
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        body["settings"] = serde_json::Value::Object(map);
    }
    admin_slow(client, prefix, "plugin.deploy", &body.to_string()).await
}

/// [`admin`] with a two-minute timeout, for verbs that may compile a component.
pub async fn admin_slow(
    client: &async_nats::Client,
    prefix: &str,
    verb: &str,
    body: &str,
) -> Result<serde_json::Value> {
    let req = async_nats::Request::new()
        .payload(body.to_string().into())
        .timeout(Some(Duration::from_secs(120)));
    let reply = client
        .send_request(format!("{prefix}.{verb}"), req)
        .await
        .with_context(|| format!("admin {verb}"))?;
    serde_json::from_slice(&reply.payload)
        .with_context(|| format!("admin {verb}: reply is not JSON"))
}

/// Publishes `body` to `signals.<name>` as a request and decodes the reply.
pub async fn publish_signal(
    client: &async_nats::Client,
    name: &str,
    body: &str,
) -> Result<serde_json::Value> {
    publish_raw(client, &format!("signals.{name}"), body.as_bytes()).await
}

/// Sends raw bytes as a request to `subject` and decodes the JSON reply.
pub async fn publish_raw(
    client: &async_nats::Client,
    subject: &str,
    body: &[u8],
) -> Result<serde_json::Value> {
    let msg = tokio::time::timeout(
        WAIT,
        client.request(subject.to_string(), body.to_vec().into()),
    )
    .await
    .with_context(|| format!("no reply on {subject} within {WAIT:?}"))?
    .with_context(|| format!("request to {subject}"))?;
    serde_json::from_slice(&msg.payload).context("reply is not JSON")
}

/// Waits for the next message on a subscription, failing after `timeout`.
pub async fn next_message(
    sub: &mut async_nats::Subscriber,
    timeout: Duration,
) -> Result<async_nats::Message> {
    match tokio::time::timeout(timeout, sub.next()).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => bail!("subscription closed while waiting for a message"),
        Err(_) => bail!("no message within {timeout:?}"),
    }
}

/// Takes the next `n` firings from a subscription and returns the id of each
/// one's first input signal, sorted (arrival order is not part of the contract).
pub async fn first_input_ids(sub: &mut async_nats::Subscriber, n: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let msg = next_message(sub, WAIT).await?;
        let body: serde_json::Value =
            serde_json::from_slice(&msg.payload).context("firing body is not JSON")?;
        ids.push(
            body["signals"][0]["id"]
                .as_str()
                .context("firing without an input id")?
                .to_string(),
        );
    }
    ids.sort();
    Ok(ids)
}

/// Asserts that no message arrives on a subscription within `quiet`.
pub async fn expect_silence(sub: &mut async_nats::Subscriber, quiet: Duration) -> Result<()> {
    match tokio::time::timeout(quiet, sub.next()).await {
        Err(_) => Ok(()),
        Ok(Some(m)) => bail!(
            "expected no message, got one on {}: {}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        ),
        Ok(None) => Ok(()),
    }
}

/// A minimal HTTP/1.1 client for tests: one request, `Connection: close`, the
/// status code and the body back. Real sockets, no mocking.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .context("HTTP connect timed out")??;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .context("HTTP response timed out")??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .context("HTTP response without a header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("HTTP status line")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The `signalbox` binary of this build (`target/<profile>/signalbox`). Used
/// as it is when it is newer than every workspace source (`cargo test
/// --workspace` builds it: see the `fresh` module for why a second build is
/// avoided); otherwise built once per test process with `cargo build -p
/// signalbox-cli` in the profile of the running test. The router runs Kafka
/// sources as `signalbox kafka-worker` processes, so in-process test routers
/// need it.
pub fn signalbox_binary() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| format!("{} is not in target/<profile>/deps", exe.display()))?
            .to_path_buf();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let bin = profile_dir.join("signalbox");
        if fresh::binary_is_fresh(&bin, &root) {
            return Ok(bin);
        }
        let mut cargo =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args([
                "build",
                "-p",
                "signalbox-cli",
                "--bin",
                "signalbox",
                "--manifest-path",
            ])
            .arg(root.join("Cargo.toml"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        // Cargo gives a test its package's variables (CARGO_PKG_NAME,
        // CARGO_MANIFEST_DIR, OUT_DIR …). Build scripts that track them
        // (ring's does) would see them changed and rebuild, and the next
        // `cargo test` would rebuild again: they are not passed on.
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            let kept = [
                "CARGO_HOME",
                "CARGO_TARGET_DIR",
                "CARGO_INCREMENTAL",
                "CARGO_BUILD_",
                "CARGO_PROFILE_",
                "CARGO_TERM_",
                "CARGO_NET_",
                "CARGO_HTTP_",
                "CARGO_REGISTRIES_",
            ]
            .iter()
            .any(|k| key.starts_with(k));
            if (key.starts_with("CARGO_") && !kept) || key == "OUT_DIR" {
                cargo.env_remove(key);
            }
        }
        let status = cargo
            .status()
            .map_err(|e| format!("cannot run cargo to build the signalbox binary: {e}"))?;
        if !status.success() {
            return Err("building the signalbox binary failed".into());
        }
        if !bin.is_file() {
            return Err(format!("no signalbox binary at {}", bin.display()));
        }
        Ok(bin)
    });
    built.as_ref().cloned().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The pids of this process's children whose command line contains
/// `needle` (e.g. `kafka-worker`: the Kafka worker processes of in-process
/// test routers), read from `/proc`.
pub fn child_pids(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let parent = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if parent == Some(me) && cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Sends `signal` (a name for `kill -s`, e.g. `SEGV`) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -s {signal} {pid} failed");
    Ok(())
}

/// The component file of a plugin from `plugins/` (e.g. `operator_semver`),
/// built once per test process for `wasm32-wasip2` (the wasmtime way: guest
/// programs are built by a build step, never committed).
pub fn plugin_component(name: &str) -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--manifest-path",
                ])
                .arg(root.join("plugins/Cargo.toml"))
                .status()
                .map_err(|e| format!("cannot run cargo to build plugins/: {e}"))?;
        if !status.success() {
            return Err(
                "building plugins/ for wasm32-wasip2 failed (scripts/setup.sh installs the target)"
                    .into(),
            );
        }
        Ok(root.join("plugins/target/wasm32-wasip2/release"))
    });
    let dir = dir.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = dir.join(format!("{name}.wasm"));
    anyhow::ensure!(file.is_file(), "no component {}", file.display());
    Ok(file)
}

/// Runs `scripts/build-plugins.sh <flag>` once per process (kept in `built`)
/// and returns `plugins/target/<out>/<name>.wasm`; `what` and `tool` name the
/// language and its build tool in the errors.
fn scripted_component(
    built: &'static std::sync::OnceLock<std::result::Result<PathBuf, String>>,
    flag: &str,
    out: &str,
    what: &str,
    tool: &str,
    name: &str,
) -> Result<PathBuf> {
    let dir = built.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = std::process::Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .arg(flag)
            .status()
            .map_err(|e| format!("cannot run scripts/build-plugins.sh: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building the {what} plugins failed (scripts/setup.sh --test installs {tool})"
            ));
        }
        Ok(root.join("plugins/target").join(out))
    });
    let dir = dir.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = dir.join(format!("{name}.wasm"));
    anyhow::ensure!(
        file.is_file(),
        "no {what} component {} (is {tool} installed? scripts/setup.sh --test)",
        file.display()
    );
    Ok(file)
}

/// The component file of a Python plugin from `plugins/python/<name>`, built
/// once per test process with componentize-py (installed by
/// `scripts/setup.sh --test`) into `plugins/target/python/<name>.wasm`.
pub fn python_plugin_component(name: &str) -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    scripted_component(
        &BUILT,
        "--python-only",
        "python",
        "Python",
        "componentize-py",
        name,
    )
}

/// The JavaScript plugin component `name` (`plugins/js/<name>/app.js`), built
/// once per test process with jco (installed in `plugins/js/node_modules` by
/// `scripts/setup.sh --test`) into `plugins/target/js/<name>.wasm`.
pub fn js_plugin_component(name: &str) -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    scripted_component(&BUILT, "--js-only", "js", "JavaScript", "jco", name)
}

/// Starts `<bin> serve --config <config>` (the CLI tests pass
/// `env!("CARGO_BIN_EXE_signalbox")`) with router logs at info, appended to
/// `router.log` beside the config file; see [`router_log_tail`].
pub fn start_serve(bin: &Path, config: &Path) -> Result<KillOnDrop> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("router.log"))?;
    std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn,signalbox_router=info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(KillOnDrop)
        .context("starting signalbox serve")
}

/// The last 40 lines of the `router.log` that [`start_serve`] writes beside
/// `config`, for failure messages; the one-per-firing `firing delivered`
/// lines are left out (they would fill the tail).
pub fn router_log_tail(config: &Path) -> String {
    let text = std::fs::read_to_string(config.with_file_name("router.log")).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("firing delivered"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A child process that is killed and reaped when dropped, so a failing test
/// never leaves a `signalbox serve` (or any other child) behind.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
