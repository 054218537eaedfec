//! `plugin deploy`: sends a component to the running router's admin API.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::ClientArgs;

/// Deploys `file` under `name` (default: the file stem) with `settings`.
pub async fn deploy(
    _client: &ClientArgs,
    _file: &Path,
    _name: Option<&str>,
    _settings: &[String],
) -> Result<ExitCode> {
    bail!("plugin deploy: not built yet")
}
