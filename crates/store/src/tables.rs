//! Every redb table of the store: its name, key type and value type.
//!
//! Keys are redb's typed keys, never hand-encoded bytes: integers compare
//! numerically, `&str` compares by its UTF-8 bytes, and tuples compare element
//! by element, so `(&str, u64)` orders by name, then by seq. Values are either
//! small fixed types (`u64`, `(u64, i64)`, `()`) or the format-byte-plus-JSON
//! encoding of `codec`. `docs/STORAGE.md` describes each table and its
//! invariants; the short form:
//!
//! - `signal_seq[name]` is the last seq given to `name`; `signals` holds
//!   `(name, first..=signal_seq[name])` with no gaps (history retention
//!   deletes from the oldest seq up).
//! - `signal_ids[(name, id)] = (seq, received_at_ms)` of the latest instance
//!   with that id; it is also the dedup entry (live while `received_at_ms` is
//!   inside the dedup retention), and it is deleted with that instance.
//! - every `outbox[firing_seq]` names a `firings` row in state `Pending` with that
//!   `firing_seq`, and every `Pending` firing has its outbox row.
//! - `meta["firing_seq"]` is the largest firing seq ever assigned.
//! - `join_offers` rows exist only for the current version of a subscription; a
//!   new version or a delete removes the old version's rows in its transaction.
//!
//! - every hash named by a `plugins` version has its `plugin_blobs` row, and a
//!   blob no version names is removed in the transaction that orphaned it.
//!
//! All tables are created when the store is opened, so readers never meet a
//! missing table.

use redb::{MultimapTableDefinition, TableDefinition};

/// The schema version this build reads and writes (`meta["schema_version"]`).
pub const SCHEMA_VERSION: u64 = 2;

/// `meta` key: the schema version.
pub(crate) const META_SCHEMA_VERSION: &str = "schema_version";
/// `meta` key: the last firing seq assigned (outbox order).
pub(crate) const META_FIRING_SEQ: &str = "firing_seq";

/// Table names, used in error messages.
pub(crate) mod names {
    pub(crate) const META: &str = "meta";
    pub(crate) const SIGNAL_SEQ: &str = "signal_seq";
    pub(crate) const SIGNALS: &str = "signals";
    pub(crate) const SIGNAL_IDS: &str = "signal_ids";
    pub(crate) const FIRINGS: &str = "firings";
    pub(crate) const OUTBOX: &str = "outbox";
    pub(crate) const SIGNAL_FIRINGS: &str = "signal_firings";
    pub(crate) const SUBSCRIPTION_FIRINGS: &str = "subscription_firings";
    pub(crate) const SUBSCRIPTIONS: &str = "subscriptions";
    pub(crate) const SUBSCRIPTION_VERSIONS: &str = "subscription_versions";
    pub(crate) const JOIN_OFFERS: &str = "join_offers";
    pub(crate) const WAITS: &str = "waits";
    pub(crate) const SIGNAL_WAITS: &str = "signal_waits";
    pub(crate) const SIGNAL_MATCHES: &str = "signal_matches";
    pub(crate) const JOIN_DROPS: &str = "join_drops";
    pub(crate) const PLUGINS: &str = "plugins";
    pub(crate) const PLUGIN_BLOBS: &str = "plugin_blobs";
}

/// Store-wide counters and the schema version: `&str -> u64`.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new(names::META);
/// Last seq per signal name: `name -> seq`.
pub(crate) const SIGNAL_SEQ: TableDefinition<&str, u64> = TableDefinition::new(names::SIGNAL_SEQ);
/// Signal instances: `(name, seq) -> SignalInstance` (codec JSON).
pub(crate) const SIGNALS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new(names::SIGNALS);
/// Lookup by producer id and the dedup window: `(name, id) -> (seq,
/// received_at_ms)` of the latest instance with that id.
pub(crate) const SIGNAL_IDS: TableDefinition<(&str, &str), (u64, i64)> =
    TableDefinition::new(names::SIGNAL_IDS);
/// Firings: `firing_id -> FiringRecord` (codec JSON).
pub(crate) const FIRINGS: TableDefinition<&str, &[u8]> = TableDefinition::new(names::FIRINGS);
/// Undelivered firings in creation order: `firing_seq -> firing_id`.
pub(crate) const OUTBOX: TableDefinition<u64, &str> = TableDefinition::new(names::OUTBOX);
/// Lineage, signal side: `(name, seq) ->> firing_id` (multimap).
pub(crate) const SIGNAL_FIRINGS: MultimapTableDefinition<(&str, u64), &str> =
    MultimapTableDefinition::new(names::SIGNAL_FIRINGS);
/// Lineage, subscription side: `(subscription, firing_seq) -> firing_id`.
pub(crate) const SUBSCRIPTION_FIRINGS: TableDefinition<(&str, u64), &str> =
    TableDefinition::new(names::SUBSCRIPTION_FIRINGS);
/// Current subscriptions: `id -> Subscription` (codec JSON).
pub(crate) const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new(names::SUBSCRIPTIONS);
/// Every version ever stored: `(id, version) -> Subscription` (codec JSON).
pub(crate) const SUBSCRIPTION_VERSIONS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new(names::SUBSCRIPTION_VERSIONS);
/// Partial joins: `(subscription, version, join key, alias, seq)` -> document:
/// the offered instance's name and receive time. A row is an instance that
/// matched its side of a join and has not been consumed yet.
pub(crate) const JOIN_OFFERS: TableDefinition<(&str, u64, &str, &str, u64), &[u8]> =
    TableDefinition::new(names::JOIN_OFFERS);
/// Waits: id -> document: `WaitRecord` (the wait, its deadline and its state).
pub(crate) const WAITS: TableDefinition<&str, &[u8]> = TableDefinition::new(names::WAITS);
/// Lineage: which waits a signal instance satisfied.
pub(crate) const SIGNAL_WAITS: MultimapTableDefinition<(&str, u64), &str> =
    MultimapTableDefinition::new(names::SIGNAL_WAITS);
/// Lineage: partial joins dropped when a subscription changed version:
/// `(subscription, new version)` -> document: the dropped offers.
pub(crate) const JOIN_DROPS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new(names::JOIN_DROPS);
/// Lineage: which subscriptions a signal instance matched (fired or not).
pub(crate) const SIGNAL_MATCHES: MultimapTableDefinition<(&str, u64), &str> =
    MultimapTableDefinition::new(names::SIGNAL_MATCHES);

use redb::{
    Key, MultimapTable, ReadOnlyMultimapTable, ReadOnlyTable, ReadTransaction, Table, Value,
    WriteTransaction,
};

use crate::error::{ReadError, TableFailure};

/// Opens `def` for writing, mapping the error to the family `E`.
pub(crate) fn write<'t, E: TableFailure, K: Key + 'static, V: Value + 'static>(
    txn: &'t WriteTransaction,
    def: TableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<Table<'t, K, V>, E> {
    txn.open_table(def).map_err(|e| E::table(name, e))
}

/// Opens the multimap `def` for writing, mapping the error to the family `E`.
pub(crate) fn write_multimap<'t, E: TableFailure, K: Key + 'static, V: Key + 'static>(
    txn: &'t WriteTransaction,
    def: MultimapTableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<MultimapTable<'t, K, V>, E> {
    txn.open_multimap_table(def).map_err(|e| E::table(name, e))
}

/// Opens `def` for reading.
pub(crate) fn read<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<ReadOnlyTable<K, V>, ReadError> {
    txn.open_table(def).map_err(|e| ReadError::table(name, e))
}

/// Opens the multimap `def` for reading.
pub(crate) fn read_multimap<K: Key + 'static, V: Key + 'static>(
    txn: &ReadTransaction,
    def: MultimapTableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<ReadOnlyMultimapTable<K, V>, ReadError> {
    txn.open_multimap_table(def)
        .map_err(|e| ReadError::table(name, e))
}
/// Deployed plugins: `name -> PluginRecord` (codec JSON): the world, every
/// version deployed (hash, settings, description, time) and the active one.
pub(crate) const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new(names::PLUGINS);
/// Component bytes by content: `sha256 hex -> bytes`.
pub(crate) const PLUGIN_BLOBS: TableDefinition<&str, &[u8]> =
    TableDefinition::new(names::PLUGIN_BLOBS);
