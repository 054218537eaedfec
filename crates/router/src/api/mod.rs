//! How operators and programs talk to a running router: the admin verbs
//! ([`admin`]) served over NATS as a micro service ([`nats_service`]) and over
//! HTTP ([`http`], which also mounts the webhook and SNS routes of the
//! sources), lineage queries and export ([`lineage`], the page in
//! [`lineage_page`]), [`replay`], wait registration ([`waits`]), and plugin
//! deploys ([`plugin_deploy`]; the uploaded pieces wait in `crate::plugins::upload`).
//!
//! The deploy's way reads one direction: verb ([`admin`]) → [`plugin_deploy`]
//! → the live set (`crate::plugins`) and the catalog's operators
//! (`crate::pipeline::catalog`).

pub(crate) mod admin;
pub(crate) mod data;
pub(crate) mod group_query;
pub mod http;
pub mod lineage;
mod lineage_page;
pub mod nats_service;
pub(crate) mod plugin_deploy;
pub(crate) mod plugin_group;
pub mod replay;
mod reply;
pub(crate) mod wait_ops;
pub(crate) mod waits;
