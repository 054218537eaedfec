//! The [`Store`] handle: opening the file, its options, and the transaction
//! helpers every operation family uses.
//!
//! One redb file per node. Opening creates every table (so readers never meet a
//! missing one) and checks, or on a fresh file writes, `meta["schema_version"]`.
//! The handle is `Send + Sync` and all methods take `&self`: redb runs one write
//! transaction at a time (a second `begin_write` waits) and any number of read
//! transactions beside it, each reading the last committed state. Share it in an
//! `Arc` and call it from `spawn_blocking`.
//!
//! Lazy commits: delivery bookkeeping (a firing marked delivered, a failed
//! attempt counted) is committed without an fsync when the last durable commit
//! is less than `LAZY_WINDOW` old; redb makes such a commit durable with the
//! next durable one (the next ingest, usually). [`Store::sync_lazy`] makes them
//! durable when nothing else has for a while; the outbox calls it when idle and
//! at shutdown. Losing a lazy commit in a crash only puts a delivered firing
//! back in the outbox: it is published again, which JetStream dedups by its
//! `Nats-Msg-Id` and which at-least-once delivery allows anyway. Everything an
//! acknowledgement depends on (signals, firings, the outbox rows) is committed
//! durably as before.
//!
//! Every write transaction is a `capture::WriteTxn`: with a changelog sink set
//! ([`Store::set_changelog`]) it records its table writes and commits them
//! through the sink before redb (`capture`, `changelog`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
};

use crate::capture::WriteTxn;
use crate::error::{AtTable, MigrateFailure, OpenError, ReadError, TableFailure, WriteFailure};
use crate::migrate;
use crate::sink::{ChangeSink, Unapplied};
use crate::tables::{self, names};

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitDurability {
    /// Each commit is durable when it returns (fsync). The default, and what
    /// "ack only after commit" needs.
    #[default]
    Immediate,
    /// Commits are atomic but not flushed until a later immediate commit; a crash
    /// returns the file to an earlier consistent state. For tests and benchmarks.
    None,
}

/// Options of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a `(name, id)` is remembered for dedup (default 7 days).
    pub dedup_retention: Duration,
    /// Durability of write transactions (default [`CommitDurability::Immediate`]).
    pub durability: CommitDurability,
    /// redb's page cache in bytes (`Builder::set_cache_size`); `None` keeps
    /// redb's default (1 GiB, used as it fills). A process holding many
    /// partition stores sets a small one per store.
    pub cache_size: Option<usize>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            dedup_retention: Duration::from_secs(7 * 24 * 60 * 60),
            durability: CommitDurability::Immediate,
            cache_size: None,
        }
    }
}

impl StoreOptions {
    /// The retention in milliseconds, saturated to `i64`.
    pub(crate) fn retention_ms(&self) -> i64 {
        i64::try_from(self.dedup_retention.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Row counts per table and the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Stored signal instances.
    pub signals: u64,
    /// Distinct signal names.
    pub signal_names: u64,
    /// `(name, id)` rows: the lookup by producer id, which is also the dedup
    /// entry while its time is inside the dedup retention (live and expired
    /// entries both count; a row is deleted with its instance).
    pub signal_ids: u64,
    /// Firings, pending and delivered.
    pub firings: u64,
    /// Firings still in the outbox.
    pub pending: u64,
    /// Current subscriptions.
    pub subscriptions: u64,
    /// Stored subscription versions (current and past).
    pub subscription_versions: u64,
    /// Lineage rows signal → firing.
    pub signal_firing_links: u64,
    /// Size of the store file in bytes.
    pub file_bytes: u64,
    /// Join offers held (signal instances waiting for join partners).
    pub join_offers: u64,
    /// Creation time (ms since the epoch) of the oldest firing in the outbox.
    pub oldest_pending_ms: Option<i64>,
}

/// The redb-backed store of one node.
pub struct Store {
    pub(crate) db: Database,
    pub(crate) options: StoreOptions,
    path: PathBuf,
    /// When the last durable write transaction began.
    last_durable: Mutex<Instant>,
    /// Whether a lazy commit has not been made durable yet.
    lazy_pending: AtomicBool,
    /// The changelog sink write transactions begin with (`changelog`).
    pub(crate) changelog: RwLock<Option<Arc<dyn ChangeSink>>>,
    /// A position the log accepted and the local commit then failed
    /// (`capture`): writes are refused until it is applied.
    pub(crate) unapplied: Unapplied,
}

/// A lazy commit is allowed while the last durable one is younger than this.
pub(crate) const LAZY_WINDOW: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store file at `path`, creates the tables and checks
    /// the schema version.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, OpenError> {
        let path_buf = path.to_path_buf();
        let mut builder = Database::builder();
        if let Some(bytes) = options.cache_size {
            builder.set_cache_size(bytes);
        }
        let db = builder.create(path).map_err(|source| OpenError::Database {
            path: path_buf.clone(),
            source,
        })?;
        let store = Store {
            db,
            options,
            path: path_buf,
            last_durable: Mutex::new(Instant::now()),
            lazy_pending: AtomicBool::new(false),
            changelog: RwLock::new(None),
            unapplied: Unapplied::default(),
        };
        store.setup()?;
        tracing::debug!(path = %store.path.display(), "store opened");
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    fn setup(&self) -> Result<(), OpenError> {
        let path = &self.path;
        let txn = self
            .db
            .begin_write()
            .map_err(|source| OpenError::Transaction {
                path: path.clone(),
                source,
            })?;
        let table_err = |table: &'static str| {
            move |source| OpenError::Table {
                path: path.clone(),
                table,
                source: Box::new(source),
            }
        };
        let storage_err = |table: &'static str| {
            move |source| OpenError::Storage {
                path: path.clone(),
                table,
                source,
            }
        };
        // The schema version first: an older file is migrated before its
        // tables are opened with this build's types.
        {
            let mut meta = txn
                .open_table(tables::META.def)
                .map_err(table_err(names::META))?;
            let found = meta
                .get(tables::META_SCHEMA_VERSION)
                .map_err(storage_err(names::META))?
                .map(|g| g.value());
            match found {
                Some(v) if v == tables::SCHEMA_VERSION => {}
                Some(found @ (1 | 2)) => {
                    let migrate_err = |failure| match failure {
                        MigrateFailure::Table { table, source } => OpenError::Table {
                            path: path.clone(),
                            table,
                            source: Box::new(source),
                        },
                        MigrateFailure::Storage { table, source } => OpenError::Storage {
                            path: path.clone(),
                            table,
                            source,
                        },
                    };
                    if found == 1 {
                        let rows = migrate::v1_to_v2(&txn).map_err(migrate_err)?;
                        tracing::info!(
                            path = %path.display(),
                            signal_ids = rows,
                            "store migrated from schema version 1 to 2 (dedup folded into signal_ids)"
                        );
                    }
                    let links = migrate::v2_to_v3(&txn).map_err(migrate_err)?;
                    meta.insert(tables::META_SCHEMA_VERSION, tables::SCHEMA_VERSION)
                        .map_err(storage_err(names::META))?;
                    tracing::info!(
                        path = %path.display(),
                        from = found,
                        signal_firing_links = links,
                        "store migrated to schema version 3 (lineage links in a plain table, deliveries in `delivered`)"
                    );
                }
                Some(found) => {
                    return Err(OpenError::SchemaMismatch {
                        path: path.clone(),
                        found,
                        expected: tables::SCHEMA_VERSION,
                    });
                }
                None => {
                    meta.insert(tables::META_SCHEMA_VERSION, tables::SCHEMA_VERSION)
                        .map_err(storage_err(names::META))?;
                }
            }
        }
        txn.open_table(tables::SIGNAL_SEQ.def)
            .map_err(table_err(names::SIGNAL_SEQ))?;
        txn.open_table(tables::SIGNALS.def)
            .map_err(table_err(names::SIGNALS))?;
        txn.open_table(tables::SIGNAL_IDS.def)
            .map_err(table_err(names::SIGNAL_IDS))?;
        txn.open_table(tables::FIRINGS.def)
            .map_err(table_err(names::FIRINGS))?;
        txn.open_table(tables::OUTBOX.def)
            .map_err(table_err(names::OUTBOX))?;
        txn.open_table(tables::DELIVERED.def)
            .map_err(table_err(names::DELIVERED))?;
        txn.open_table(tables::SIGNAL_FIRINGS.def)
            .map_err(table_err(names::SIGNAL_FIRINGS))?;
        txn.open_table(tables::SUBSCRIPTION_FIRINGS.def)
            .map_err(table_err(names::SUBSCRIPTION_FIRINGS))?;
        txn.open_table(tables::SUBSCRIPTIONS.def)
            .map_err(table_err(names::SUBSCRIPTIONS))?;
        txn.open_table(tables::SUBSCRIPTION_VERSIONS.def)
            .map_err(table_err(names::SUBSCRIPTION_VERSIONS))?;
        txn.open_table(tables::JOIN_OFFERS.def)
            .map_err(table_err(names::JOIN_OFFERS))?;
        txn.open_table(tables::WAITS.def)
            .map_err(table_err(names::WAITS))?;
        txn.open_multimap_table(tables::SIGNAL_WAITS.def)
            .map_err(table_err(names::SIGNAL_WAITS))?;
        txn.open_multimap_table(tables::SIGNAL_MATCHES.def)
            .map_err(table_err(names::SIGNAL_MATCHES))?;
        txn.open_table(tables::JOIN_DROPS.def)
            .map_err(table_err(names::JOIN_DROPS))?;
        txn.open_table(tables::PLUGINS.def)
            .map_err(table_err(names::PLUGINS))?;
        txn.open_table(tables::PLUGIN_BLOBS.def)
            .map_err(table_err(names::PLUGIN_BLOBS))?;
        txn.commit().map_err(|source| OpenError::Commit {
            path: path.clone(),
            source,
        })
    }

    /// Begins a write transaction with the configured durability.
    pub(crate) fn begin_write<E: WriteFailure>(&self) -> Result<WriteTxn<'_>, E> {
        let mut txn = self.db.begin_write().map_err(E::transaction)?;
        txn.set_durability(self.configured_durability())
            .map_err(E::durability)?;
        Ok(WriteTxn::new(&self.unapplied, txn, self.current_sink()))
    }

    /// The durability of a write transaction that begins now, with the lazy
    /// bookkeeping of a durable one; call it after `begin_write` returned.
    pub(crate) fn configured_durability(&self) -> Durability {
        match self.options.durability {
            CommitDurability::Immediate => {
                self.durable_commit_begun();
                Durability::Immediate
            }
            CommitDurability::None => Durability::None,
        }
    }

    /// Notes that a durable write transaction began: one writer at a time,
    /// so lazy commits made before it become durable with it.
    pub(crate) fn durable_commit_begun(&self) {
        *self.last_durable.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.lazy_pending.store(false, Ordering::Release);
    }

    /// Begins a write transaction that may skip the fsync (module docs: lazy
    /// commits); for delivery bookkeeping only.
    pub(crate) fn begin_write_lazy<E: WriteFailure>(&self) -> Result<WriteTxn<'_>, E> {
        let recent = self
            .last_durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < LAZY_WINDOW;
        if self.options.durability == CommitDurability::None || !recent {
            return self.begin_write();
        }
        let mut txn = self.db.begin_write().map_err(E::transaction)?;
        txn.set_durability(Durability::None)
            .map_err(E::durability)?;
        self.lazy_pending.store(true, Ordering::Release);
        Ok(WriteTxn::new(&self.unapplied, txn, self.current_sink()))
    }

    /// Makes lazy commits durable if any is pending and the last durable
    /// commit is at least `min_age` old; returns whether it committed.
    pub fn sync_lazy(&self, min_age: Duration) -> Result<bool, crate::error::OutboxError> {
        if !self.lazy_pending.load(Ordering::Acquire) {
            return Ok(false);
        }
        let age = self
            .last_durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if age < min_age {
            return Ok(false);
        }
        let txn = self.begin_write::<crate::error::OutboxError>()?;
        txn.commit::<crate::error::OutboxError>()?;
        Ok(true)
    }

    /// Begins a read transaction.
    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, ReadError> {
        self.db.begin_read().map_err(ReadError::Transaction)
    }

    /// Row counts per table and the file size.
    pub fn stats(&self) -> Result<StoreStats, ReadError> {
        let txn = self.begin_read()?;
        fn count<T: ReadableTableMetadata>(
            table: Result<T, redb::TableError>,
            name: &'static str,
        ) -> Result<u64, ReadError> {
            let table = table.map_err(|e| ReadError::table(name, e))?;
            table.len().at(name)
        }
        let file_bytes = std::fs::metadata(&self.path)
            .map_err(|source| ReadError::FileSize {
                path: self.path.clone(),
                source,
            })?
            .len();
        Ok(StoreStats {
            signals: count(txn.open_table(tables::SIGNALS.def), names::SIGNALS)?,
            signal_names: count(txn.open_table(tables::SIGNAL_SEQ.def), names::SIGNAL_SEQ)?,
            signal_ids: count(txn.open_table(tables::SIGNAL_IDS.def), names::SIGNAL_IDS)?,
            firings: count(txn.open_table(tables::FIRINGS.def), names::FIRINGS)?,
            pending: count(txn.open_table(tables::OUTBOX.def), names::OUTBOX)?,
            subscriptions: count(
                txn.open_table(tables::SUBSCRIPTIONS.def),
                names::SUBSCRIPTIONS,
            )?,
            subscription_versions: count(
                txn.open_table(tables::SUBSCRIPTION_VERSIONS.def),
                names::SUBSCRIPTION_VERSIONS,
            )?,
            signal_firing_links: count(
                txn.open_table(tables::SIGNAL_FIRINGS.def),
                names::SIGNAL_FIRINGS,
            )?,
            file_bytes,
            join_offers: count(txn.open_table(tables::JOIN_OFFERS.def), names::JOIN_OFFERS)?,
            oldest_pending_ms: self.pending(1)?.first().map(|f| f.created_at_ms),
        })
    }
}
