//! AWS SNS ingestion over HTTP: `POST /sns/<source>` on the router's listener.

pub mod config;

pub use config::SnsSource;
