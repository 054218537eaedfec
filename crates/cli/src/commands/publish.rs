//! `publish`: build a signal from flags and/or a file, send it as a request to
//! `<prefix>.<name>`, print the acknowledgement. Exit 1 on an error reply.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

use super::client::{connect_client, print_reply, request};
use crate::cli::PublishArgs;

/// Runs `publish`.
pub async fn run(args: PublishArgs) -> Result<ExitCode> {
    let signal = build_signal(&args)?;
    let name = signal
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("give the signal name as an argument or in --file"))?;
    if let Err(rule) = signalbox_model::signal::validate_name(&name) {
        let err = signalbox_model::FieldError::new("name", rule);
        let reply = signalbox_model::ErrorReply::invalid(&err);
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::from(1));
    }
    let client = connect_client(&args.client).await?;
    let reply = request(
        &client,
        format!("{}.{name}", args.client.subject_prefix),
        serde_json::to_vec(&signal)?,
        args.client.request_timeout,
    )
    .await?;
    print_reply(&reply)
}

fn build_signal(args: &PublishArgs) -> Result<Value> {
    let mut signal = match &args.file {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .context("reading the signal from stdin")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            };
            match serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
            {
                Value::Object(o) => o,
                _ => bail!("{}: a signal is a JSON object", path.display()),
            }
        }
        None => Map::new(),
    };
    if let Some(name) = &args.name {
        signal.insert("name".into(), Value::String(name.clone()));
    }
    if let Some(id) = &args.id {
        signal.insert("id".into(), Value::String(id.clone()));
    }
    if let Some(payload) = &args.payload {
        let p: Value = serde_json::from_str(payload).context("--payload is not valid JSON")?;
        signal.insert("payload".into(), p);
    }
    if !args.params.is_empty() {
        let params = signal
            .entry("params")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(params) = params else {
            bail!("params in the file is not an object");
        };
        for kv in &args.params {
            let (key, raw) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--param {kv:?}: expected key=value"))?;
            let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
            insert_dotted(params, key, value)?;
        }
    }
    Ok(Value::Object(signal))
}

fn insert_dotted(map: &mut Map<String, Value>, key: &str, value: Value) -> Result<()> {
    match key.split_once('.') {
        None => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Some((head, rest)) => {
            let child = map.entry(head).or_insert_with(|| Value::Object(Map::new()));
            match child {
                Value::Object(m) => insert_dotted(m, rest, value),
                _ => bail!("--param {key:?}: {head} is already a value, not an object"),
            }
        }
    }
}
