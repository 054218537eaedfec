//! Deployed plugins: every version of every plugin deployed at runtime, and
//! which version is active.
//!
//! `plugins[name]` is a [`PluginRecord`]: the world, the versions in deploy
//! order (numbered from 1, never reused while the record exists) and the active
//! version. `plugin_blobs[sha256]` holds the component bytes once per content,
//! however many versions or plugins name it. Invariants: the active version is
//! one of the record's versions; every hash a version names has its blob; a
//! blob no record names is deleted in the transaction that orphaned it (a
//! removal). A deploy, a rollback and a removal are each one transaction, so a
//! crash leaves either the old or the new state, never half of a deploy.

use std::collections::{BTreeMap, BTreeSet};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::capture::WriteTable;
use crate::codec;
use crate::error::{AtTable, PluginStoreError, ReadError};
use crate::store::Store;
use crate::tables::{self, names};

/// One deployed version of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginVersion {
    /// 1 for the first deploy under this name, then +1 per deploy.
    pub version: u64,
    /// SHA-256 of the component bytes, hex.
    pub hash: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// The settings its `config-get` calls are answered from.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// What the plugin's `describe` export said when it was validated.
    #[serde(default)]
    pub description: serde_json::Value,
    /// When it was deployed, ms since the epoch.
    pub deployed_at_ms: i64,
}

/// A plugin deployed at runtime: its world, versions and the active one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The plugin name (operator name in patterns, or adapter route name).
    pub name: String,
    /// `operator` or `source-adapter`.
    pub world: String,
    /// Every version, in deploy order.
    pub versions: Vec<PluginVersion>,
    /// The active version number.
    pub active: u64,
}

impl PluginRecord {
    /// The active version.
    pub fn active_version(&self) -> Option<&PluginVersion> {
        self.versions.iter().find(|v| v.version == self.active)
    }
}

/// What [`Store::deploy_plugin`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployOutcome {
    /// A new version was stored and made active.
    Deployed(PluginRecord),
    /// The active version already has these bytes and settings: nothing written.
    Unchanged(PluginRecord),
}

impl DeployOutcome {
    /// The record now stored.
    pub fn record(&self) -> &PluginRecord {
        match self {
            DeployOutcome::Deployed(r) | DeployOutcome::Unchanged(r) => r,
        }
    }
}

impl Store {
    /// Stores `bytes` as a new active version of plugin `name` (module docs).
    /// `version.version` is assigned here; the world must match a stored record.
    pub fn deploy_plugin(
        &self,
        name: &str,
        world: &str,
        bytes: &[u8],
        mut version: PluginVersion,
    ) -> Result<DeployOutcome, PluginStoreError> {
        let txn = self.begin_write::<PluginStoreError>()?;
        let outcome = {
            let mut records =
                crate::capture::write::<PluginStoreError, _, _>(&txn, tables::PLUGINS)?;
            let mut blobs =
                crate::capture::write::<PluginStoreError, _, _>(&txn, tables::PLUGIN_BLOBS)?;
            let existing: Option<PluginRecord> =
                match records.get(name).at::<PluginStoreError>(names::PLUGINS)? {
                    Some(g) => Some(codec::decode(names::PLUGINS, g.value(), || {
                        name.to_string()
                    })?),
                    None => None,
                };
            let mut record = match existing {
                Some(r) if r.world != world => {
                    return Err(PluginStoreError::WorldChange {
                        name: name.to_string(),
                        stored: r.world,
                        new: world.to_string(),
                    });
                }
                Some(r) => {
                    if r.active_version()
                        .is_some_and(|a| a.hash == version.hash && a.settings == version.settings)
                    {
                        return Ok(DeployOutcome::Unchanged(r));
                    }
                    r
                }
                None => PluginRecord {
                    name: name.to_string(),
                    world: world.to_string(),
                    versions: Vec::new(),
                    active: 0,
                },
            };
            version.version = record.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
            version.size = bytes.len() as u64;
            record.active = version.version;
            if blobs
                .get(version.hash.as_str())
                .at::<PluginStoreError>(names::PLUGIN_BLOBS)?
                .is_none()
            {
                blobs
                    .insert(version.hash.as_str(), bytes)
                    .at::<PluginStoreError>(names::PLUGIN_BLOBS)?;
            }
            record.versions.push(version);
            put_record(&mut records, &record)?;
            DeployOutcome::Deployed(record)
        };
        txn.commit::<PluginStoreError>()?;
        Ok(outcome)
    }

    /// Makes the version before the active one active again; returns the record.
    pub fn rollback_plugin(&self, name: &str) -> Result<PluginRecord, PluginStoreError> {
        let txn = self.begin_write::<PluginStoreError>()?;
        let record = {
            let mut records =
                crate::capture::write::<PluginStoreError, _, _>(&txn, tables::PLUGINS)?;
            let mut record: PluginRecord =
                match records.get(name).at::<PluginStoreError>(names::PLUGINS)? {
                    Some(g) => codec::decode(names::PLUGINS, g.value(), || name.to_string())?,
                    None => return Err(PluginStoreError::NotFound(name.to_string())),
                };
            let earlier = record
                .versions
                .iter()
                .map(|v| v.version)
                .filter(|v| *v < record.active)
                .max();
            let Some(earlier) = earlier else {
                return Err(PluginStoreError::NoEarlierVersion {
                    name: name.to_string(),
                    active: record.active,
                });
            };
            record.active = earlier;
            put_record(&mut records, &record)?;
            record
        };
        txn.commit::<PluginStoreError>()?;
        Ok(record)
    }

    /// Removes a plugin and every blob no other plugin names; returns the
    /// removed record.
    pub fn remove_plugin(&self, name: &str) -> Result<PluginRecord, PluginStoreError> {
        let txn = self.begin_write::<PluginStoreError>()?;
        let record = {
            let mut records =
                crate::capture::write::<PluginStoreError, _, _>(&txn, tables::PLUGINS)?;
            let mut blobs =
                crate::capture::write::<PluginStoreError, _, _>(&txn, tables::PLUGIN_BLOBS)?;
            let record: PluginRecord = match records
                .remove(name)
                .at::<PluginStoreError>(names::PLUGINS)?
            {
                Some(g) => codec::decode(names::PLUGINS, g.value(), || name.to_string())?,
                None => return Err(PluginStoreError::NotFound(name.to_string())),
            };
            let mut still_named = BTreeSet::new();
            for row in records.iter().at::<PluginStoreError>(names::PLUGINS)? {
                let (k, v) = row.at::<PluginStoreError>(names::PLUGINS)?;
                let other: PluginRecord =
                    codec::decode(names::PLUGINS, v.value(), || k.value().to_string())?;
                still_named.extend(other.versions.into_iter().map(|v| v.hash));
            }
            for v in &record.versions {
                if !still_named.contains(&v.hash) {
                    blobs
                        .remove(v.hash.as_str())
                        .at::<PluginStoreError>(names::PLUGIN_BLOBS)?;
                }
            }
            record
        };
        txn.commit::<PluginStoreError>()?;
        Ok(record)
    }

    /// Every deployed plugin, ordered by name.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>, ReadError> {
        let txn = self.begin_read()?;
        let records = tables::read(&txn, tables::PLUGINS)?;
        let mut out = Vec::new();
        for row in records.iter().at::<ReadError>(names::PLUGINS)? {
            let (k, v) = row.at::<ReadError>(names::PLUGINS)?;
            out.push(codec::decode(names::PLUGINS, v.value(), || {
                k.value().to_string()
            })?);
        }
        Ok(out)
    }

    /// The deployed plugin with this name.
    pub fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, ReadError> {
        let txn = self.begin_read()?;
        let records = tables::read(&txn, tables::PLUGINS)?;
        let Some(g) = records.get(name).at::<ReadError>(names::PLUGINS)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(names::PLUGINS, g.value(), || {
            name.to_string()
        })?))
    }

    /// The component bytes with this hash.
    pub fn plugin_blob(&self, hash: &str) -> Result<Option<Vec<u8>>, ReadError> {
        let txn = self.begin_read()?;
        let blobs = tables::read(&txn, tables::PLUGIN_BLOBS)?;
        Ok(blobs
            .get(hash)
            .at::<ReadError>(names::PLUGIN_BLOBS)?
            .map(|g| g.value().to_vec()))
    }
}

fn put_record(
    records: &mut WriteTable<'_, &'static str, &'static [u8]>,
    record: &PluginRecord,
) -> Result<(), PluginStoreError> {
    let bytes = codec::encode(record).map_err(|source| PluginStoreError::Encode {
        name: record.name.clone(),
        source,
    })?;
    records
        .insert(record.name.as_str(), bytes.as_slice())
        .at::<PluginStoreError>(names::PLUGINS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), Default::default()).unwrap();
        (dir, store)
    }

    fn version(hash: &str) -> PluginVersion {
        PluginVersion {
            version: 0,
            hash: hash.to_string(),
            size: 0,
            settings: BTreeMap::new(),
            description: serde_json::Value::Null,
            deployed_at_ms: 1,
        }
    }

    #[test]
    fn deploy_rollback_and_remove_keep_versions_and_blobs_consistent() {
        let (_d, s) = store();
        let first = s
            .deploy_plugin("op", "operator", b"one", version("h1"))
            .unwrap();
        assert!(matches!(first, DeployOutcome::Deployed(ref r) if r.active == 1));
        // The same bytes and settings again change nothing.
        let again = s
            .deploy_plugin("op", "operator", b"one", version("h1"))
            .unwrap();
        assert!(matches!(again, DeployOutcome::Unchanged(ref r) if r.versions.len() == 1));
        let second = s
            .deploy_plugin("op", "operator", b"two", version("h2"))
            .unwrap();
        assert_eq!(second.record().active, 2);
        assert_eq!(second.record().versions[1].size, 3);
        // Another plugin shares blob h2.
        s.deploy_plugin("other", "operator", b"two", version("h2"))
            .unwrap();
        let rolled = s.rollback_plugin("op").unwrap();
        assert_eq!(rolled.active, 1);
        assert_eq!(rolled.active_version().unwrap().hash, "h1");
        assert!(matches!(
            s.rollback_plugin("op"),
            Err(PluginStoreError::NoEarlierVersion { active: 1, .. })
        ));
        // Deploying after a rollback appends a new version number.
        let third = s
            .deploy_plugin("op", "operator", b"three", version("h3"))
            .unwrap();
        assert_eq!(third.record().active, 3);
        assert!(matches!(
            s.deploy_plugin("op", "source-adapter", b"x", version("h4")),
            Err(PluginStoreError::WorldChange { .. })
        ));
        let removed = s.remove_plugin("op").unwrap();
        assert_eq!(removed.versions.len(), 3);
        assert_eq!(s.plugin_blob("h1").unwrap(), None);
        assert_eq!(s.plugin_blob("h3").unwrap(), None);
        assert_eq!(s.plugin_blob("h2").unwrap().as_deref(), Some(&b"two"[..]));
        assert!(matches!(
            s.remove_plugin("op"),
            Err(PluginStoreError::NotFound(_))
        ));
        assert_eq!(
            s.plugins()
                .unwrap()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["other"]
        );
    }

    #[test]
    fn a_deploy_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path, Default::default()).unwrap();
            s.deploy_plugin("hook", "source-adapter", b"bytes", version("hh"))
                .unwrap();
        }
        let s = Store::open(&path, Default::default()).unwrap();
        let r = s.plugin("hook").unwrap().unwrap();
        assert_eq!(r.world, "source-adapter");
        assert_eq!(s.plugin_blob("hh").unwrap().as_deref(), Some(&b"bytes"[..]));
    }
}
