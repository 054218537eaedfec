//! Snapshots: a consistent copy of a store file and the changelog position it
//! holds, from which a new owner of a partition starts before applying the
//! rest of the log.
//!
//! How the copy is consistent: redb writes a commit's pages to free space and
//! then its header; the header on disk names only the last *durable* commit,
//! whose pages later (non-durable) commits never overwrite — that is what
//! makes redb crash-safe. So a byte copy of the file taken while no commit is
//! in flight is a crash image: opened, it is the state of the last durable
//! commit. [`Store::snapshot_to`] therefore
//! 1. commits an empty transaction with `Durability::Immediate`, so that
//!    every commit made so far (lazy and `CommitDurability::None` ones too) is
//!    part of the durable state;
//! 2. begins a write transaction and holds it during the copy (redb allows one
//!    writer at a time, so no commit can run meanwhile), copies the file to
//!    `<dest>.partial`, fsyncs it and rolls the transaction back;
//! 3. opens the copy with redb (which repairs it as after a crash, checking
//!    its pages), reads the `changelog_seq` it holds, closes it, renames it to
//!    `dest` and fsyncs the directory.
//!
//! Invariants: the returned position is read from the copy itself, so it is
//! exactly the position of the state the copy holds, even if a writer slipped
//! in between steps 1 and 2; `Store::open` of `dest` gives that state; `dest`
//! exists only if every step succeeded.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase};

use crate::error::SnapshotError;
use crate::store::Store;
use crate::tables;

/// redb's page cache for opening the copy: it is read once.
const VERIFY_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl Store {
    /// Writes a consistent copy of the store to `dest` (replacing a file
    /// there) and returns the changelog position it holds (module docs).
    /// Writers wait while the file is copied; readers do not.
    pub fn snapshot_to(&self, dest: &Path) -> Result<u64, SnapshotError> {
        if dest == self.path() {
            return Err(SnapshotError::SameFile(dest.to_path_buf()));
        }
        let partial = partial_path(dest)?;
        let copy_err = |to: &Path| {
            let to = to.to_path_buf();
            let from = self.path().to_path_buf();
            move |source| SnapshotError::Copy { from, to, source }
        };

        // 1. Everything committed so far becomes durable.
        let mut flush = self.db.begin_write().map_err(SnapshotError::Transaction)?;
        self.durable_commit_begun();
        flush
            .set_durability(Durability::Immediate)
            .map_err(SnapshotError::Durability)?;
        flush.commit().map_err(SnapshotError::Commit)?;

        // 2. Copy while holding writers off.
        let hold = self.db.begin_write().map_err(SnapshotError::Transaction)?;
        let copied = copy_synced(self.path(), &partial).map_err(copy_err(&partial));
        drop(hold);
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }

        // 3. Open the copy, read its position, move it into place.
        let position = match position_of(&partial) {
            Ok(position) => position,
            Err(reason) => {
                let _ = std::fs::remove_file(&partial);
                return Err(SnapshotError::Verify {
                    path: partial,
                    reason,
                });
            }
        };
        std::fs::rename(&partial, dest).map_err(copy_err(dest))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(copy_err(dest))?;
        }
        tracing::debug!(
            from = %self.path().display(),
            to = %dest.display(),
            position,
            "store snapshot written"
        );
        Ok(position)
    }
}

/// `<dest>.partial`, beside `dest`.
fn partial_path(dest: &Path) -> Result<PathBuf, SnapshotError> {
    let Some(name) = dest.file_name() else {
        return Err(SnapshotError::Copy {
            from: PathBuf::new(),
            to: dest.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the destination has no file name",
            ),
        });
    };
    let mut name = name.to_os_string();
    name.push(".partial");
    Ok(dest.with_file_name(name))
}

/// Copies `from` to `to` and fsyncs `to`.
fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    std::fs::OpenOptions::new().write(true).open(to)?.sync_all()
}

/// Opens the copy with redb and reads its `changelog_seq` (0 if unset).
fn position_of(path: &Path) -> Result<u64, String> {
    let db = Database::builder()
        .set_cache_size(VERIFY_CACHE_BYTES)
        .open(path)
        .map_err(|e| e.to_string())?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = txn
        .open_table(tables::META.def)
        .map_err(|e| e.to_string())?;
    let position = meta
        .get(tables::META_CHANGELOG_SEQ)
        .map_err(|e| e.to_string())?
        .map_or(0, |g| g.value());
    Ok(position)
}
