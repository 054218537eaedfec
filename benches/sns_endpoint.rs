//! SNS endpoint load tool (issue 6, "Benchmark"): requests per second of
//! `POST /sns/<source>` against the webhook endpoint `POST /ingest/<adapter>`,
//! measured in the same run on the same router.
//!
//! One router (in this process, with a local `nats-server`) serves both: the
//! webhook route with the `webhook-json` adapter mapping a fixed name and an
//! id (the no-op-ish baseline), and an SNS source with the `sns` adapter and
//! the test certificate pinned. Every request carries a new signal id, so each
//! one is stored (one store transaction per request, as the HTTP routes do);
//! the SNS requests are Notifications in AWS's documented body format, signed
//! beforehand with the test key (SignatureVersion 2 by default), so the
//! measured SNS path includes parsing, the certificate-URL, topic and
//! timestamp checks and one RSA-2048 verification per request. Requests go
//! over keep-alive HTTP/1.1 connections, `--concurrency` at a time. The two
//! endpoints are measured alternately (after a 200-request warm-up of each,
//! the first of the pair alternating), `--reps` times each; the median is
//! reported, with the data directory on disk (fsync per commit) and on
//! `/dev/shm` (fsync free, where the endpoint's own cost shows).
//!
//! Run: `cargo bench --bench sns_endpoint` (options after `--`:
//! `--requests N` (default 2000), `--concurrency N` (16), `--reps N` (5),
//! `--version 1|2` (2), `--no-tmpfs`). Bounded: every request has a timeout and
//! the tool exits by itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use futures::StreamExt;
use rsa::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use signalbox_router::PluginEntry;
use signalbox_router::sns::SnsSource;
use signalbox_testkit::{TestNats, TestRouter, plugin_component};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:load";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";

#[derive(Debug, Clone)]
struct Args {
    requests: usize,
    concurrency: usize,
    reps: usize,
    version: u8,
    tmpfs: bool,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut a = Args {
            requests: 2000,
            concurrency: 16,
            reps: 5,
            version: 2,
            tmpfs: true,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut num = |name: &str| -> Result<usize> {
                it.next()
                    .with_context(|| format!("{name} needs a value"))?
                    .parse()
                    .with_context(|| format!("{name} needs a number"))
            };
            match flag.as_str() {
                "--requests" => a.requests = num("--requests")?,
                "--concurrency" => a.concurrency = num("--concurrency")?.max(1),
                "--reps" => a.reps = num("--reps")?.max(1),
                "--version" => a.version = u8::try_from(num("--version")?)?,
                "--no-tmpfs" => a.tmpfs = false,
                "--bench" => {}
                other => bail!("unknown option {other}"),
            }
        }
        if !matches!(a.version, 1 | 2) {
            bail!("--version is 1 or 2");
        }
        Ok(a)
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sns")
        .join(name)
}

/// A signed SNS Notification body, in the layout of AWS's documented example.
fn sns_body(key: &rsa::PrivateKey, version: u8, message_id: &str, message: &str) -> Result<String> {
    let ts = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .context("timestamp")?;
    let text = format!(
        "Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{ts}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    );
    let sig = if version == 1 {
        key.sign(
            rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            &sha1::Sha1::digest(text.as_bytes()),
        )?
    } else {
        key.sign(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(text.as_bytes()),
        )?
    };
    let q = |s: &str| Value::String(s.to_string()).to_string();
    Ok(format!(
        "{{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : {},\n  \"TopicArn\" : {},\n  \"Message\" : {},\n  \"Timestamp\" : {},\n  \"SignatureVersion\" : \"{version}\",\n  \"Signature\" : {},\n  \"SigningCertURL\" : {},\n  \"UnsubscribeURL\" : {}\n}}",
        q(message_id),
        q(TOPIC),
        q(message),
        q(&ts),
        q(&base64::engine::general_purpose::STANDARD.encode(sig)),
        q(CERT_URL),
        q(&format!(
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:c9135db0-26c4-47ec-8998-413945fb5a96"
        )),
    ))
}

/// Sends every body to `url`, `concurrency` at a time; requests per second.
async fn blast(
    client: &reqwest::Client,
    url: &str,
    bodies: Vec<String>,
    concurrency: usize,
) -> Result<f64> {
    let n = bodies.len();
    let started = Instant::now();
    let mut results = futures::stream::iter(bodies.into_iter().map(|body| {
        let req = client.post(url).body(body).send();
        async move {
            let resp = req.await.context("request")?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() || text.contains("\"duplicate\":true") {
                bail!("{status}: {text}");
            }
            Ok(())
        }
    }))
    .buffer_unordered(concurrency);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(
    args: &Args,
    nats: &TestNats,
    key: &rsa::PrivateKey,
    data_dir: &std::path::Path,
    label: &str,
) -> Result<(f64, f64)> {
    let webhook = plugin_component("adapter_webhook_json")?;
    let sns = plugin_component("adapter_sns")?;
    let mut config = TestRouter::config(&nats.url(), data_dir);
    config.http.listen = Some("127.0.0.1:0".into());
    config.plugins.adapters.push(PluginEntry {
        name: "noop".into(),
        file: webhook,
        settings: BTreeMap::from([
            ("name".to_string(), "load".to_string()),
            ("id-pointer".to_string(), "/id".to_string()),
        ]),
    });
    config.plugins.adapters.push(PluginEntry {
        name: "sns-load".into(),
        file: sns,
        settings: BTreeMap::from([("name".to_string(), "load".to_string())]),
    });
    let mut source = SnsSource::new("load", "sns-load", &[TOPIC]);
    source
        .pinned_certs
        .insert(CERT_URL.into(), fixture("signing-cert.pem"));
    config.sources.sns = vec![source];
    let router = TestRouter::start_with(config).await?;
    let addr: SocketAddr = router.router().http_addr().context("HTTP on")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Warm-up (instances, connections, page cache): not measured.
    let warm = args.requests.min(200);
    let hooks: Vec<String> = (0..warm)
        .map(|i| json!({"id": format!("{label}-warm-w{i}"), "n": i}).to_string())
        .collect();
    blast(
        &client,
        &format!("http://{addr}/ingest/noop"),
        hooks,
        args.concurrency,
    )
    .await?;
    let mut snss = Vec::with_capacity(warm);
    for i in 0..warm {
        let message = json!({"id": i, "n": i}).to_string();
        snss.push(sns_body(
            key,
            args.version,
            &format!("{label}-warm-s{i}"),
            &message,
        )?);
    }
    blast(
        &client,
        &format!("http://{addr}/sns/load"),
        snss,
        args.concurrency,
    )
    .await?;
    let (mut hook_rates, mut sns_rates) = (Vec::new(), Vec::new());
    for rep in 0..args.reps {
        let hooks: Vec<String> = (0..args.requests)
            .map(|i| json!({"id": format!("{label}-w{rep}-{i}"), "n": i}).to_string())
            .collect();
        let mut snss = Vec::with_capacity(args.requests);
        for i in 0..args.requests {
            let message = json!({"id": i, "n": i}).to_string();
            snss.push(sns_body(
                key,
                args.version,
                &format!("{label}-s{rep}-{i}"),
                &message,
            )?);
        }
        // Alternate which endpoint goes first.
        let hook_url = format!("http://{addr}/ingest/noop");
        let sns_url = format!("http://{addr}/sns/load");
        let (hook, sns) = if rep % 2 == 0 {
            let hook = blast(&client, &hook_url, hooks, args.concurrency).await?;
            (
                hook,
                blast(&client, &sns_url, snss, args.concurrency).await?,
            )
        } else {
            let sns = blast(&client, &sns_url, snss, args.concurrency).await?;
            (
                blast(&client, &hook_url, hooks, args.concurrency).await?,
                sns,
            )
        };
        println!("  {label} rep {rep}: webhook {hook:.0} req/s, sns {sns:.0} req/s");
        hook_rates.push(hook);
        sns_rates.push(sns);
    }
    router.shutdown().await;
    Ok((median(hook_rates), median(sns_rates)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let pem = std::fs::read_to_string(fixture("signing-key.pem"))?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key =
        rsa::PrivateKey::from_pkcs8_der(&base64::engine::general_purpose::STANDARD.decode(b64)?)?;
    let nats = TestNats::start()?;
    println!(
        "SNS endpoint vs webhook endpoint: {} requests per rep, {} concurrent, {} reps, SignatureVersion {}",
        args.requests, args.concurrency, args.reps, args.version
    );
    let mut rows = Vec::new();
    let disk = tempfile::tempdir_in(std::env::temp_dir())?;
    rows.push((
        "disk",
        measure(&args, &nats, &key, disk.path(), "disk").await?,
    ));
    if args.tmpfs && std::path::Path::new("/dev/shm").is_dir() {
        let shm = tempfile::tempdir_in("/dev/shm")?;
        rows.push((
            "tmpfs",
            measure(&args, &nats, &key, shm.path(), "tmpfs").await?,
        ));
    }
    println!("\n| data dir | webhook req/s | SNS req/s | SNS / webhook |");
    println!("|---|---|---|---|");
    for (label, (hook, sns)) in rows {
        println!("| {label} | {hook:.0} | {sns:.0} | {:.2} |", sns / hook);
    }
    Ok(())
}
