//! AWS SNS ingestion end to end: `POST /sns/<source>` on a real router with the
//! real `sns` adapter component, through a real nats-server.
//!
//! Messages are signed here, independently of the router's code, with the
//! test-only key of `tests/fixtures/sns/` (its certificate is pinned under a
//! `SigningCertURL`, or served by a local HTTP server standing in for the SNS
//! host through `endpoint_url`), in the body format AWS documents: the
//! documented examples' key order, `"Key" : "value"` spacing and two-space
//! indent, `Subject` only when present, `MessageAttributes` as
//! `{"name": {"Type", "Value"}}`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use signalbox_router::PluginEntry;
use signalbox_router::sns::SnsSource;
use signalbox_testkit::{
    RouterCase, WAIT, admin, expect_silence, http_request, next_message, plugin_component,
};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders";
const OTHER_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:payments";
/// The URL the test certificate is pinned under (or served at, by path).
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";
const CERT_PATH: &str = "/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sns")
        .join(name)
}

/// Signs like SNS: SHA1withRSA (version 1) or SHA256withRSA (version 2).
struct Signer(rsa::PrivateKey);

impl Signer {
    fn load() -> Result<Signer> {
        let pem = std::fs::read_to_string(fixture("signing-key.pem"))?;
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
        Ok(Signer(rsa::PrivateKey::from_pkcs8_der(&der)?))
    }

    fn sign(&self, version: u8, text: &str) -> Result<String> {
        let sig = if version == 1 {
            self.0.sign(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(text.as_bytes()),
            )?
        } else {
            self.0.sign(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(text.as_bytes()),
            )?
        };
        Ok(base64::engine::general_purpose::STANDARD.encode(sig))
    }
}

/// ISO 8601 with milliseconds, as SNS writes it, `offset` from now.
fn timestamp(offset: time::Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + offset;
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// One SNS message, built field by field and rendered as SNS renders it.
#[derive(Clone)]
struct Sns {
    kind: &'static str,
    message_id: String,
    topic: String,
    subject: Option<String>,
    message: String,
    timestamp: String,
    version: u8,
    cert_url: String,
    token: String,
    subscribe_url: String,
    attributes: Option<Value>,
}

impl Sns {
    fn notification(message_id: &str, message: &str) -> Sns {
        Sns {
            kind: "Notification",
            message_id: message_id.into(),
            topic: TOPIC.into(),
            subject: None,
            message: message.into(),
            timestamp: timestamp(time::Duration::ZERO),
            version: 1,
            cert_url: CERT_URL.into(),
            token: String::new(),
            subscribe_url: String::new(),
            attributes: None,
        }
    }

    fn confirmation(kind: &'static str, token: &str) -> Sns {
        Sns {
            kind,
            message_id: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b".into(),
            message: format!(
                "You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
            ),
            token: token.into(),
            subscribe_url: format!(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}"
            ),
            ..Sns::notification("", "")
        }
    }

    /// The canonical string AWS documents for this message type.
    fn string_to_sign(&self) -> String {
        let mut pairs: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        if self.kind == "Notification" {
            if let Some(s) = &self.subject {
                pairs.push(("Subject", s));
            }
            pairs.extend([
                ("Timestamp", self.timestamp.as_str()),
                ("TopicArn", &self.topic),
            ]);
        } else {
            pairs.extend([
                ("SubscribeURL", self.subscribe_url.as_str()),
                ("Timestamp", &self.timestamp),
                ("Token", &self.token),
                ("TopicArn", &self.topic),
            ]);
        }
        pairs.push(("Type", self.kind));
        pairs.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect()
    }

    /// The HTTP body, signed, in the layout of AWS's documented examples.
    fn body(&self, signer: &Signer) -> Result<String> {
        let signature = signer.sign(self.version, &self.string_to_sign())?;
        Ok(self.render(&signature))
    }

    fn render(&self, signature: &str) -> String {
        let q = |s: &str| Value::String(s.to_string()).to_string();
        let mut lines = vec![format!("  \"Type\" : {}", q(self.kind))];
        lines.push(format!("  \"MessageId\" : {}", q(&self.message_id)));
        if self.kind == "Notification" {
            lines.push(format!("  \"TopicArn\" : {}", q(&self.topic)));
            if let Some(s) = &self.subject {
                lines.push(format!("  \"Subject\" : {}", q(s)));
            }
            lines.push(format!("  \"Message\" : {}", q(&self.message)));
        } else {
            lines.push(format!("  \"Token\" : {}", q(&self.token)));
            lines.push(format!("  \"TopicArn\" : {}", q(&self.topic)));
            lines.push(format!("  \"Message\" : {}", q(&self.message)));
            lines.push(format!("  \"SubscribeURL\" : {}", q(&self.subscribe_url)));
        }
        lines.push(format!("  \"Timestamp\" : {}", q(&self.timestamp)));
        lines.push(format!(
            "  \"SignatureVersion\" : {}",
            q(&self.version.to_string())
        ));
        lines.push(format!("  \"Signature\" : {}", q(signature)));
        lines.push(format!("  \"SigningCertURL\" : {}", q(&self.cert_url)));
        if self.kind == "Notification" {
            lines.push(format!(
                "  \"UnsubscribeURL\" : {}",
                q(&format!(
                    "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={}:c9135db0-26c4-47ec-8998-413945fb5a96",
                    self.topic
                ))
            ));
            if let Some(attrs) = &self.attributes {
                lines.push(format!("  \"MessageAttributes\" : {attrs}"));
            }
        }
        format!("{{\n{}\n}}", lines.join(",\n"))
    }
}

/// The headers SNS sends with a JSON delivery.
fn sns_headers(m: &Sns) -> Vec<(&'static str, String)> {
    vec![
        ("x-amz-sns-message-type", m.kind.to_string()),
        ("x-amz-sns-message-id", m.message_id.clone()),
        ("x-amz-sns-topic-arn", m.topic.clone()),
        ("Content-Type", "text/plain; charset=UTF-8".to_string()),
        (
            "User-Agent",
            "Amazon Simple Notification Service Agent".to_string(),
        ),
    ]
}

async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> Result<(u16, Value)> {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, reply) = http_request(addr, "POST", path, &h, body).await?;
    let v = serde_json::from_str(&reply).with_context(|| format!("reply is not JSON: {reply}"))?;
    Ok((status, v))
}

/// A router (HTTP on) with the `sns` adapter and the SNS sources `sources`.
async fn sns_case(sources: Vec<SnsSource>) -> Result<RouterCase> {
    let adapter = plugin_component("adapter_sns")?;
    RouterCase::start(|c| {
        c.plugins.adapters.push(PluginEntry {
            name: "sns-orders".into(),
            file: adapter,
            settings: BTreeMap::from([
                ("name-pointer".to_string(), "/event".to_string()),
                ("name".to_string(), "sns_message".to_string()),
                ("subject-param".to_string(), "subject".to_string()),
            ]),
        });
        c.sources.sns = sources;
    })
    .await
}

/// The `orders` source: the allow-listed topic and the pinned test certificate.
fn orders_source() -> SnsSource {
    let mut s = SnsSource::new("orders", "sns-orders", &[TOPIC]);
    s.pinned_certs
        .insert(CERT_URL.into(), fixture("signing-cert.pem"));
    s
}

async fn metrics(addr: SocketAddr) -> Result<String> {
    let (status, text) = http_request(addr, "GET", "/metrics", &[], "").await?;
    anyhow::ensure!(status == 200, "metrics: {status}");
    Ok(text)
}

fn metric<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
}

const BIG_ORDERS: &str = "id: big-orders\nsignal: order_placed\nwhere: {amount: [{numeric: ['>', 100]}]}\naction: {trigger: {subject: runs.orders}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_notifications_v1_and_v2_become_signals_and_fire() -> Result<()> {
    let RouterCase {
        nats: _nats,
        router,
        client,
        addr,
    } = sns_case(vec![orders_source()]).await?;
    let mut runs = router.watch(&client, BIG_ORDERS, "runs.orders").await?;
    let signer = Signer::load()?;

    // SignatureVersion 1, with a Subject and message attributes of each type.
    let mut v1 = Sns::notification(
        "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        r#"{"event": "order_placed", "order": "o-1", "amount": 250}"#,
    );
    v1.subject = Some("New order".into());
    v1.attributes = Some(json!({
        "region": {"Type": "String", "Value": "eu-west-1"},
        "priority": {"Type": "Number", "Value": "3"},
        "weight": {"Type": "Number", "Value": "2.5"},
        "blob": {"Type": "Binary", "Value": "AAEC"},
        "tags": {"Type": "String.Array", "Value": "[\"a\", \"b\"]"}
    }));
    let (status, reply) = post(addr, "/sns/orders", &sns_headers(&v1), &v1.body(&signer)?).await?;
    assert_eq!(status, 200, "{reply}");
    let ack = &reply["signals"][0];
    assert_eq!(ack["name"], "order_placed");
    assert_eq!(ack["id"], v1.message_id, "the MessageId is the signal id");
    assert_eq!(ack["duplicate"], false);
    assert_eq!(ack["matched"], json!(["big-orders"]));
    let firing: Value = serde_json::from_slice(&next_message(&mut runs, WAIT).await?.payload)?;
    assert_eq!(firing["signals"][0]["id"], v1.message_id, "{firing}");

    // What was stored: the Message's fields, the attributes by type, the
    // Subject, and an SNS origin.
    let shown = admin(
        &client,
        router.admin_prefix(),
        "signals.show",
        &json!({"name": "order_placed", "id": v1.message_id}).to_string(),
    )
    .await?;
    let signal = &shown["signal"];
    let params = &signal["signal"]["params"];
    assert_eq!(params["order"], "o-1", "{shown}");
    assert_eq!(params["amount"], 250);
    assert_eq!(params["subject"], "New order");
    assert_eq!(
        params["attributes"],
        json!({"region": "eu-west-1", "priority": 3, "weight": 2.5, "blob": "AAEC", "tags": ["a", "b"]})
    );
    assert_eq!(signal["origin"]["transport"], "sns", "{shown}");
    assert_eq!(signal["origin"]["address"], TOPIC);
    assert_eq!(signal["origin"]["adapter"], "sns-orders");

    // SignatureVersion 2 (SHA256withRSA), no Subject.
    let mut v2 = Sns::notification(
        "f1c4a2c8-4b0e-5d6a-9a3e-2f6f0e0c1b27",
        r#"{"event": "order_placed", "order": "o-2", "amount": 900}"#,
    );
    v2.version = 2;
    let (status, reply) = post(addr, "/sns/orders", &sns_headers(&v2), &v2.body(&signer)?).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["signals"][0]["matched"], json!(["big-orders"]));
    let firing: Value = serde_json::from_slice(&next_message(&mut runs, WAIT).await?.payload)?;
    assert_eq!(firing["signals"][0]["id"], v2.message_id);

    // A text Message: the fixed name, the text as param `message`.
    let text = Sns::notification("0d6a3c52-6f4e-4c1c-9c7f-6a1b2e3d4f50", "Hello world!");
    let (status, reply) = post(
        addr,
        "/sns/orders",
        &sns_headers(&text),
        &text.body(&signer)?,
    )
    .await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["signals"][0]["name"], "sns_message");
    let shown = admin(
        &client,
        router.admin_prefix(),
        "signals.show",
        &json!({"name": "sns_message", "id": text.message_id}).to_string(),
    )
    .await?;
    assert_eq!(
        shown["signal"]["signal"]["params"]["message"], "Hello world!",
        "{shown}"
    );

    let m = metrics(addr).await?;
    assert_eq!(
        metric(&m, "signalbox_signals_received_total{transport=\"sns\"}"),
        Some("3"),
        "{m}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sns_retry_of_the_same_message_id_is_a_duplicate_and_fires_once() -> Result<()> {
    let RouterCase {
        nats: _nats,
        router,
        client,
        addr,
    } = sns_case(vec![orders_source()]).await?;
    let mut runs = router.watch(&client, BIG_ORDERS, "runs.orders").await?;
    let signer = Signer::load()?;

    let m = Sns::notification(
        "5e1a8f0c-2b7d-4e8a-bf4c-3d2e1f0a9b8c",
        r#"{"event": "order_placed", "order": "o-3", "amount": 500}"#,
    );
    let body = m.body(&signer)?;
    let (status, first) = post(addr, "/sns/orders", &sns_headers(&m), &body).await?;
    assert_eq!(
        (status, &first["signals"][0]["duplicate"]),
        (200, &json!(false)),
        "{first}"
    );
    // SNS retries with the same MessageId (and, here, the very same body).
    let (status, again) = post(addr, "/sns/orders", &sns_headers(&m), &body).await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["signals"][0]["duplicate"], true, "{again}");
    assert_eq!(again["signals"][0]["seq"], first["signals"][0]["seq"]);

    next_message(&mut runs, WAIT).await?;
    expect_silence(&mut runs, Duration::from_millis(500)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_name_the_rule_and_are_counted() -> Result<()> {
    let case = sns_case(vec![orders_source()]).await?;
    let addr = case.addr;
    let signer = Signer::load()?;
    let order = r#"{"event": "order_placed", "order": "o-9", "amount": 999}"#;
    let good = Sns::notification("9b2f4c1e-0a3d-4b5c-8d7e-6f5a4b3c2d1e", order);

    struct Case {
        what: &'static str,
        path: &'static str,
        body: String,
        status: u16,
        field: &'static str,
        says: &'static str,
    }
    let signed = |m: &Sns| m.body(&signer);
    let tampered = {
        // Signed, then the Message changed in transit.
        let body = signed(&good)?;
        body.replace("\\\"amount\\\": 999", "\\\"amount\\\": 1")
    };
    assert_ne!(tampered, signed(&good)?, "the tampering changed the body");
    let wrong_host = Sns {
        cert_url:
            "https://sns.us-east-1.amazonaws.com.attacker.example/SimpleNotificationService-1.pem"
                .into(),
        ..good.clone()
    };
    let plain_http = Sns {
        cert_url: CERT_URL.replace("https://", "http://"),
        ..good.clone()
    };
    let expired = Sns {
        timestamp: timestamp(time::Duration::hours(-2)),
        ..good.clone()
    };
    let future = Sns {
        timestamp: timestamp(time::Duration::hours(1)),
        ..good.clone()
    };
    let unknown_topic = Sns {
        topic: OTHER_TOPIC.into(),
        ..good.clone()
    };
    let version_3 = good.render("AAAA").replace(
        "\"SignatureVersion\" : \"1\"",
        "\"SignatureVersion\" : \"3\"",
    );
    let cases = vec![
        Case {
            what: "tampered body",
            path: "/sns/orders",
            body: tampered,
            status: 403,
            field: "Signature",
            says: "does not match",
        },
        Case {
            what: "wrong certificate host",
            path: "/sns/orders",
            body: signed(&wrong_host)?,
            status: 403,
            field: "SigningCertURL",
            says: "not an SNS host",
        },
        Case {
            what: "certificate over http",
            path: "/sns/orders",
            body: signed(&plain_http)?,
            status: 403,
            field: "SigningCertURL",
            says: "https",
        },
        Case {
            what: "expired timestamp",
            path: "/sns/orders",
            body: signed(&expired)?,
            status: 403,
            field: "Timestamp",
            says: "max_age",
        },
        Case {
            what: "timestamp in the future",
            path: "/sns/orders",
            body: signed(&future)?,
            status: 403,
            field: "Timestamp",
            says: "future",
        },
        Case {
            what: "unknown topic",
            path: "/sns/orders",
            body: signed(&unknown_topic)?,
            status: 403,
            field: "TopicArn",
            says: "not in sources.sns[orders].topic_arns",
        },
        Case {
            what: "unknown signature version",
            path: "/sns/orders",
            body: version_3,
            status: 403,
            field: "SignatureVersion",
            says: "unsupported",
        },
        Case {
            what: "not JSON",
            path: "/sns/orders",
            body: "Hello".into(),
            status: 400,
            field: "body",
            says: "not JSON",
        },
        Case {
            what: "unknown source",
            path: "/sns/nope",
            body: signed(&good)?,
            status: 404,
            field: "source",
            says: "orders",
        },
    ];
    for c in &cases {
        let (status, reply) = post(addr, c.path, &sns_headers(&good), &c.body).await?;
        assert_eq!(status, c.status, "{}: {reply}", c.what);
        assert_eq!(reply["error"]["field"], c.field, "{}: {reply}", c.what);
        let rule = reply["error"]["rule"].as_str().unwrap_or_default();
        assert!(rule.contains(c.says), "{}: {reply}", c.what);
    }

    // Each rejection is counted under its rule; nothing was taken in. The
    // untampered message still passes afterwards.
    let m = metrics(addr).await?;
    for (reason, n) in [
        ("Signature", "1"),
        ("SigningCertURL", "2"),
        ("Timestamp", "2"),
        ("TopicArn", "1"),
        ("SignatureVersion", "1"),
        ("body", "1"),
        ("source", "1"),
    ] {
        let series = format!("signalbox_sns_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&m, &series), Some(n), "{series}\n{m}");
    }
    assert_eq!(
        metric(&m, "signalbox_signals_received_total{transport=\"sns\"}"),
        Some("0")
    );
    let (status, reply) = post(addr, "/sns/orders", &sns_headers(&good), &signed(&good)?).await?;
    assert_eq!(status, 200, "{reply}");

    // The SNS source's adapter is not a webhook route: an unsigned message
    // cannot reach it through /ingest/.
    let unsigned = good.render("AAAA");
    let (status, reply) = post(addr, "/ingest/sns-orders", &[], &unsigned).await?;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["error"]["field"], "adapter", "{reply}");
    Ok(())
}

/// A local stand-in for the SNS host, reached through `endpoint_url`: serves
/// the test certificate and answers ConfirmSubscription, recording every GET.
struct FakeSnsHost {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeSnsHost {
    async fn start() -> Result<FakeSnsHost> {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let cert = std::fs::read_to_string(fixture("signing-cert.pem"))?;
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let log = log.clone();
            let cert = cert.clone();
            async move {
                let target = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                log.lock().map(|mut l| l.push(target.clone())).ok();
                if uri.path() == CERT_PATH {
                    cert
                } else {
                    "<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>ok</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>".to_string()
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeSnsHost { addr, seen })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_confirmation_is_fetched_only_when_configured() -> Result<()> {
    let host = FakeSnsHost::start().await?;
    // `confirming` fetches the certificate and SubscribeURL from the fake host;
    // `logging` has the certificate pinned and only logs the SubscribeURL.
    let mut confirming = SnsSource::new("confirming", "sns-orders", &[TOPIC]);
    confirming.confirm_subscriptions = true;
    confirming.endpoint_url = Some(format!("http://{}", host.addr));
    let mut logging = orders_source();
    logging.name = "logging".into();
    logging.endpoint_url = Some(format!("http://{}", host.addr));
    let case = sns_case(vec![confirming, logging]).await?;
    let addr = case.addr;
    let signer = Signer::load()?;

    // Confirmation off: answered, logged, nothing fetched.
    let sub = Sns::confirmation("SubscriptionConfirmation", "2336412f37fb687f5d51e6e2425");
    let (status, reply) = post(
        addr,
        "/sns/logging",
        &sns_headers(&sub),
        &sub.body(&signer)?,
    )
    .await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["confirmed"], false);
    assert!(host.seen().is_empty(), "{:?}", host.seen());

    // Confirmation on: the certificate is fetched (not pinned), then the
    // SubscribeURL with the Token.
    let (status, reply) = post(
        addr,
        "/sns/confirming",
        &sns_headers(&sub),
        &sub.body(&signer)?,
    )
    .await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["confirmed"], true, "{reply}");
    let seen = host.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], CERT_PATH);
    assert!(
        seen[1].starts_with("/?Action=ConfirmSubscription")
            && seen[1].contains("Token=2336412f37fb687f5d51e6e2425"),
        "{seen:?}"
    );

    // The certificate is cached: a notification fetches nothing more.
    let n = Sns::notification(
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        r#"{"event": "order_placed", "order": "o-4", "amount": 5}"#,
    );
    let (status, reply) =
        post(addr, "/sns/confirming", &sns_headers(&n), &n.body(&signer)?).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(host.seen().len(), 2, "{:?}", host.seen());

    // A confirmation with a SubscribeURL off the SNS hosts is refused even
    // when correctly signed.
    let mut evil = Sns::confirmation("SubscriptionConfirmation", "t2");
    evil.subscribe_url = "https://attacker.example/?Action=ConfirmSubscription".into();
    let (status, reply) = post(
        addr,
        "/sns/confirming",
        &sns_headers(&evil),
        &evil.body(&signer)?,
    )
    .await?;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["error"]["field"], "SubscribeURL");
    assert_eq!(host.seen().len(), 2);

    // UnsubscribeConfirmation: verified and logged.
    let unsub = Sns::confirmation("UnsubscribeConfirmation", "2336412f37fb687f5d51e6e2426");
    let (status, reply) = post(
        addr,
        "/sns/logging",
        &sns_headers(&unsub),
        &unsub.body(&signer)?,
    )
    .await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["type"], "UnsubscribeConfirmation");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_message_delivery_only_where_enabled() -> Result<()> {
    let mut raw = SnsSource::new("raw", "sns-orders", &[TOPIC]);
    raw.raw_delivery = true;
    let RouterCase {
        nats: _nats,
        router,
        client,
        addr,
    } = sns_case(vec![orders_source(), raw]).await?;
    let mut runs = router.watch(&client, BIG_ORDERS, "runs.orders").await?;

    let raw_headers = |topic: &str, id: &str| {
        vec![
            ("x-amz-sns-message-type", "Notification".to_string()),
            ("x-amz-sns-message-id", id.to_string()),
            ("x-amz-sns-topic-arn", topic.to_string()),
            (
                "x-amz-sns-subscription-arn",
                format!("{topic}:c9135db0-26c4-47ec-8998-413945fb5a96"),
            ),
            ("x-amz-sns-rawdelivery", "true".to_string()),
            ("Content-Type", "text/plain; charset=UTF-8".to_string()),
        ]
    };
    let order = r#"{"event": "order_placed", "order": "o-5", "amount": 300}"#;

    // Enabled: the body is the message itself.
    let id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let (status, reply) = post(addr, "/sns/raw", &raw_headers(TOPIC, id), order).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["signals"][0]["id"], id);
    assert_eq!(reply["signals"][0]["matched"], json!(["big-orders"]));
    next_message(&mut runs, WAIT).await?;

    // The topic allow-list still applies.
    let (status, reply) = post(addr, "/sns/raw", &raw_headers(OTHER_TOPIC, "x-1"), order).await?;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (403, &json!("TopicArn")),
        "{reply}"
    );

    // Not enabled on `orders`: unsigned raw deliveries are refused.
    let (status, reply) = post(addr, "/sns/orders", &raw_headers(TOPIC, "x-2"), order).await?;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["error"]["field"], "x-amz-sns-rawdelivery");
    expect_silence(&mut runs, Duration::from_millis(300)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_adapter_works_on_sns_too() -> Result<()> {
    let component = signalbox_testkit::python_plugin_component("webhook-json")?;
    let RouterCase {
        nats: _nats,
        router,
        client,
        addr,
    } = RouterCase::start(|c| {
        c.plugins.adapters.push(PluginEntry {
            name: "py-sns".into(),
            file: component,
            settings: BTreeMap::from([
                ("name".to_string(), "sns_note".to_string()),
                ("id-pointer".to_string(), "/MessageId".to_string()),
                (
                    "params".to_string(),
                    r#"{"subject": "/Subject", "topic": "/TopicArn"}"#.to_string(),
                ),
            ]),
        });
        let mut s = SnsSource::new("notes", "py-sns", &[TOPIC]);
        s.pinned_certs
            .insert(CERT_URL.into(), fixture("signing-cert.pem"));
        c.sources.sns = vec![s];
    })
    .await?;
    let signer = Signer::load()?;
    let mut m = Sns::notification("0b7c5d1e-3f2a-4c9b-8e6d-1a2b3c4d5e6f", "plain text");
    m.subject = Some("Deploy done".into());
    let (status, reply) = post(addr, "/sns/notes", &sns_headers(&m), &m.body(&signer)?).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["signals"][0]["name"], "sns_note", "{reply}");
    assert_eq!(reply["signals"][0]["id"], m.message_id);
    let shown = admin(
        &client,
        router.admin_prefix(),
        "signals.show",
        &json!({"name": "sns_note", "id": m.message_id}).to_string(),
    )
    .await?;
    let params = &shown["signal"]["signal"]["params"];
    assert_eq!(params["subject"], "Deploy done", "{shown}");
    assert_eq!(params["topic"], TOPIC);
    assert_eq!(shown["signal"]["origin"]["transport"], "sns");
    // A tampered body is still refused before the Python adapter runs.
    let tampered = m.body(&signer)?.replace("Deploy done", "Deploy undone");
    let (status, reply) = post(addr, "/sns/notes", &sns_headers(&m), &tampered).await?;
    assert_eq!(status, 403, "{reply}");
    router.shutdown().await;
    Ok(())
}
