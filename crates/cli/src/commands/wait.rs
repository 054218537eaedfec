//! `wait`: register a wait and block until it is answered. The answer's state is
//! the exit code (0 satisfied, 3 timed out, 4 cancelled), so any workflow
//! engine's shell step can use it. Re-running with the same id re-attaches.
//! Once registered, the wait outlives router restarts: a status request that
//! finds no router is reported on stderr and asked again at the next poll.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::client::{connect_client, request};
use crate::cli::WaitArgs;

/// Runs `wait`.
pub async fn run(args: WaitArgs) -> Result<ExitCode> {
    let doc = build(&args)?;
    let id = doc
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("give the wait an id (--id or in --file): it makes retries safe"))?;
    let client = connect_client(&args.client).await?;
    // Subscribe to the answer before registering, so it cannot be missed.
    let mut answers = client
        .subscribe(format!("{}.{id}", args.wait_prefix))
        .await
        .context("subscribing to the wait's answer")?;
    client.flush().await.ok();
    let reply = request(
        &client,
        args.wait_subject.clone(),
        serde_json::to_vec(&doc)?,
        args.client.request_timeout,
    )
    .await?;
    let reply: Value = serde_json::from_slice(&reply).context("the reply is not JSON")?;
    if reply.get("error").is_some() {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::from(1));
    }
    let mut record = reply.get("wait").cloned().context("reply without wait")?;
    eprintln!("waiting for {id} ...");
    let mut poll = tokio::time::interval(Duration::from_secs(5));
    poll.tick().await;
    while state(&record) == "waiting" {
        tokio::select! {
            msg = answers.next() => {
                if msg.is_none() {
                    bail!("the answer subscription closed");
                }
            }
            _ = poll.tick() => {}
        }
        // Whatever woke us, read the stored record: it is the truth.
        let shown = match request(
            &client,
            format!("{}.wait.show", args.client.admin_prefix),
            id.clone().into_bytes(),
            args.client.request_timeout,
        )
        .await
        {
            Ok(shown) => shown,
            // The router may be restarting: the wait is stored and the
            // answer subscription stays, so say so and ask again later.
            Err(e) => {
                eprintln!("{e:#}; still waiting for {id}");
                continue;
            }
        };
        let shown: Value = serde_json::from_slice(&shown)?;
        if let Some(w) = shown.get("wait") {
            record = w.clone();
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "wait": record }))?
    );
    Ok(match state(&record) {
        "satisfied" => ExitCode::SUCCESS,
        "timed_out" => ExitCode::from(3),
        "cancelled" => ExitCode::from(4),
        _ => ExitCode::from(1),
    })
}

fn state(record: &Value) -> &str {
    record
        .get("state")
        .and_then(|s| s.get("state"))
        .and_then(Value::as_str)
        .unwrap_or("waiting")
}

fn build(args: &WaitArgs) -> Result<Value> {
    let mut doc = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match serde_yaml::from_str::<Value>(&text)
                .with_context(|| format!("{} is not valid YAML or JSON", path.display()))?
            {
                Value::Object(o) => o,
                _ => bail!("{}: a wait is an object", path.display()),
            }
        }
        None => Map::new(),
    };
    if let Some(id) = &args.id {
        doc.insert("id".into(), json!(id));
    }
    if let Some(signal) = &args.signal {
        doc.insert("signal".into(), json!(signal));
    }
    if let Some(p) = &args.pattern {
        let v: Value = serde_json::from_str(p).context("--where is not valid JSON")?;
        doc.insert("where".into(), v);
    }
    if let Some(l) = &args.lookback {
        let v = match l.as_str() {
            "all" | "none" => json!(l),
            s if s.contains('T') => json!({"since": s}),
            s => json!({"within": s}),
        };
        doc.insert("lookback".into(), v);
    }
    if let Some(t) = &args.timeout {
        doc.insert("timeout".into(), json!(t));
    }
    if !args.consumer.is_empty() {
        let mut c = Map::new();
        for kv in &args.consumer {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--consumer {kv:?}: expected key=value"))?;
            c.insert(k.to_string(), json!(v));
        }
        doc.insert("consumer".into(), Value::Object(c));
    }
    Ok(Value::Object(doc))
}
