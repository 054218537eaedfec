//! End-to-end routing against a real nats-server and a real redb file.
//!
//! Each case starts its own server on a free port and its own router on a temp
//! data directory (see `signalbox-testkit`), speaks to it only over NATS, and
//! asserts on what arrives on the wire: the acknowledgement, the firing message
//! and its `Nats-Msg-Id` header.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, admin, expect_silence, init_logs, next_message, publish_raw,
    publish_signal,
};

const BIG_TABLES: &str = r#"
id: big-tables
signal: table_updated
where:
  table: ["prod.events"]
  rows: [{numeric: [">=", 1000000]}]
action: {trigger: {subject: runs.retrain}}
params: {table: "{table}", partition: "{partition}", location: "{payload.location}"}
"#;

fn table_signal(id: &str, rows: i64) -> String {
    json!({
        "name": "table_updated", "id": id,
        "params": {"table": "prod.events", "partition": 20261126, "rows": rows},
        "payload": {"location": "s3://bucket/events/20261126/"},
        "producer": {"workflow": "etl-daily", "run": "8812", "step": "load"}
    })
    .to_string()
}

async fn setup() -> Result<(TestNats, TestRouter, async_nats::Client)> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    router.add_subscription(&client, BIG_TABLES).await?;
    Ok((nats, router, client))
}

#[tokio::test]
async fn matching_signal_fires_once_with_params_and_msg_id() -> Result<()> {
    let (_nats, router, client) = setup().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;

    let ack = publish_signal(&client, "table_updated", &table_signal("load-1", 1_200_000)).await?;
    assert_eq!(ack["seq"], 1, "{ack}");
    assert_eq!(ack["id"], "load-1");
    assert_eq!(ack["duplicate"], false);
    assert_eq!(ack["matched"], json!(["big-tables"]));

    let msg = next_message(&mut firings, WAIT).await?;
    assert_eq!(msg.subject.as_str(), "runs.retrain");
    let headers = msg.headers.clone().context("firing has headers")?;
    let msg_id = headers
        .get("Nats-Msg-Id")
        .context("Nats-Msg-Id header")?
        .to_string();
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["firing_id"], msg_id.as_str());
    assert_eq!(msg_id.len(), 64, "64 hex digits: time prefix and sha-256");
    assert_eq!(body["subscription"], "big-tables");
    assert_eq!(body["action"], "trigger");
    assert_eq!(body["params"]["table"], "prod.events");
    assert_eq!(body["params"]["partition"], 20261126);
    assert_eq!(body["params"]["location"], "s3://bucket/events/20261126/");
    assert_eq!(body["signals"][0]["name"], "table_updated");
    assert_eq!(body["signals"][0]["id"], "load-1");
    assert_eq!(body["signals"][0]["seq"], 1);
    expect_silence(&mut firings, Duration::from_millis(300)).await?;

    // The firing is recorded as delivered in the store.
    let shown = admin(&client, router.admin_prefix(), "firing.show", &msg_id).await?;
    assert_eq!(
        shown["firing"]["firing"]["subscription"], "big-tables",
        "{shown}"
    );
    Ok(())
}

#[tokio::test]
async fn non_matching_signal_fires_nothing() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;

    let ack = publish_signal(&client, "table_updated", &table_signal("small", 10)).await?;
    assert_eq!(ack["matched"], json!([]), "{ack}");
    assert_eq!(ack["seq"], 1);
    let other =
        json!({"name": "table_updated", "params": {"table": "dev.events", "rows": 5_000_000}});
    let ack = publish_signal(&client, "table_updated", &other.to_string()).await?;
    assert_eq!(ack["matched"], json!([]), "{ack}");
    assert_eq!(ack["seq"], 2);
    expect_silence(&mut firings, Duration::from_millis(500)).await
}

#[tokio::test]
async fn duplicate_name_and_id_is_stored_and_fired_once() -> Result<()> {
    let (_nats, router, client) = setup().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;

    let first = publish_signal(&client, "table_updated", &table_signal("dup-1", 2_000_000)).await?;
    let second =
        publish_signal(&client, "table_updated", &table_signal("dup-1", 2_000_000)).await?;
    assert_eq!(first["duplicate"], false, "{first}");
    assert_eq!(second["duplicate"], true, "{second}");
    assert_eq!(
        second["seq"], first["seq"],
        "duplicate points at the original"
    );

    next_message(&mut firings, WAIT).await?;
    expect_silence(&mut firings, Duration::from_millis(500)).await?;

    let listed = admin(
        &client,
        router.admin_prefix(),
        "signals.ls",
        r#"{"name": "table_updated"}"#,
    )
    .await?;
    let signals = listed["signals"].as_array().context("signals list")?;
    assert_eq!(signals.len(), 1, "{listed}");
    Ok(())
}

#[tokio::test]
async fn signal_id_defaults_to_nats_msg_id_header() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "from-header-7");
    let body = json!({"params": {"table": "x"}}).to_string();
    let reply = tokio::time::timeout(
        WAIT,
        client.request_with_headers("signals.table_updated", headers, body.into()),
    )
    .await??;
    let ack: Value = serde_json::from_slice(&reply.payload)?;
    assert_eq!(ack["id"], "from-header-7", "{ack}");
    assert_eq!(ack["name"], "table_updated", "name taken from the subject");
    Ok(())
}

#[tokio::test]
async fn each_bad_input_gets_a_named_error_and_good_signals_still_fire() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let mut firings = client.subscribe("runs.>").await?;
    let mut rejected = client.subscribe("signalbox.rejected").await?;
    client.flush().await?;

    let deep = {
        let mut v = json!(1);
        for _ in 0..20 {
            v = json!({ "n": v });
        }
        json!({"name": "table_updated", "params": {"deep": v}}).to_string()
    };
    let many = {
        let fields: serde_json::Map<String, Value> =
            (0..300).map(|i| (format!("f{i}"), json!(i))).collect();
        json!({"name": "table_updated", "params": fields}).to_string()
    };
    let big = json!({"name": "table_updated", "payload": "x".repeat(1_100_000)}).to_string();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("not json", b"{not json".to_vec(), "", "not valid JSON"),
        (
            "not an object",
            b"[1, 2, 3]".to_vec(),
            "",
            "expected a JSON object",
        ),
        (
            "invalid name",
            br#"{"name": "bad name!"}"#.to_vec(),
            "name",
            "not allowed",
        ),
        (
            "name differs from subject",
            br#"{"name": "other_signal"}"#.to_vec(),
            "name",
            "does not match the subject",
        ),
        (
            "unsupported param type (number beyond f64)",
            br#"{"params": {"x": 1e999}}"#.to_vec(),
            "",
            "not valid JSON",
        ),
        (
            "params not an object",
            br#"{"params": "table=x"}"#.to_vec(),
            "params",
            "expected a JSON object",
        ),
        (
            "too deep",
            deep.into_bytes(),
            "params.deep",
            "deeper than the limit",
        ),
        (
            "too many fields",
            many.into_bytes(),
            "params.f256",
            "more than the limit of 256 fields",
        ),
        ("too big", big.into_bytes(), "", "more than the limit"),
        (
            "unknown signal field",
            br#"{"parms": {}}"#.to_vec(),
            "parms",
            "unknown field",
        ),
    ];
    for (label, body, field, rule) in &cases {
        let reply = publish_raw(&client, "signals.table_updated", body).await?;
        let err = &reply["error"];
        ensure!(
            err.is_object(),
            "{label}: expected an error reply, got {reply}"
        );
        assert_eq!(err["code"], "invalid", "{label}: {reply}");
        assert!(
            err["field"].as_str().unwrap_or_default().starts_with(field),
            "{label}: field {:?} in {reply}",
            field
        );
        assert!(
            err["rule"].as_str().unwrap_or_default().contains(rule),
            "{label}: rule {rule:?} in {reply}"
        );
        // The bad message is copied to the rejected subject with the reason.
        let copy = next_message(&mut rejected, WAIT).await?;
        let reason = copy
            .headers
            .as_ref()
            .and_then(|h| h.get("Signalbox-Error"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert!(
            reason.contains(rule),
            "{label}: rejected copy says {reason:?}"
        );

        // A good signal right after still fires.
        let id = format!("after-{}", label.replace(' ', "-"));
        let ack = publish_signal(&client, "table_updated", &table_signal(&id, 3_000_000)).await?;
        assert_eq!(ack["matched"], json!(["big-tables"]), "{label}: {ack}");
        let firing = next_message(&mut firings, WAIT).await?;
        let body: Value = serde_json::from_slice(&firing.payload)?;
        assert_eq!(body["signals"][0]["id"], id.as_str(), "{label}");
    }
    Ok(())
}

#[tokio::test]
async fn bad_signal_without_reply_does_not_block_the_stream() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;
    // Fire-and-forget publishes, a bad one in the middle of good ones.
    for i in 0..5 {
        client
            .publish(
                "signals.table_updated",
                table_signal(&format!("s{i}"), 5_000_000).into(),
            )
            .await?;
        client
            .publish("signals.table_updated", "garbage".into())
            .await?;
    }
    client.flush().await?;
    let seen = signalbox_testkit::first_input_ids(&mut firings, 5).await?;
    assert_eq!(seen, vec!["s0", "s1", "s2", "s3", "s4"]);
    Ok(())
}

#[tokio::test]
async fn bad_subscriptions_are_rejected_with_the_field() -> Result<()> {
    let (_nats, router, client) = setup().await?;
    let cases = [
        (
            "id: x\nsignal: s\naction: {publish: {subject: out}}\nwhen: {}\n",
            "when",
            "unknown subscription field",
        ),
        (
            "id: x\nsignal: s\nwhere: {n: [{numeric: ['=>', 1]}]}\naction: {publish: {subject: out}}\n",
            "where.n",
            "",
        ),
        (
            "id: x\nsignal: s\nwhere: {n: [{nosuchop: 1}]}\naction: {publish: {subject: out}}\n",
            "where.n",
            "nosuchop",
        ),
        ("id: x\nsignal: s\n", "action", "required"),
    ];
    for (doc, field, rule) in cases {
        let reply = admin(&client, router.admin_prefix(), "sub.add", doc).await?;
        let err = &reply["error"];
        ensure!(err.is_object(), "{doc}: expected an error, got {reply}");
        assert!(
            err["field"].as_str().unwrap_or_default().starts_with(field),
            "{doc}: {reply}"
        );
        assert!(
            err["message"].as_str().unwrap_or_default().contains(rule),
            "{doc}: {reply}"
        );
    }
    // None of them was stored.
    let listed = admin(&client, router.admin_prefix(), "sub.ls", "").await?;
    assert_eq!(
        listed["subscriptions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    Ok(())
}

#[tokio::test]
async fn restart_keeps_seq_subscriptions_and_dedup() -> Result<()> {
    let (nats, mut router, client) = setup().await?;
    publish_signal(&client, "table_updated", &table_signal("r1", 1)).await?;
    let ack = publish_signal(&client, "table_updated", &table_signal("r2", 1)).await?;
    assert_eq!(ack["seq"], 2);

    router.restart().await?;
    let client = nats.client().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;

    // Dedup state survived: r2 again is a duplicate.
    let dup = publish_signal(&client, "table_updated", &table_signal("r2", 1)).await?;
    assert_eq!(dup["duplicate"], true, "{dup}");
    assert_eq!(dup["seq"], 2);
    // seq continues.
    let next = publish_signal(&client, "table_updated", &table_signal("r3", 9_000_000)).await?;
    assert_eq!(next["seq"], 3, "{next}");
    // The subscription survived and still fires.
    assert_eq!(next["matched"], json!(["big-tables"]));
    next_message(&mut firings, WAIT).await?;
    let listed = admin(&client, router.admin_prefix(), "sub.ls", "").await?;
    assert_eq!(listed["subscriptions"][0]["id"], "big-tables", "{listed}");
    Ok(())
}

#[tokio::test]
async fn router_rides_out_a_nats_outage() -> Result<()> {
    let (mut nats, _router, _client) = setup().await?;
    nats.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.restart()?;
    // The router reconnects by itself and serves again.
    let client = nats.client().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let ack = loop {
        match publish_signal(
            &client,
            "table_updated",
            &table_signal("after-outage", 7_000_000),
        )
        .await
        {
            Ok(ack) => break ack,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.context("router did not come back after the outage")),
        }
    };
    assert_eq!(ack["matched"], json!(["big-tables"]), "{ack}");
    next_message(&mut firings, WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn firing_to_a_jetstream_stream_is_acked_and_deduplicated() -> Result<()> {
    let (_nats, router, client) = setup().await?;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "RUNS".into(),
            subjects: vec!["runs.>".into()],
            ..Default::default()
        })
        .await?;
    let ack = publish_signal(&client, "table_updated", &table_signal("js-1", 4_000_000)).await?;
    assert_eq!(ack["matched"], json!(["big-tables"]));
    // Wait until the outbox marked the firing delivered (JetStream acked it).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut info = stream.clone();
        let state = info.info().await?.state.messages;
        if state == 1 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "stream never got the firing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and the outbox marks it delivered once the stream acked it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let store = router.router().store();
        let pending = tokio::task::spawn_blocking(move || store.pending(10)).await??;
        if pending.is_empty() {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "outbox never drained: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A second publish of the same firing (as after a crash) is dropped by the stream.
    let fid = {
        let store = router.router().store();
        let records =
            tokio::task::spawn_blocking(move || store.firings_for("big-tables", 10)).await??;
        ensure!(records.len() == 1, "one firing recorded: {records:?}");
        records[0].firing.clone()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", fid.firing_id.as_str());
    js.publish_with_headers(fid.subject.clone(), headers, fid.message_bytes().into())
        .await?
        .await?;
    let mut info = stream.clone();
    assert_eq!(
        info.info().await?.state.messages,
        1,
        "duplicate window drops the re-publish"
    );
    Ok(())
}

#[tokio::test]
async fn router_started_before_nats_connects_when_it_appears() -> Result<()> {
    init_logs();
    let port = signalbox_testkit::free_port()?;
    let dir = tempfile::tempdir()?;
    let config = TestRouter::config(&format!("nats://127.0.0.1:{port}"), dir.path());
    // NATS is not there yet: the router starts anyway and keeps retrying.
    let router = tokio::time::timeout(Duration::from_secs(15), TestRouter::start_with(config))
        .await
        .context("router start must not hang while NATS is down")??;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let nats = TestNats::start_with(Some(port), "")?;
    let client = nats.client().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match admin(&client, router.admin_prefix(), "sub.add", BIG_TABLES).await {
            Ok(reply) if reply.get("error").is_none() => break,
            Ok(reply) => anyhow::bail!("sub.add refused: {reply}"),
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.context("router never connected")),
        }
    }
    let ack = publish_signal(&client, "table_updated", &table_signal("late", 2_000_000)).await?;
    assert_eq!(ack["matched"], json!(["big-tables"]), "{ack}");
    Ok(())
}

#[tokio::test]
async fn token_authentication_is_used() -> Result<()> {
    init_logs();
    let nats = TestNats::start_with(None, "authorization { token: \"s3cret\" }")?;
    let router = TestRouter::start_configured(&nats, |config| {
        config.nats.token = Some("s3cret".into());
    })
    .await?;
    // Without the token a client is refused; with it, the router answers.
    assert!(
        async_nats::connect(nats.url()).await.is_err(),
        "server requires the token"
    );
    let client = async_nats::ConnectOptions::with_token("s3cret".into())
        .connect(nats.url())
        .await?;
    let reply = admin(&client, router.admin_prefix(), "sub.add", BIG_TABLES).await?;
    assert_eq!(reply["outcome"], "created", "{reply}");
    let ack = publish_signal(&client, "table_updated", &table_signal("tok", 2_000_000)).await?;
    assert_eq!(ack["seq"], 1, "{ack}");
    Ok(())
}

#[tokio::test]
async fn a_firing_that_keeps_failing_is_dead_lettered_with_the_reason() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router =
        TestRouter::start_configured(&nats, |config| config.firing_max_attempts = 2).await?;
    let client = nats.client().await?;
    router.add_subscription(&client, BIG_TABLES).await?;
    // A target stream that takes one message and refuses the rest.
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "FULL".into(),
        subjects: vec!["runs.>".into()],
        max_messages: 1,
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await?;
    let mut dead = client.subscribe("signalbox.dead.firings").await?;
    client.flush().await?;
    publish_signal(&client, "table_updated", &table_signal("fits", 2_000_000)).await?;
    publish_signal(
        &client,
        "table_updated",
        &table_signal("refused", 2_000_000),
    )
    .await?;
    let msg = next_message(&mut dead, Duration::from_secs(15)).await?;
    let reason = msg
        .headers
        .as_ref()
        .and_then(|h| h.get("Signalbox-Error"))
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(
        reason.to_lowercase().contains("maximum messages"),
        "{reason}"
    );
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["signals"][0]["id"], "refused");
    let fid = body["firing_id"].as_str().context("firing id")?.to_string();
    let deadline = std::time::Instant::now() + WAIT;
    let shown = loop {
        let shown = admin(&client, router.admin_prefix(), "lineage.firing", &fid).await?;
        if shown["state"] == "dead_lettered" {
            break shown;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "never marked dead-lettered: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shown["attempts"], 2, "{shown}");
    // The outbox is not blocked behind it: the store has nothing pending.
    let store = router.router().store();
    let pending = tokio::task::spawn_blocking(move || store.pending(10)).await??;
    assert!(pending.is_empty(), "{pending:?}");
    Ok(())
}

#[tokio::test]
async fn the_admin_api_is_a_discoverable_nats_micro_service() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let ping =
        tokio::time::timeout(WAIT, client.request("$SRV.PING.signalbox", "".into())).await??;
    let ping: Value = serde_json::from_slice(&ping.payload)?;
    assert_eq!(ping["name"], "signalbox", "{ping}");
    assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
    let info =
        tokio::time::timeout(WAIT, client.request("$SRV.INFO.signalbox", "".into())).await??;
    let info: Value = serde_json::from_slice(&info.payload)?;
    let subjects: Vec<&str> = info["endpoints"]
        .as_array()
        .context("endpoints")?
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert!(subjects.contains(&"signalbox.admin.sub.add"), "{info}");
    assert!(
        subjects.contains(&"signalbox.admin.lineage.export"),
        "{info}"
    );
    // The same operation as the CLI, through the service, counted in its stats.
    let listed = admin(&client, "signalbox.admin", "sub.ls", "").await?;
    assert_eq!(listed["subscriptions"][0]["id"], "big-tables");
    let stats =
        tokio::time::timeout(WAIT, client.request("$SRV.STATS.signalbox", "".into())).await??;
    let stats: Value = serde_json::from_slice(&stats.payload)?;
    let sub_ls = stats["endpoints"]
        .as_array()
        .context("stats endpoints")?
        .iter()
        .find(|e| e["subject"] == "signalbox.admin.sub.ls")
        .context("sub.ls stats")?;
    assert!(sub_ls["num_requests"].as_u64().unwrap_or(0) >= 1, "{stats}");
    Ok(())
}

#[tokio::test]
async fn trace_context_of_a_signal_is_carried_onto_its_firing() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", tp);
    let reply = tokio::time::timeout(
        WAIT,
        client.request_with_headers(
            "signals.table_updated",
            headers,
            table_signal("traced", 2_000_000).into(),
        ),
    )
    .await??;
    let ack: Value = serde_json::from_slice(&reply.payload)?;
    assert_eq!(ack["matched"], json!(["big-tables"]), "{ack}");
    let msg = next_message(&mut firings, WAIT).await?;
    let got = msg
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.to_string());
    assert_eq!(got.as_deref(), Some(tp));
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["traceparent"], tp);
    // A malformed traceparent is not passed on.
    let mut bad = async_nats::HeaderMap::new();
    bad.insert("traceparent", "not-a-trace");
    client
        .request_with_headers(
            "signals.table_updated",
            bad,
            table_signal("untraced", 2_000_000).into(),
        )
        .await?;
    let msg = next_message(&mut firings, WAIT).await?;
    assert!(
        msg.headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .is_none()
    );
    Ok(())
}
