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
