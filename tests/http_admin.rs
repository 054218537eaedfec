//! The HTTP admin API over a real socket: health, the bearer token (401 without
//! or with a wrong one), admin verbs, lineage and explain as JSON, DOT export.

use anyhow::Result;
use serde_json::{Value, json};
use signalbox_testkit::{TestNats, TestRouter, http_request, init_logs, publish_signal};

#[tokio::test]
async fn http_admin_api_with_a_bearer_token() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start_configured(&nats, |config| {
        config.http.listen = Some("127.0.0.1:0".into());
        config.http.token = Some("s3cret-token".into());
    })
    .await?;
    let addr = router.router().http_addr().expect("HTTP is on");
    let auth = [("Authorization", "Bearer s3cret-token")];

    let (status, body) = http_request(addr, "GET", "/healthz", &[], "").await?;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http_request(addr, "GET", "/readyz", &[], "").await?;
    assert_eq!(status, 200, "{body}");

    let sub = "id: big\nsignal: t\nwhere: {rows: [{numeric: ['>', 10]}]}\naction: {publish: {subject: out.big}}";
    let (status, _) = http_request(addr, "POST", "/v1/admin/sub.add", &[], sub).await?;
    assert_eq!(status, 401, "no token");
    let wrong = [("Authorization", "Bearer nope")];
    let (status, body) = http_request(addr, "POST", "/v1/admin/sub.add", &wrong, sub).await?;
    assert_eq!(status, 401, "wrong token");
    assert!(
        !body.contains("s3cret"),
        "the token never appears in replies"
    );
    let (status, body) = http_request(addr, "POST", "/v1/admin/sub.add", &auth, sub).await?;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(v["outcome"], "created");
    // The two refusals are counted (and /metrics needs no token).
    let (_, text) = http_request(addr, "GET", "/metrics", &[], "").await?;
    assert_eq!(
        metric(&text, "signalbox_http_unauthorized_total "),
        Some(2.0),
        "{text}"
    );

    let client = nats.client().await?;
    publish_signal(
        &client,
        "t",
        &json!({"id": "a", "params": {"rows": 50}}).to_string(),
    )
    .await?;
    publish_signal(
        &client,
        "t",
        &json!({"id": "b", "params": {"rows": 5}}).to_string(),
    )
    .await?;

    let (status, body) = http_request(addr, "GET", "/v1/lineage/signal/t/1", &auth, "").await?;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(v["matched"], json!(["big"]));
    let (status, body) =
        http_request(addr, "GET", "/v1/explain?sub=big&signal=t:2", &auth, "").await?;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(v["matches"], false);
    assert!(
        v["verdict"].as_str().unwrap_or_default().contains("rows"),
        "{v}"
    );
    let (status, body) =
        http_request(addr, "GET", "/v1/lineage/export?format=dot", &auth, "").await?;
    assert_eq!(status, 200);
    assert!(body.starts_with("digraph lineage {"), "{body}");

    let (status, body) = http_request(addr, "GET", "/v1/lineage/sub/nope", &auth, "").await?;
    assert_eq!(
        status, 200,
        "an unknown subscription has no firings: {body}"
    );
    let (status, _) = http_request(addr, "GET", "/v1/lineage/firing/nope", &auth, "").await?;
    assert_eq!(status, 404);
    let (status, body) = http_request(
        addr,
        "POST",
        "/v1/admin/sub.add",
        &auth,
        "id: x\nsignal: t\n",
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(v["error"]["field"], "action");
    Ok(())
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A router with its HTTP listener on (and `tweak`ed), holding the
/// subscription `sub`; its HTTP address; a client subscribed to `out`.
async fn http_router(
    nats: &TestNats,
    tweak: impl FnOnce(&mut signalbox_router::RouterConfig),
    sub: &str,
    out: &str,
) -> Result<(
    TestRouter,
    std::net::SocketAddr,
    async_nats::Client,
    async_nats::Subscriber,
)> {
    let router = TestRouter::start_configured(nats, |config| {
        config.http.listen = Some("127.0.0.1:0".into());
        tweak(config);
    })
    .await?;
    let addr = router.router().http_addr().expect("HTTP is on");
    let client = nats.client().await?;
    router.add_subscription(&client, sub).await?;
    let out = client.subscribe(out.to_string()).await?;
    client.flush().await?;
    Ok((router, addr, client, out))
}

/// Polls `/metrics` until the metric whose line starts with `line_start`
/// satisfies `ok` (within the test wait); returns that scrape.
async fn metrics_when(
    addr: std::net::SocketAddr,
    line_start: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<String> {
    let deadline = std::time::Instant::now() + signalbox_testkit::WAIT;
    loop {
        let (status, text) = http_request(addr, "GET", "/metrics", &[], "").await?;
        anyhow::ensure!(status == 200, "/metrics answered {status}");
        if metric(&text, line_start).is_some_and(&ok) {
            return Ok(text);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{line_start} never got there:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_move_with_a_scripted_run() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let (_router, addr, client, mut out) = http_router(
        &nats,
        |_| {},
        "id: big\nsignal: t\nwhere: {rows: [{numeric: ['>', 10]}]}\naction: {publish: {subject: out.big}}",
        "out.big",
    )
    .await?;
    publish_signal(
        &client,
        "t",
        &json!({"id": "a", "params": {"rows": 50}}).to_string(),
    )
    .await?;
    publish_signal(
        &client,
        "t",
        &json!({"id": "b", "params": {"rows": 5}}).to_string(),
    )
    .await?;
    publish_signal(
        &client,
        "t",
        &json!({"id": "a", "params": {"rows": 50}}).to_string(),
    )
    .await?;
    publish_signal(&client, "t", "not json").await?;
    signalbox_testkit::next_message(&mut out, signalbox_testkit::WAIT).await?;

    let text = metrics_when(
        addr,
        "signalbox_firings_published_total{route=\"core\"}",
        |v| v == 1.0,
    )
    .await?;
    let expect = [
        ("signalbox_signals_received_total{transport=\"nats\"}", 4.0),
        ("signalbox_signals_rejected_total", 1.0),
        ("signalbox_signals_duplicate_total", 1.0),
        ("signalbox_signals_stored_total", 2.0),
        ("signalbox_matches_total", 1.0),
        ("signalbox_firings_created_total", 1.0),
        ("signalbox_commit_seconds_count", 3.0),
        ("signalbox_outbox_pending", 0.0),
        ("signalbox_outbox_oldest_age_seconds", 0.0),
        ("signalbox_join_offers", 0.0),
        ("signalbox_firing_latency_seconds_count", 1.0),
        ("signalbox_http_unauthorized_total", 0.0),
        (
            "signalbox_signals_rejected_by_reason_total{transport=\"nats\",reason=\"body\"}",
            1.0,
        ),
        ("signalbox_store_signals", 2.0),
        ("signalbox_subscriptions", 1.0),
    ];
    for (name, want) in expect {
        assert_eq!(
            metric(&text, &format!("{name} ")),
            Some(want),
            "{name}:\n{text}"
        );
    }
    Ok(())
}

/// Core NATS has no flow control: signals published faster than the router
/// takes them overflow its subscription and are dropped by the client. That
/// must be visible (a log line and a counter), and the router must go on.
#[tokio::test]
async fn a_core_ingest_overflow_is_counted_and_the_router_goes_on() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let (router, addr, client, mut out) = http_router(
        &nats,
        |config| config.nats.subscription_capacity = 64,
        "id: last\nsignal: t\nwhere: {n: [{numeric: ['<', 0]}]}\naction: {publish: {subject: out.last}}",
        "out.last",
    )
    .await?;
    let subject = format!("{}.t", router.subject_prefix());
    for i in 0..20_000u32 {
        let body = json!({"id": format!("flood-{i}"), "params": {"n": i}}).to_string();
        client.publish(subject.clone(), body.into()).await?;
    }
    client.flush().await?;

    metrics_when(addr, "signalbox_nats_slow_consumer_events_total ", |v| {
        v >= 1.0
    })
    .await?;

    // The router goes on. Messages already on their way may still be dropped,
    // so the producer retries its request (same id: a retry is at worst a
    // duplicate) until the router answers; the signal fires once.
    let body = json!({"id": "after", "params": {"n": -1}}).to_string();
    let deadline = std::time::Instant::now() + signalbox_testkit::WAIT;
    let ack: Value = loop {
        let reply = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            client.request(subject.clone(), body.clone().into()),
        )
        .await;
        if let Ok(Ok(reply)) = reply {
            break serde_json::from_slice(&reply.payload)?;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the router never answered after the flood"
        );
    };
    assert_eq!(ack["id"], "after", "{ack}");
    let firing = signalbox_testkit::next_message(&mut out, signalbox_testkit::WAIT).await?;
    let v: Value = serde_json::from_slice(&firing.payload)?;
    assert_eq!(v["subscription"], "last", "{v}");
    signalbox_testkit::expect_silence(&mut out, std::time::Duration::from_millis(300)).await?;
    assert!(
        !signalbox_testkit::logged(&["slow consumer: messages dropped"]).is_empty(),
        "the drop is logged"
    );
    Ok(())
}
