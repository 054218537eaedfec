//! Tracing end to end: a real `signalbox serve` process exports its spans over
//! OTLP/HTTP to a fake collector (an axum server in the test that keeps every
//! request body), a producer publishes a signal with a `traceparent` header, and
//! the firing's `traceparent` and the collector's spans must tell one story: the
//! producer's trace id throughout, the `signal` span under the producer's span,
//! the `publish` span under the `signal` span and named by the firing's header.
//! Without a `[telemetry]` table nothing is exported, even with the standard
//! `OTEL_EXPORTER_OTLP_*` variables pointing at the collector.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use signalbox_testkit::{KillOnDrop, TestNats, WAIT, init_logs, next_message};

/// The producer's trace: its trace id and the id of its (publishing) span.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

const SUBSCRIPTION: &str = r#"
id: big-tables
signal: table_updated
where: {table: ["prod.events"]}
action: {trigger: {subject: runs.traced}}
params: {table: "{table}"}
"#;

/// Requests the fake collector received: (path, body).
type Received = Arc<Mutex<Vec<(String, axum::body::Bytes)>>>;

/// An OTLP/HTTP collector on a free loopback port that answers every request
/// with an empty (successful) export response and keeps what it got.
async fn start_collector() -> Result<(SocketAddr, Received)> {
    let received: Received = Arc::default();
    let keep = received.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let keep = keep.clone();
        async move {
            if let Ok(mut r) = keep.lock() {
                r.push((uri.path().to_string(), body));
            }
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, received))
}

/// Writes the config (with `telemetry` appended verbatim) and starts
/// `signalbox serve` on it; the router's log goes to `router.log` beside it.
fn start_router(
    dir: &Path,
    nats_url: &str,
    telemetry: &str,
    env: &[(&str, String)],
) -> Result<(KillOnDrop, PathBuf)> {
    let subs = dir.join("subs");
    std::fs::create_dir_all(&subs)?;
    std::fs::write(subs.join("big-tables.yaml"), SUBSCRIPTION)?;
    let config = dir.join("signalbox.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nsubscriptions = [{subs:?}]\n[nats]\nurls = [{nats_url:?}]\n{telemetry}",
            data = dir.join("data").display().to_string(),
            subs = subs.display().to_string(),
        ),
    )?;
    let log_path = dir.join("router.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signalbox"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn,signalbox_router=info,signalbox=info")
        .env_remove("SIGNALBOX_OTLP_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(log);
    for key in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        cmd.env_remove(key);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().context("starting signalbox serve")?;
    Ok((KillOnDrop(child), log_path))
}

/// Publishes the signal as a request with the producer's `traceparent` until the
/// router (still starting) acknowledges it; a retry is a duplicate, so harmless.
async fn publish_traced(client: &async_nats::Client) -> Result<serde_json::Value> {
    let body = serde_json::json!({
        "name": "table_updated", "id": "traced-1",
        "params": {"table": "prod.events", "rows": 10},
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{TRACE_ID}-{PARENT_ID}-01").as_str(),
        );
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            client.request_with_headers("signals.table_updated", headers, body.to_string().into()),
        )
        .await;
        if let Ok(Ok(msg)) = reply {
            return Ok(serde_json::from_slice(&msg.payload)?);
        }
        ensure!(
            Instant::now() < deadline,
            "the router never acknowledged the signal"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM, then wait for a clean exit (the exporter flushes on the way out).
fn stop(router: &mut KillOnDrop, log: &Path) -> Result<()> {
    let pid = libc::pid_t::try_from(router.id())?;
    #[allow(unsafe_code)]
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    ensure!(rc == 0, "kill(SIGTERM) failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = router.try_wait()? {
            ensure!(
                status.success(),
                "router exited with {status}: {}",
                tail(log)
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("router did not stop after SIGTERM: {}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Every span the collector received, with its service name.
fn spans(received: &Received) -> Result<Vec<(String, Span)>> {
    let received = received
        .lock()
        .map_err(|_| anyhow::anyhow!("collector lock poisoned"))?;
    let mut out = Vec::new();
    for (path, body) in received.iter() {
        ensure!(path == "/v1/traces", "export went to {path}");
        let request = ExportTraceServiceRequest::decode(&body[..])
            .context("the export body is not an OTLP protobuf trace request")?;
        for rs in request.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| string_attr(&r.attributes, "service.name"))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    out.push((service.clone(), span));
                }
            }
        }
    }
    Ok(out)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parts of a `traceparent`: (trace id, parent span id).
fn traceparent_ids(tp: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = tp.split('-').collect();
    ensure!(parts.len() == 4, "malformed traceparent {tp:?}");
    Ok((parts[1].to_string(), parts[2].to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_and_the_firing_continues_the_trace() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let (collector, received) = start_collector().await?;
    let dir = tempfile::tempdir()?;
    let telemetry = format!(
        "[telemetry]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"signalbox-test\"\n[telemetry.headers]\nx-test = \"yes\"\n"
    );
    let (mut router, log) = start_router(dir.path(), &nats.url(), &telemetry, &[])?;
    let client = nats.client().await?;
    let mut firings = client.subscribe("runs.traced").await?;
    client.flush().await?;

    let ack = publish_traced(&client).await?;
    assert_eq!(ack["matched"][0], "big-tables", "{ack}");
    let firing = next_message(&mut firings, WAIT)
        .await
        .with_context(|| format!("no firing: {}", tail(&log)))?;
    let headers = firing.headers.context("firing without headers")?;
    let firing_id = headers
        .get("Nats-Msg-Id")
        .context("no Nats-Msg-Id")?
        .to_string();
    let tp = headers
        .get("traceparent")
        .context("the firing has no traceparent")?
        .to_string();
    let (trace, publish_span_id) = traceparent_ids(&tp)?;
    assert_eq!(trace, TRACE_ID, "the firing continues the producer's trace");
    assert_ne!(
        publish_span_id, PARENT_ID,
        "when exporting, the firing's parent is signalbox's publish span"
    );

    stop(&mut router, &log)?;
    let spans = spans(&received)?;
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    let in_trace: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| hex(&s.trace_id) == TRACE_ID)
        .collect();
    ensure!(
        spans.iter().all(|(service, _)| service == "signalbox-test"),
        "service.name"
    );

    let signal = in_trace
        .iter()
        .find(|s| s.name == "signal")
        .with_context(|| format!("no signal span in the producer's trace; got {names:?}"))?;
    assert_eq!(
        hex(&signal.parent_span_id),
        PARENT_ID,
        "signal span's parent"
    );
    assert_eq!(
        string_attr(&signal.attributes, "signal.id").as_deref(),
        Some("traced-1")
    );
    assert_eq!(
        string_attr(&signal.attributes, "signal.name").as_deref(),
        Some("table_updated")
    );
    assert_eq!(
        attr(&signal.attributes, "signal.seq"),
        Some(&any_value::Value::IntValue(1))
    );

    let matched = in_trace
        .iter()
        .find(|s| s.name == "match")
        .with_context(|| format!("no match span; got {names:?}"))?;
    assert_eq!(matched.parent_span_id, signal.span_id, "match under signal");

    let publish = in_trace
        .iter()
        .find(|s| s.name == "publish")
        .with_context(|| format!("no publish span in the producer's trace; got {names:?}"))?;
    assert_eq!(
        string_attr(&publish.attributes, "firing.id").as_deref(),
        Some(firing_id.as_str())
    );
    assert_eq!(
        string_attr(&publish.attributes, "subject").as_deref(),
        Some("runs.traced")
    );
    assert_eq!(
        publish.parent_span_id, signal.span_id,
        "publish under signal"
    );
    assert_eq!(
        hex(&publish.span_id),
        publish_span_id,
        "the firing's traceparent names the publish span"
    );

    let ingest = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "ingest")
        .with_context(|| format!("no ingest span; got {names:?}"))?;
    assert_eq!(
        string_attr(&ingest.attributes, "transport").as_deref(),
        Some("nats")
    );
    let commit = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "commit")
        .with_context(|| format!("no commit span; got {names:?}"))?;
    assert_eq!(commit.parent_span_id, ingest.span_id, "commit under ingest");
    assert!(
        commit.links.iter().any(|l| l.span_id == signal.span_id),
        "the commit span links to the signal it stored"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_telemetry_table_nothing_is_exported() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let (collector, received) = start_collector().await?;
    let dir = tempfile::tempdir()?;
    // The standard variables alone do not turn export on.
    let url = format!("http://{collector}");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url.clone()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{url}/v1/traces"),
        ),
    ];
    let (mut router, log) = start_router(dir.path(), &nats.url(), "", &env)?;
    let client = nats.client().await?;
    let mut firings = client.subscribe("runs.traced").await?;
    client.flush().await?;

    publish_traced(&client).await?;
    let firing = next_message(&mut firings, WAIT)
        .await
        .with_context(|| format!("no firing: {}", tail(&log)))?;
    let tp = firing
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .context("the firing has no traceparent")?
        .to_string();
    assert_eq!(
        tp,
        format!("00-{TRACE_ID}-{PARENT_ID}-01"),
        "without export the producer's context is passed on as it came"
    );
    stop(&mut router, &log)?;
    let received = received
        .lock()
        .map_err(|_| anyhow::anyhow!("collector lock poisoned"))?;
    assert!(
        received.is_empty(),
        "no exporter traffic without [telemetry]: got {} requests",
        received.len()
    );
    Ok(())
}
