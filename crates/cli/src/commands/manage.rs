//! `sub`, `signals`, `firing` and `explain`: requests to the router's admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::client::{connect_client, print_reply, request as send};
use crate::cli::ClientArgs;

/// Sends one admin request and prints the reply.
pub async fn request(args: &ClientArgs, verb: &str, body: &str) -> Result<ExitCode> {
    let client = connect_client(args).await?;
    let reply = send(
        &client,
        format!("{}.{verb}", args.admin_prefix),
        body.as_bytes().to_vec(),
        args.request_timeout,
    )
    .await?;
    print_reply(&reply)
}

/// Adds each file; exit 1 if any was refused.
pub async fn sub_add(args: &ClientArgs, files: &[PathBuf]) -> Result<ExitCode> {
    let client = connect_client(args).await?;
    let mut code = ExitCode::SUCCESS;
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let reply = send(
            &client,
            format!("{}.sub.add", args.admin_prefix),
            text.into_bytes(),
            args.request_timeout,
        )
        .await?;
        eprintln!("{}:", file.display());
        if print_reply(&reply)? != ExitCode::SUCCESS {
            code = ExitCode::from(1);
        }
    }
    Ok(code)
}

/// `lineage export`: DOT is printed raw (pipe it to `dot -Tsvg`), JSON pretty.
pub async fn export(args: &ClientArgs, body: &str) -> Result<ExitCode> {
    let client = connect_client(args).await?;
    let reply = send(
        &client,
        format!("{}.lineage.export", args.admin_prefix),
        body.as_bytes().to_vec(),
        args.request_timeout,
    )
    .await?;
    let value: serde_json::Value =
        serde_json::from_slice(&reply).context("the reply is not JSON")?;
    if let Some(dot) = value.get("dot").and_then(serde_json::Value::as_str) {
        print!("{dot}");
        return Ok(ExitCode::SUCCESS);
    }
    print_reply(&reply)
}

/// `replay`: drives the router's replay page by page, drawing progress on stderr.
pub async fn replay(
    args: &ClientArgs,
    sub: &str,
    since: Option<String>,
    until: Option<String>,
    page: usize,
) -> Result<ExitCode> {
    use std::io::Write;
    let client = connect_client(args).await?;
    let mut cursor = serde_json::Value::Null;
    let (mut processed, mut matched, mut fired) = (0u64, 0u64, 0u64);
    loop {
        let body = serde_json::json!({
            "sub": sub, "since": since, "until": until, "limit": page,
            "cursor": if cursor.is_null() { None } else { Some(cursor.clone()) },
        });
        let reply = send(
            &client,
            format!("{}.replay", args.admin_prefix),
            body.to_string().into_bytes(),
            args.request_timeout,
        )
        .await?;
        let v: serde_json::Value =
            serde_json::from_slice(&reply).context("the reply is not JSON")?;
        if v.get("error").is_some() {
            eprintln!();
            return print_reply(&reply);
        }
        processed += v["processed"].as_u64().unwrap_or(0);
        matched += v["matched"].as_u64().unwrap_or(0);
        fired += v["fired"].as_u64().unwrap_or(0);
        let (pos, total) = (
            v["position"].as_u64().unwrap_or(0),
            v["total"].as_u64().unwrap_or(0).max(1),
        );
        let width = 30u64;
        let filled = (pos.min(total) * width / total) as usize;
        eprint!(
            "\r[{}{}] {pos}/{total} signals, {matched} matched, {fired} fired",
            "#".repeat(filled),
            ".".repeat(width as usize - filled)
        );
        let _ = std::io::stderr().flush();
        cursor = v["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    eprintln!();
    println!(
        "{}",
        serde_json::json!({"sub": sub, "processed": processed, "matched": matched, "fired": fired})
    );
    Ok(ExitCode::SUCCESS)
}
