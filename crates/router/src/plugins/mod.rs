//! The router's live WebAssembly plugins: operators (registered in the
//! catalog's operator registry) and source adapters (webhook routes, Kafka and
//! SNS decoders), from the config file and from runtime deploys.
//!
//! [`LivePlugins`] is the one place that says which version of each plugin is
//! active. Callers look an adapter up per request ([`LivePlugins::adapter`]) and
//! keep the `Arc` for the call, so a deploy or rollback never cuts a call short:
//! in-flight calls finish on the version they started with, the next call gets
//! the new one. Operators reach conditions through the catalog, which swaps
//! each subscription whole (see `catalog.rs`).
//!
//! Sources of a plugin, in order of precedence: the active stored version of a
//! runtime deploy (table `plugins`, see `docs/STORAGE.md`), then the config
//! file's `[[plugins.*]]` entry. Removing a deployed plugin falls back to the
//! config file's entry when there is one. Changes go through `deploy.rs`, one
//! at a time (`changes` lock), so two deploys of one name cannot interleave.

mod live;
mod load;
pub(crate) mod upload;

pub(crate) use live::{Active, LivePlugin, LivePlugins, Origin, world_name};
pub use load::PluginLoadError;
pub(crate) use load::{live, load};
