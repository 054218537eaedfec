//! `plugin test`: one local call through the same host the router uses;
//! needs no running router.
//!
//! It loads a component with [`PluginHost`] (default limits) and makes one
//! call: an operator prepares `--arg` and tests `--input`, an adapter decodes
//! `--input` as the body of an HTTP request to `/ingest/<name>`. It prints the
//! answer as JSON and exits 0 when the call ran (whatever the answer), 1 when
//! the call failed (trap, timeout, out of memory), 2 when the component or the
//! input could not be used. `SIGNALBOX_PLUGIN_CACHE_DIR` names a directory for
//! the compiled-artefact cache, so a large component compiles once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use signalbox_model::Value;
use signalbox_plugin::{
    CallError, DecodeError, Envelope, HostConfig, LoadError, LoadedPlugin, PluginHost, PluginKind,
    Transport,
};

use super::plugin_new::check_name;

/// Where `plugin test` keeps compiled artefacts between runs, when set (a
/// Python or JavaScript component takes seconds to compile). Like the router's
/// cache directory, it must be writable only by the user running the command.
const CACHE_DIR_ENV: &str = "SIGNALBOX_PLUGIN_CACHE_DIR";

/// Splits `KEY=VALUE` arguments; `what` names the flag in errors.
fn pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{what} {item:?} is not KEY=VALUE"),
        })
        .collect()
}

/// The name a component is loaded under: its file stem when that is a valid
/// plugin name, else `plugin`.
fn load_name(file: &Path) -> String {
    file.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| check_name(s).is_ok())
        .unwrap_or("plugin")
        .to_string()
}

/// A failed call: printed as JSON, exit 1.
fn call_failed(world: &str, plugin: &LoadedPlugin, during: &str, e: &CallError) -> ExitCode {
    println!(
        "{}",
        json!({
            "world": world,
            "plugin": plugin.description.name,
            "error": {"kind": e.kind(), "during": during, "message": e.to_string()},
        })
    );
    ExitCode::from(1)
}

/// `plugin test`: loads `file` and runs one call; prints the result as JSON.
///
/// The plugin runs on a thread of its own, outside the async runtime, as in
/// the router (`spawn_blocking`): WASI's streams block on a runtime of their
/// own, which a runtime thread must not do (a guest's panic message would
/// abort the process instead of becoming a trap).
pub fn test(
    file: &Path,
    arg: Option<&str>,
    input: &str,
    headers: &[String],
    settings: &[String],
    deadline: Option<std::time::Duration>,
) -> Result<ExitCode> {
    std::thread::scope(|s| {
        s.spawn(|| test_here(file, arg, input, headers, settings, deadline))
            .join()
            .unwrap_or_else(|_| bail!("plugin test: the call thread panicked"))
    })
}

fn test_here(
    file: &Path,
    arg: Option<&str>,
    input: &str,
    headers: &[String],
    settings: &[String],
    deadline: Option<std::time::Duration>,
) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    check_component(file, &bytes)?;
    let settings: BTreeMap<String, String> = pairs(settings, "--set")?.into_iter().collect();
    let headers = pairs(headers, "--header")?;
    let defaults = HostConfig::default();
    let host = PluginHost::new(HostConfig {
        cache_dir: std::env::var_os(CACHE_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
        operator_deadline: deadline.unwrap_or(defaults.operator_deadline),
        prepare_deadline: deadline.unwrap_or(defaults.prepare_deadline),
        adapter_deadline: deadline.unwrap_or(defaults.adapter_deadline),
        ..defaults
    })
    .context("cannot start the plugin host")?;
    let name = load_name(file);
    let plugin = match host.load_with_settings(&bytes, &name, settings) {
        Ok(p) => p,
        Err(LoadError::Describe { source, .. }) => {
            println!(
                "{}",
                json!({"error": {"kind": source.kind(), "during": "describe", "message": source.to_string()}})
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => bail!("{}: {e}", file.display()),
    };
    match &plugin.kind {
        PluginKind::Operator(op) => {
            if !headers.is_empty() {
                bail!(
                    "--header is for source adapters; {} is an operator",
                    file.display()
                );
            }
            let Some(arg) = arg else {
                bail!(
                    "{} is an operator: --arg is required (the operator's argument as JSON, e.g. --arg '\"prod\"')",
                    file.display()
                );
            };
            let argument: serde_json::Value = serde_json::from_str(arg).with_context(|| {
                format!("--arg is not JSON: {arg:?} (a string needs quotes: '\"prod\"')")
            })?;
            let input_json: serde_json::Value = serde_json::from_str(input).with_context(|| {
                format!("--input is not JSON: {input:?} (a string needs quotes: '\"2.4.1\"')")
            })?;
            let value = Value::from_json(&input_json, "input")
                .map_err(|e| anyhow::anyhow!("--input: {e}"))?;
            let base = json!({
                "world": "operator",
                "plugin": plugin.description.name,
                "version": plugin.description.version,
                "argument": argument,
                "value": input_json,
            });
            let condition = match op.prepare_condition(&argument) {
                Ok(Ok(c)) => c,
                Ok(Err(refusal)) => {
                    println!("{}", with(base, "refused", json!(refusal)));
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => return Ok(call_failed("operator", &plugin, "prepare", &e)),
            };
            match condition.test_value(&value) {
                Ok(Ok(matches)) => println!("{}", with(base, "matches", json!(matches))),
                // The plugin's own error for this value: "does not match".
                Ok(Err(message)) => {
                    let out = with(base, "matches", json!(false));
                    println!("{}", with(out, "error", json!(message)));
                }
                Err(e) => return Ok(call_failed("operator", &plugin, "test", &e)),
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginKind::Adapter(adapter) => {
            if arg.is_some() {
                bail!(
                    "--arg is for operators; {} is a source adapter",
                    file.display()
                );
            }
            let body = read_body(input)?;
            let mut envelope =
                Envelope::new(Transport::Http, format!("/ingest/{}", plugin.name), body);
            for (k, v) in headers {
                envelope = envelope.with_header(k.to_ascii_lowercase(), v);
            }
            envelope.metadata.push(("method".into(), "POST".into()));
            let base = json!({
                "world": "source-adapter",
                "plugin": plugin.description.name,
                "version": plugin.description.version,
            });
            let out = match adapter.decode(&envelope) {
                Ok(signals) => {
                    let signals: Vec<serde_json::Value> = signals
                        .iter()
                        .map(serde_json::to_value)
                        .collect::<Result<_, _>>()?;
                    with(base, "signals", json!(signals))
                }
                Err(DecodeError::Reject(reason)) => with(base, "rejected", json!(reason)),
                Err(DecodeError::Retry(reason)) => with(base, "retry", json!(reason)),
                // The host refuses what the plugin returned: the router rejects
                // the message too.
                Err(
                    e @ (DecodeError::TooManySignals { .. } | DecodeError::InvalidSignal { .. }),
                ) => {
                    let out = with(base, "rejected", json!(e.to_string()));
                    with(out, "by", json!("host"))
                }
                Err(DecodeError::Call(e)) => {
                    return Ok(call_failed("source-adapter", &plugin, "decode", &e));
                }
            };
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A clear word for the two usual mistakes before wasmtime's own message: a
/// file that is not WebAssembly, and a core module instead of a component.
fn check_component(file: &Path, bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(b"\0asm") {
        bail!(
            "{} is not a WebAssembly component (it does not start with the \\0asm header)",
            file.display()
        );
    }
    // The preamble's version and layer: 1 0 0 0 for a core module, 0x0d 0 1 0
    // for a component.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        bail!(
            "{} is a core WebAssembly module, not a component: build for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
            file.display()
        );
    }
    Ok(())
}

/// `base` with one more field.
fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = base.as_object_mut() {
        map.insert(key.to_string(), value);
    }
    base
}

/// The body of an adapter test: the file `input`, or stdin for `-`.
fn read_body(input: &str) -> Result<Vec<u8>> {
    if input == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read the body from stdin")?;
        Ok(body)
    } else {
        std::fs::read(input).with_context(|| format!("cannot read the body from {input}"))
    }
}
