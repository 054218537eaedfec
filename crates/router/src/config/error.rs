//! The one error type of configuration: a file that cannot be read, TOML of
//! the wrong shape, or a value that breaks a rule. Every variant names the
//! file or the key (`sources.kafka[<name>].<field>` style paths for list
//! entries), so an operator can find the line to fix.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the right shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// A value breaks a rule.
    #[error("config {field}: {rule}")]
    Invalid {
        /// The key.
        field: String,
        /// The rule.
        rule: String,
    },
}
