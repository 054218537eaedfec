//! Talking to a router over NATS the way its clients do: admin requests,
//! plugin deploys in upload pieces, signals published as requests, and
//! waiting (bounded) for firings or for silence on a subscription.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;

use crate::WAIT;

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

/// The admin requests that deploy the component `file` under `name`, as
/// `signalbox plugin deploy` sends them: the bodies of its 256 KiB
/// `plugin.upload` pieces, then the `plugin.deploy` body with their SHA-256
/// and `settings` (none: the router's default). Any transport sends them.
pub fn deploy_requests(
    name: &str,
    file: &Path,
    settings: Option<&[(&str, &str)]>,
) -> Result<(Vec<String>, String)> {
    use base64::Engine as _;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let piece = 256 * 1024;
    let upload = format!("test-{}", name.replace('.', "_"));
    let pieces = bytes
        .chunks(piece)
        .enumerate()
        .map(|(i, chunk)| {
            serde_json::json!({"upload": upload, "offset": i * piece, "data": b64.encode(chunk)})
                .to_string()
        })
        .collect();
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
    Ok((pieces, body.to_string()))
}

/// Deploys the component `file` under `name` into the router answering on
/// admin prefix `prefix` over NATS ([`deploy_requests`]). Returns the deploy
/// reply, errors included; allows two minutes for a cold compile.
pub async fn deploy_plugin(
    client: &async_nats::Client,
    prefix: &str,
    name: &str,
    file: &Path,
    settings: Option<&[(&str, &str)]>,
) -> Result<serde_json::Value> {
    let (pieces, deploy) = deploy_requests(name, file, settings)?;
    for piece in pieces {
        let reply = admin(client, prefix, "plugin.upload", &piece).await?;
        if reply.get("error").is_some() {
            bail!("plugin.upload: {reply}");
        }
    }
    admin_slow(client, prefix, "plugin.deploy", &deploy).await
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
