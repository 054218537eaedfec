//! Connecting a one-shot command to NATS and sending requests, with clear errors
//! when the server or the router cannot be reached.

use anyhow::{Context, Result, anyhow};
use signalbox_router::{NatsConfig, Persistence, connect};

use crate::cli::ClientArgs;

/// Connects, failing fast with a message that names the URL.
pub async fn connect_client(args: &ClientArgs) -> Result<async_nats::Client> {
    let mut cfg = NatsConfig {
        urls: args.nats_urls.clone(),
        name: "signalbox-cli".into(),
        ..NatsConfig::default()
    };
    args.login.apply(&mut cfg);
    connect(&cfg, Persistence::Command, None)
        .await
        .map_err(|e| anyhow!("{e}; is nats-server running? (`signalbox dev` starts one)"))
}

/// Sends a request and returns the reply body.
pub async fn request(
    client: &async_nats::Client,
    subject: String,
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<Vec<u8>> {
    // The client's own request timeout (10 s) would cut a longer one short.
    let req = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(timeout));
    let reply = tokio::time::timeout(timeout, client.send_request(subject.clone(), req))
        .await
        .map_err(|_| anyhow!("no reply on {subject} within {timeout:?}; is the signalbox router running?"))?
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => anyhow!(
                "nobody answers on {subject}: is the signalbox router running (`signalbox serve` or `signalbox dev`)?"
            ),
            _ => anyhow!("request on {subject} failed: {e}"),
        })?;
    Ok(reply.payload.to_vec())
}

/// Prints a JSON reply; returns exit code 1 when it is an error reply.
pub fn print_reply(bytes: &[u8]) -> Result<std::process::ExitCode> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).context("the reply is not JSON")?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(if value.get("error").is_some() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}
