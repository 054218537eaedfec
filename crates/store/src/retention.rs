//! Dedup retention: forgetting `(name, id)` pairs older than the retention.
//!
//! An entry is live while `received_at_ms > now_ms - retention`. Ingest applies
//! the same rule on its own (an expired entry that compaction has not removed
//! yet does not make a duplicate), so when compaction runs changes only the file
//! size, never an answer. Compaction walks `dedup_by_time` from its start up to
//! the cutoff — the time index makes this proportional to what it removes, not
//! to the table size — and removes both rows of each expired entry in one write
//! transaction. Signal instances, `signal_ids` and lineage are not touched.

use redb::ReadableTable;

use crate::error::{AtTable, CompactError};
use crate::store::Store;
use crate::tables::{self, names};

impl Store {
    /// Removes the dedup entries that have expired at `now_ms`; returns how many.
    pub fn compact_dedup(&self, now_ms: i64) -> Result<usize, CompactError> {
        let cutoff = now_ms.saturating_sub(self.options.retention_ms());
        let txn = self.begin_write::<CompactError>()?;
        let removed = {
            let mut by_time = tables::write::<CompactError, _, _>(
                &txn,
                tables::DEDUP_BY_TIME,
                names::DEDUP_BY_TIME,
            )?;
            let mut dedup = tables::write::<CompactError, _, _>(&txn, tables::DEDUP, names::DEDUP)?;
            // Names are never empty, so `(cutoff + 1, "", "")` is above every
            // entry received at or before the cutoff and below every later one.
            let upper = (cutoff.saturating_add(1), "", "");
            let mut expired: Vec<(i64, String, String)> = Vec::new();
            for row in by_time
                .extract_from_if(..upper, |_, _| true)
                .at::<CompactError>(names::DEDUP_BY_TIME)?
            {
                let (k, _) = row.at::<CompactError>(names::DEDUP_BY_TIME)?;
                let (at, name, id) = k.value();
                expired.push((at, name.to_string(), id.to_string()));
            }
            for (at, name, id) in &expired {
                let key = (name.as_str(), id.as_str());
                let current = dedup
                    .get(key)
                    .at::<CompactError>(names::DEDUP)?
                    .map(|g| g.value());
                // The time index and the entry are written together; check anyway
                // so a stray index row can never drop a newer entry.
                if matches!(current, Some((_, received)) if received == *at) {
                    dedup.remove(key).at::<CompactError>(names::DEDUP)?;
                }
            }
            expired.len()
        };
        txn.commit().map_err(CompactError::Commit)?;
        if removed > 0 {
            tracing::debug!(removed, cutoff_ms = cutoff, "dedup entries compacted");
        }
        Ok(removed)
    }
}
