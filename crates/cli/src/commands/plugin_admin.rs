//! `plugin deploy`: sends a component to the running router's admin API.
//!
//! A component that fits in one NATS message goes inline in `plugin.deploy`;
//! a larger one (a Python component is ~18 MB) is sent in pieces with
//! `plugin.upload` first, each under the server's `max_payload`. Either way the
//! deploy request carries the SHA-256 of the file, and the router refuses bytes
//! that do not hash to it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use base64::Engine as _;

use super::client::{connect_client, print_reply, request};
use crate::cli::ClientArgs;

/// Largest piece of raw component bytes per upload message.
const MAX_PIECE: usize = 4 * 1024 * 1024;

/// Deploys `file` under `name` (default: the file stem) with `settings`.
pub async fn deploy(
    args: &ClientArgs,
    file: &Path,
    name: Option<&str>,
    settings: &[String],
) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = match name {
        Some(n) => n.to_string(),
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "cannot take a plugin name from {}; give --name",
                    file.display()
                )
            })?,
    };
    let settings = parse_settings(settings)?;
    let client = connect_client(args).await?;
    // Room for the JSON around the base64 (4 bytes per 3).
    let max_payload = client.server_info().max_payload.max(64 * 1024);
    let piece = ((max_payload - 1024) / 4 * 3).min(MAX_PIECE);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body = serde_json::json!({
        "name": name,
        "sha256": signalbox_plugin::content_hash(&bytes),
    });
    if !settings.is_empty() {
        body["settings"] = serde_json::json!(settings);
    }
    if bytes.len() <= piece {
        body["component"] = serde_json::json!(b64.encode(&bytes));
    } else {
        let upload = format!("{name}-{}", std::process::id());
        let upload: String = upload
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        for (i, chunk) in bytes.chunks(piece).enumerate() {
            let msg = serde_json::json!({
                "upload": upload,
                "offset": i * piece,
                "data": b64.encode(chunk),
            });
            let reply = request(
                &client,
                format!("{}.plugin.upload", args.admin_prefix),
                msg.to_string().into_bytes(),
                args.request_timeout,
            )
            .await?;
            let value: serde_json::Value =
                serde_json::from_slice(&reply).context("the upload reply is not JSON")?;
            if value.get("error").is_some() {
                return print_reply(&reply);
            }
        }
        eprintln!(
            "uploaded {} bytes in {} pieces",
            bytes.len(),
            bytes.len().div_ceil(piece)
        );
        body["upload"] = serde_json::json!(upload);
    }
    // Compiling a large component can take a while: allow more than a plain request.
    let timeout = args
        .request_timeout
        .max(std::time::Duration::from_secs(120));
    let reply = request(
        &client,
        format!("{}.plugin.deploy", args.admin_prefix),
        body.to_string().into_bytes(),
        timeout,
    )
    .await?;
    print_reply(&reply)
}

/// `KEY=VALUE` settings.
fn parse_settings(settings: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in settings {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--set {s:?}: the key is empty");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}
