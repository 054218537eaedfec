//! Typed errors, one narrow enum per operation family.
//!
//! Each family carries only the failures its operations can produce: opening
//! ([`OpenError`]), the ingest transaction ([`IngestError`]), reads
//! ([`ReadError`]), subscription writes ([`SubscriptionError`]), outbox writes
//! ([`OutboxError`]), dedup compaction ([`CompactError`]), deployed
//! plugins ([`PluginStoreError`]), changelog replay ([`ApplyError`]) and
//! snapshots ([`SnapshotError`]). Every family that writes has a `Changelog`
//! variant carrying the sink's [`ChangelogError`]. redb's own errors are
//! wrapped with context (which table, which file) and kept as the `source`, so
//! nothing is flattened to a string. A stored value that cannot be decoded is a
//! [`Corrupt`] error naming the table and the key; it never panics.
//!
//! Invariant: every failure inside a write transaction is returned before
//! `commit`, so the transaction is dropped and redb rolls it back: an `Err` from a
//! write method means nothing of that call was written — locally, and, with a
//! changelog sink, in the log too, except in one case: the log accepted the
//! transaction and the local commit then failed; the store then refuses to
//! write ([`ChangelogError::Behind`]) until it has applied the log.

use std::path::PathBuf;

/// A stored value that could not be decoded (unknown format version, bad JSON,
/// or a row that points at a missing row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}, key {key}: {reason}")]
pub struct Corrupt {
    /// The table holding the value.
    pub table: &'static str,
    /// The key, rendered for humans.
    pub key: String,
    /// What was wrong with it.
    pub reason: String,
}

/// Opening the store file failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// redb could not open or create the file (locked by another process, not a
    /// redb file, I/O …).
    #[error("cannot open store file {path}: {source}")]
    Database {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::DatabaseError,
    },
    /// The transaction that creates the tables could not start.
    #[error("store file {path}: cannot begin the setup transaction: {source}")]
    Transaction {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::TransactionError,
    },
    /// A table could not be created or opened (for instance, stored with other key or value types).
    #[error("store file {path}: cannot open table {table}: {source}")]
    Table {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// redb's error (boxed: it is large and rare).
        #[source]
        source: Box<redb::TableError>,
    },
    /// Reading or writing the meta table failed.
    #[error("store file {path}: table {table}: {source}")]
    Storage {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// The setup transaction could not be committed.
    #[error("store file {path}: cannot commit the setup transaction: {source}")]
    Commit {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::CommitError,
    },
    /// The file was written by a store with another schema version.
    #[error(
        "store file {path} has schema version {found}; this build reads version {expected} \
         (no migration path exists between them)"
    )]
    SchemaMismatch {
        /// The store file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this build writes.
        expected: u64,
    },
}

/// The ingest transaction failed; nothing of the batch was written.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A signal reached the store without an id (the router assigns one first).
    #[error(
        "signal {index} of the batch (name {name:?}) has no id; the router must assign one \
         before storing"
    )]
    MissingId {
        /// Position in the batch.
        index: usize,
        /// The signal name.
        name: String,
    },
    /// The plan returned a firing with an empty `firing_id`.
    #[error(
        "the plan for signal {name}#{seq} returned a firing of subscription {subscription:?} with an empty firing id"
    )]
    EmptyFiringId {
        /// Signal name.
        name: String,
        /// Signal seq.
        seq: u64,
        /// The firing's subscription.
        subscription: String,
    },
    /// The per-name sequence number would overflow `u64`.
    #[error("signal {name}: sequence number overflow")]
    SeqOverflow {
        /// Signal name.
        name: String,
    },
    /// The write transaction could not start.
    #[error("cannot begin the ingest transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the ingest transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("ingest: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("ingest: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error("ingest: {0}")]
    Corrupt(#[from] Corrupt),
    /// A value could not be encoded.
    #[error("ingest: cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The changelog sink refused the transaction (`Store::set_changelog`);
    /// it was rolled back, nothing of it is stored.
    #[error("the changelog refused the ingest transaction: {0}")]
    Changelog(#[source] ChangelogError),
    /// The commit failed; the batch is not stored.
    #[error("cannot commit the ingest transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// A read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The read transaction could not start.
    #[error("cannot begin a read transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// A table could not be opened.
    #[error("cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read in a table failed.
    #[error("table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// The size of the store file could not be read.
    #[error("cannot read the size of store file {path}: {source}")]
    FileSize {
        /// The store file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A subscription write (put or delete) failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The subscription has an empty id.
    #[error("a subscription needs a non-empty id")]
    EmptyId,
    /// The version number would overflow `u64`.
    #[error("subscription {id}: version overflow")]
    VersionOverflow {
        /// Subscription id.
        id: String,
    },
    /// The write transaction could not start.
    #[error("cannot begin the subscription transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the subscription transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("subscriptions: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("subscriptions: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error("subscriptions: {0}")]
    Corrupt(#[from] Corrupt),
    /// The subscription could not be encoded.
    #[error("cannot encode subscription {id}: {source}")]
    Encode {
        /// Subscription id.
        id: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The changelog sink refused the transaction (`Store::set_changelog`);
    /// it was rolled back, nothing of it is stored.
    #[error("the changelog refused the subscription transaction: {0}")]
    Changelog(#[source] ChangelogError),
    /// The commit failed.
    #[error("cannot commit the subscription transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// A plugin write (deploy, rollback, remove) failed or was refused; nothing
/// was written.
#[derive(Debug, thiserror::Error)]
pub enum PluginStoreError {
    /// No plugin is stored under that name.
    #[error("no deployed plugin named {0:?}")]
    NotFound(String),
    /// The name holds a plugin of another world.
    #[error(
        "plugin {name:?} is a {stored} plugin; this component is a {new} plugin (remove {name:?} first, or deploy under another name)"
    )]
    WorldChange {
        /// The plugin name.
        name: String,
        /// The stored world.
        stored: String,
        /// The new component's world.
        new: String,
    },
    /// Rollback asked for, but the active version is the first one.
    #[error(
        "plugin {name:?}: version {active} is its first deployed version; nothing to roll back to"
    )]
    NoEarlierVersion {
        /// The plugin name.
        name: String,
        /// The active version.
        active: u64,
    },
    /// The write transaction could not start.
    #[error("cannot begin the plugin transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the plugin transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("plugins: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("plugins: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error("plugins: {0}")]
    Corrupt(#[from] Corrupt),
    /// The record could not be encoded.
    #[error("cannot encode plugin {name}: {source}")]
    Encode {
        /// The plugin name.
        name: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The changelog sink refused the transaction (`Store::set_changelog`);
    /// it was rolled back, nothing of it is stored.
    #[error("the changelog refused the plugin transaction: {0}")]
    Changelog(#[source] ChangelogError),
    /// The commit failed.
    #[error("cannot commit the plugin transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// An outbox write (delivery bookkeeping) failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A firing id that the store does not hold.
    #[error("no firing with id {0}")]
    UnknownFiring(String),
    /// The write transaction could not start.
    #[error("cannot begin the outbox transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the outbox transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("outbox: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("outbox: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error("outbox: {0}")]
    Corrupt(#[from] Corrupt),
    /// A firing record could not be encoded.
    #[error("cannot encode firing {firing_id}: {source}")]
    Encode {
        /// The firing.
        firing_id: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The changelog sink refused the transaction (`Store::set_changelog`);
    /// it was rolled back, nothing of it is stored.
    #[error("the changelog refused the outbox transaction: {0}")]
    Changelog(#[source] ChangelogError),
    /// The commit failed.
    #[error("cannot commit the outbox transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// History compaction failed; nothing was removed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The write transaction could not start.
    #[error("cannot begin the compaction transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the compaction transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("compaction: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("compaction: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error("compaction: {0}")]
    Corrupt(#[from] Corrupt),
    /// The changelog sink refused the transaction (`Store::set_changelog`);
    /// it was rolled back, nothing of it is stored.
    #[error("the changelog refused the compaction transaction: {0}")]
    Changelog(#[source] ChangelogError),
    /// The commit failed.
    #[error("cannot commit the compaction transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// A wait operation failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The write transaction could not start.
    #[error("cannot begin the wait transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the wait transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("waits: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("waits: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A stored value could not be decoded.
    #[error("waits: {0}")]
    Corrupt(#[from] Corrupt),
    /// A wait record or its answer could not be encoded.
    #[error("cannot encode wait {id}: {source}")]
    Encode {
        /// The wait id.
        id: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The changelog sink refused the transaction (`Store::set_changelog`);
    /// it was rolled back, nothing of it is stored.
    #[error("the changelog refused the wait transaction: {0}")]
    Changelog(#[source] ChangelogError),
    /// The commit failed.
    #[error("cannot commit the wait transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// A changelog sink refused a transaction (see `ChangeSink::commit`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangelogError {
    /// Another writer owns the log (for instance the expected last sequence
    /// did not match): this store must stop writing; retrying cannot succeed.
    #[error("fenced: another writer owns the changelog: {detail}")]
    Fenced {
        /// What the log said.
        detail: String,
    },
    /// The log could not be reached or did not answer; the transaction may be
    /// retried.
    #[error("changelog unavailable: {detail}")]
    Unavailable {
        /// What failed.
        detail: String,
    },
    /// The log accepted an earlier transaction at `position` that this store
    /// then failed to commit locally: the store is behind its own log and
    /// refuses to write until [`Store::apply`](crate::Store::apply) has applied
    /// the log up to `position`.
    #[error(
        "the store is behind its changelog: position {position} was accepted by the log but not \
         committed locally; apply the log from changelog_seq first"
    )]
    Behind {
        /// The position the log holds and the store does not.
        position: u64,
    },
}

/// Bytes that are not a changelog entry ([`ChangeSet::decode`](crate::ChangeSet::decode)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad changelog entry at byte {offset}: {reason}")]
pub struct ChangelogDecodeError {
    /// Where in the input the problem is.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl ChangelogDecodeError {
    pub(crate) fn new(offset: usize, reason: impl Into<String>) -> Self {
        ChangelogDecodeError {
            offset,
            reason: reason.into(),
        }
    }
}

/// Applying a changelog entry failed ([`Store::apply`](crate::Store::apply));
/// nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The entry names a table id this build does not know.
    #[error("changelog position {position}: change {index} names unknown table id {table}")]
    UnknownTable {
        /// The entry's changelog position.
        position: u64,
        /// The change's index in the entry.
        index: usize,
        /// The table id.
        table: u8,
    },
    /// A change's key or value bytes do not decode with its table's types, or
    /// its op does not fit the table's kind.
    #[error("changelog position {position}: change {index} to table {table}: {reason}")]
    BadChange {
        /// The entry's changelog position.
        position: u64,
        /// The change's index in the entry.
        index: usize,
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The write transaction could not start.
    #[error("cannot begin the apply transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The configured durability was refused.
    #[error("cannot set the apply transaction's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// A table could not be opened.
    #[error("apply: cannot open table {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// A read or write in a table failed.
    #[error("apply: table {table}: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// The commit failed; nothing of the entry is stored.
    #[error("cannot commit the apply transaction: {0}")]
    Commit(#[source] redb::CommitError),
}

/// Writing a snapshot failed ([`Store::snapshot_to`](crate::Store::snapshot_to));
/// the destination was not written (a partial copy is removed).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A write transaction (the durable commit before the copy, or the one
    /// that holds writers off during it) could not start.
    #[error("snapshot: cannot begin a write transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// The durable commit before the copy could not be made durable.
    #[error("snapshot: cannot set durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// The durable commit before the copy failed.
    #[error("snapshot: cannot commit before copying: {0}")]
    Commit(#[source] redb::CommitError),
    /// The destination is the store file itself.
    #[error("snapshot: the destination {0} is the store file")]
    SameFile(PathBuf),
    /// Copying the file failed.
    #[error("snapshot: cannot copy {from} to {to}: {source}")]
    Copy {
        /// The store file.
        from: PathBuf,
        /// The file being written.
        to: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The copy could not be opened as a store file, or its position read.
    #[error("snapshot: the copy {path} does not open: {reason}")]
    Verify {
        /// The copy.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// A schema migration step failed (crate-internal: `Store::open` reports it
/// as an [`OpenError`] naming the file and the table).
#[derive(Debug)]
pub(crate) enum MigrateFailure {
    /// A table could not be opened or deleted.
    Table {
        /// The table.
        table: &'static str,
        /// redb's error.
        source: redb::TableError,
    },
    /// A row could not be read or written.
    Storage {
        /// The table.
        table: &'static str,
        /// redb's error.
        source: redb::StorageError,
    },
}

/// Failures that any operation on open tables can meet, so that the table
/// helpers can serve every family.
pub(crate) trait TableFailure: Sized {
    /// A table could not be opened.
    fn table(table: &'static str, source: redb::TableError) -> Self;
    /// A read or write in `table` failed.
    fn storage(table: &'static str, source: redb::StorageError) -> Self;
}

/// Failures of the families that write: starting and configuring a write
/// transaction.
pub(crate) trait WriteFailure: TableFailure {
    /// `begin_write` failed.
    fn transaction(source: redb::TransactionError) -> Self;
    /// `set_durability` failed.
    fn durability(source: redb::SetDurabilityError) -> Self;
    /// The changelog sink refused the transaction.
    fn changelog(source: ChangelogError) -> Self;
    /// `commit` failed.
    fn commit(source: redb::CommitError) -> Self;
}

/// Adds the table name to a redb storage error.
pub(crate) trait AtTable<T> {
    /// Maps a storage error to the family `E`, naming `table`.
    fn at<E: TableFailure>(self, table: &'static str) -> Result<T, E>;
}

impl<T> AtTable<T> for Result<T, redb::StorageError> {
    fn at<E: TableFailure>(self, table: &'static str) -> Result<T, E> {
        self.map_err(|e| E::storage(table, e))
    }
}

macro_rules! table_failure {
    ($($family:ident),*) => {$(
        impl TableFailure for $family {
            fn table(table: &'static str, source: redb::TableError) -> Self {
                $family::Table { table, source }
            }
            fn storage(table: &'static str, source: redb::StorageError) -> Self {
                $family::Storage { table, source }
            }
        }
    )*};
}
table_failure!(
    IngestError,
    ReadError,
    SubscriptionError,
    OutboxError,
    CompactError,
    WaitError,
    PluginStoreError,
    MigrateFailure,
    ApplyError
);

macro_rules! write_failure {
    ($($family:ident),*) => {$(
        impl WriteFailure for $family {
            fn transaction(source: redb::TransactionError) -> Self {
                $family::Transaction(source)
            }
            fn durability(source: redb::SetDurabilityError) -> Self {
                $family::Durability(source)
            }
            fn changelog(source: ChangelogError) -> Self {
                $family::Changelog(source)
            }
            fn commit(source: redb::CommitError) -> Self {
                $family::Commit(source)
            }
        }
    )*};
}
write_failure!(
    IngestError,
    SubscriptionError,
    OutboxError,
    CompactError,
    WaitError,
    PluginStoreError
);
