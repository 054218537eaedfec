//! `plugin new` (scaffold a plugin project) and `plugin test` (one local call
//! through the same host the router uses). Neither needs a running router.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{PluginLang, PluginWorld};

/// `plugin new`: writes a working project for `world` in `lang` under `dir/name`.
pub fn new(_name: &str, _lang: PluginLang, _world: PluginWorld, _dir: &Path) -> Result<ExitCode> {
    bail!("plugin new: not built yet")
}

/// `plugin test`: loads `file` and runs one call; prints the result as JSON.
pub fn test(
    _file: &Path,
    _arg: Option<&str>,
    _input: &str,
    _headers: &[String],
    _settings: &[String],
) -> Result<ExitCode> {
    bail!("plugin test: not built yet")
}
