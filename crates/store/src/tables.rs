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
//!   `firing_seq`. A firing is pending iff its outbox row exists: marking it
//!   delivered removes the outbox row and writes `delivered[firing_seq] =
//!   at_ms`, leaving its `firings` row as written (stored state `Pending`);
//!   readers take the state from the three tables (`outbox::resolve`).
//! - `meta["firing_seq"]` is the largest firing seq ever assigned.
//! - `join_offers` rows exist only for the current version of a subscription; a
//!   new version or a delete removes the old version's rows in its transaction.
//!
//! - every hash named by a `plugins` version has its `plugin_blobs` row, and a
//!   blob no version names is removed in the transaction that orphaned it.
//!
//! All tables are created when the store is opened, so readers never meet a
//! missing table.
//!
//! Every table also has a **table id** ([`ids`]): a small number, stable for
//! the life of the format, that names the table in a changelog entry
//! (`change_set`). An id is never reused, not even for a dropped table; the
//! list is in `docs/STORAGE.md` ("Changelog"). Writes go through
//! `capture::write` / `capture::write_multimap`, whose handles record each
//! change; no module gets at a raw redb write table any other way.

use redb::{
    Key, MultimapTableDefinition, ReadOnlyMultimapTable, ReadOnlyTable, ReadTransaction,
    ReadableTable, TableDefinition, Value,
};

use crate::error::{AtTable, ReadError, TableFailure};

/// The schema version this build reads and writes (`meta["schema_version"]`).
pub const SCHEMA_VERSION: u64 = 3;

/// `meta` key: the schema version.
pub(crate) const META_SCHEMA_VERSION: &str = "schema_version";
/// `meta` key: the last firing seq assigned (outbox order).
pub(crate) const META_FIRING_SEQ: &str = "firing_seq";
/// `meta` key: the changelog position of the last transaction committed
/// through a sink or applied by replay (never recorded itself).
pub(crate) const META_CHANGELOG_SEQ: &str = "changelog_seq";
/// `meta` key: the input position of the last ingested batch that named one.
pub(crate) const META_INPUT_SEQ: &str = "input_seq";

/// Table names, used in error messages.
pub(crate) mod names {
    pub(crate) const META: &str = "meta";
    pub(crate) const SIGNAL_SEQ: &str = "signal_seq";
    pub(crate) const SIGNALS: &str = "signals";
    pub(crate) const SIGNAL_IDS: &str = "signal_ids";
    pub(crate) const FIRINGS: &str = "firings";
    pub(crate) const OUTBOX: &str = "outbox";
    pub(crate) const SIGNAL_FIRINGS: &str = "signal_firing_links";
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
    pub(crate) const DELIVERED: &str = "delivered";
    /// The multimap of schema 2 that `signal_firing_links` replaced (its
    /// changelog entries are still replayed: `replay`).
    pub(crate) const LEGACY_SIGNAL_FIRINGS: &str = "signal_firings";
}

/// Table ids of the changelog: stable, never reused (0 is never an id).
pub(crate) mod ids {
    pub(crate) const META: u8 = 1;
    pub(crate) const SIGNAL_SEQ: u8 = 2;
    pub(crate) const SIGNALS: u8 = 3;
    pub(crate) const SIGNAL_IDS: u8 = 4;
    pub(crate) const FIRINGS: u8 = 5;
    pub(crate) const OUTBOX: u8 = 6;
    /// `signal_firings`, a multimap until schema 2: retired, never reused;
    /// replay still applies old entries' changes to it as changes to
    /// `signal_firing_links`.
    pub(crate) const LEGACY_SIGNAL_FIRINGS: u8 = 7;
    pub(crate) const SIGNAL_FIRINGS: u8 = 19;
    pub(crate) const SUBSCRIPTION_FIRINGS: u8 = 8;
    pub(crate) const SUBSCRIPTIONS: u8 = 9;
    pub(crate) const SUBSCRIPTION_VERSIONS: u8 = 10;
    pub(crate) const JOIN_OFFERS: u8 = 11;
    pub(crate) const WAITS: u8 = 12;
    pub(crate) const SIGNAL_WAITS: u8 = 13;
    pub(crate) const SIGNAL_MATCHES: u8 = 14;
    pub(crate) const JOIN_DROPS: u8 = 15;
    pub(crate) const PLUGINS: u8 = 16;
    pub(crate) const PLUGIN_BLOBS: u8 = 17;
    pub(crate) const DELIVERED: u8 = 18;
}

/// Whether a table holds one value per key or a set of values per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A plain table.
    Table,
    /// A multimap table.
    Multimap,
}

/// Every table: `(id, name, kind)`, in id order.
pub(crate) const ALL: [(u8, &str, Kind); 18] = [
    (ids::META, names::META, Kind::Table),
    (ids::SIGNAL_SEQ, names::SIGNAL_SEQ, Kind::Table),
    (ids::SIGNALS, names::SIGNALS, Kind::Table),
    (ids::SIGNAL_IDS, names::SIGNAL_IDS, Kind::Table),
    (ids::FIRINGS, names::FIRINGS, Kind::Table),
    (ids::OUTBOX, names::OUTBOX, Kind::Table),
    (
        ids::SUBSCRIPTION_FIRINGS,
        names::SUBSCRIPTION_FIRINGS,
        Kind::Table,
    ),
    (ids::SUBSCRIPTIONS, names::SUBSCRIPTIONS, Kind::Table),
    (
        ids::SUBSCRIPTION_VERSIONS,
        names::SUBSCRIPTION_VERSIONS,
        Kind::Table,
    ),
    (ids::JOIN_OFFERS, names::JOIN_OFFERS, Kind::Table),
    (ids::WAITS, names::WAITS, Kind::Table),
    (ids::SIGNAL_WAITS, names::SIGNAL_WAITS, Kind::Multimap),
    (ids::SIGNAL_MATCHES, names::SIGNAL_MATCHES, Kind::Multimap),
    (ids::JOIN_DROPS, names::JOIN_DROPS, Kind::Table),
    (ids::PLUGINS, names::PLUGINS, Kind::Table),
    (ids::PLUGIN_BLOBS, names::PLUGIN_BLOBS, Kind::Table),
    (ids::DELIVERED, names::DELIVERED, Kind::Table),
    (ids::SIGNAL_FIRINGS, names::SIGNAL_FIRINGS, Kind::Table),
];

/// The name of the table with this id, if there is one.
pub(crate) fn name_of(id: u8) -> Option<&'static str> {
    ALL.iter()
        .find(|(i, _, _)| *i == id)
        .map(|(_, name, _)| *name)
}

/// A plain table: its redb definition, its name and its changelog id.
pub(crate) struct Def<K: Key + 'static, V: Value + 'static> {
    /// redb's definition (name, key and value types).
    pub(crate) def: TableDefinition<'static, K, V>,
    /// The name, for error messages.
    pub(crate) name: &'static str,
    /// The changelog id.
    pub(crate) id: u8,
}

impl<K: Key + 'static, V: Value + 'static> Def<K, V> {
    const fn new(name: &'static str, id: u8) -> Self {
        Def {
            def: TableDefinition::new(name),
            name,
            id,
        }
    }
}

// Manual impls: derived ones would require `K: Copy`.
impl<K: Key + 'static, V: Value + 'static> Clone for Def<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Key + 'static, V: Value + 'static> Copy for Def<K, V> {}

/// A multimap table: its redb definition, its name and its changelog id.
pub(crate) struct MultiDef<K: Key + 'static, V: Key + 'static> {
    /// redb's definition.
    pub(crate) def: MultimapTableDefinition<'static, K, V>,
    /// The name, for error messages.
    pub(crate) name: &'static str,
    /// The changelog id.
    pub(crate) id: u8,
}

impl<K: Key + 'static, V: Key + 'static> MultiDef<K, V> {
    const fn new(name: &'static str, id: u8) -> Self {
        MultiDef {
            def: MultimapTableDefinition::new(name),
            name,
            id,
        }
    }
}

impl<K: Key + 'static, V: Key + 'static> Clone for MultiDef<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Key + 'static, V: Key + 'static> Copy for MultiDef<K, V> {}

/// Store-wide counters and the schema version: `&str -> u64`.
pub(crate) const META: Def<&str, u64> = Def::new(names::META, ids::META);
/// Last seq per signal name: `name -> seq`.
pub(crate) const SIGNAL_SEQ: Def<&str, u64> = Def::new(names::SIGNAL_SEQ, ids::SIGNAL_SEQ);
/// Signal instances: `(name, seq) -> SignalInstance` (codec JSON).
pub(crate) const SIGNALS: Def<(&str, u64), &[u8]> = Def::new(names::SIGNALS, ids::SIGNALS);
/// Lookup by producer id and the dedup window: `(name, id) -> (seq,
/// received_at_ms)` of the latest instance with that id.
pub(crate) const SIGNAL_IDS: Def<(&str, &str), (u64, i64)> =
    Def::new(names::SIGNAL_IDS, ids::SIGNAL_IDS);
/// Firings: `firing_id -> FiringRecord` (codec JSON).
pub(crate) const FIRINGS: Def<&str, &[u8]> = Def::new(names::FIRINGS, ids::FIRINGS);
/// Undelivered firings in creation order: `firing_seq -> firing_id`.
pub(crate) const OUTBOX: Def<u64, &str> = Def::new(names::OUTBOX, ids::OUTBOX);
/// Delivered firings (schema 3 on): `firing_seq -> at_ms`, written when the
/// outbox row is removed on delivery; the `firings` row is not rewritten.
pub(crate) const DELIVERED: Def<u64, i64> = Def::new(names::DELIVERED, ids::DELIVERED);
/// Lineage, signal side: `(name, seq, firing_id) -> ()`, one row per link (a
/// plain table: a redb multimap insert costs a lookup and a rewrite of the
/// key's value set, about 2.5 plain inserts).
pub(crate) const SIGNAL_FIRINGS: Def<(&str, u64, &str), ()> =
    Def::new(names::SIGNAL_FIRINGS, ids::SIGNAL_FIRINGS);
/// Lineage, subscription side: `(subscription, firing_seq) -> firing_id`.
pub(crate) const SUBSCRIPTION_FIRINGS: Def<(&str, u64), &str> =
    Def::new(names::SUBSCRIPTION_FIRINGS, ids::SUBSCRIPTION_FIRINGS);
/// Current subscriptions: `id -> Subscription` (codec JSON).
pub(crate) const SUBSCRIPTIONS: Def<&str, &[u8]> =
    Def::new(names::SUBSCRIPTIONS, ids::SUBSCRIPTIONS);
/// Every version ever stored: `(id, version) -> Subscription` (codec JSON).
pub(crate) const SUBSCRIPTION_VERSIONS: Def<(&str, u64), &[u8]> =
    Def::new(names::SUBSCRIPTION_VERSIONS, ids::SUBSCRIPTION_VERSIONS);
/// Partial joins: `(subscription, version, join key, alias, seq)` -> document:
/// the offered instance's name and receive time. A row is an instance that
/// matched its side of a join and has not been consumed yet.
pub(crate) const JOIN_OFFERS: Def<(&str, u64, &str, &str, u64), &[u8]> =
    Def::new(names::JOIN_OFFERS, ids::JOIN_OFFERS);
/// Waits: id -> document: `WaitRecord` (the wait, its deadline and its state).
pub(crate) const WAITS: Def<&str, &[u8]> = Def::new(names::WAITS, ids::WAITS);
/// Lineage: which waits a signal instance satisfied.
pub(crate) const SIGNAL_WAITS: MultiDef<(&str, u64), &str> =
    MultiDef::new(names::SIGNAL_WAITS, ids::SIGNAL_WAITS);
/// Lineage: partial joins dropped when a subscription changed version:
/// `(subscription, new version)` -> document: the dropped offers.
pub(crate) const JOIN_DROPS: Def<(&str, u64), &[u8]> = Def::new(names::JOIN_DROPS, ids::JOIN_DROPS);
/// Lineage: which subscriptions a signal instance matched (fired or not).
pub(crate) const SIGNAL_MATCHES: MultiDef<(&str, u64), &str> =
    MultiDef::new(names::SIGNAL_MATCHES, ids::SIGNAL_MATCHES);
/// Deployed plugins: `name -> PluginRecord` (codec JSON): the world, every
/// version deployed (hash, settings, description, time) and the active one.
pub(crate) const PLUGINS: Def<&str, &[u8]> = Def::new(names::PLUGINS, ids::PLUGINS);
/// Component bytes by content: `sha256 hex -> bytes`.
pub(crate) const PLUGIN_BLOBS: Def<&str, &[u8]> = Def::new(names::PLUGIN_BLOBS, ids::PLUGIN_BLOBS);

/// Calls `$table($args.., tables::X)` or `$multimap($args.., tables::X)` for
/// the table whose id is `$id`, or evaluates `$unknown`: the one place that
/// maps an id to a typed table (replay and its tests use it).
macro_rules! with_table {
    ($id:expr, $table:ident, $multimap:ident, ($($arg:expr),* $(,)?), $unknown:expr) => {{
        use $crate::tables as t;
        match $id {
            t::ids::META => $table($($arg,)* t::META),
            t::ids::SIGNAL_SEQ => $table($($arg,)* t::SIGNAL_SEQ),
            t::ids::SIGNALS => $table($($arg,)* t::SIGNALS),
            t::ids::SIGNAL_IDS => $table($($arg,)* t::SIGNAL_IDS),
            t::ids::FIRINGS => $table($($arg,)* t::FIRINGS),
            t::ids::OUTBOX => $table($($arg,)* t::OUTBOX),
            t::ids::SIGNAL_FIRINGS => $table($($arg,)* t::SIGNAL_FIRINGS),
            t::ids::SUBSCRIPTION_FIRINGS => $table($($arg,)* t::SUBSCRIPTION_FIRINGS),
            t::ids::SUBSCRIPTIONS => $table($($arg,)* t::SUBSCRIPTIONS),
            t::ids::SUBSCRIPTION_VERSIONS => $table($($arg,)* t::SUBSCRIPTION_VERSIONS),
            t::ids::JOIN_OFFERS => $table($($arg,)* t::JOIN_OFFERS),
            t::ids::WAITS => $table($($arg,)* t::WAITS),
            t::ids::SIGNAL_WAITS => $multimap($($arg,)* t::SIGNAL_WAITS),
            t::ids::SIGNAL_MATCHES => $multimap($($arg,)* t::SIGNAL_MATCHES),
            t::ids::JOIN_DROPS => $table($($arg,)* t::JOIN_DROPS),
            t::ids::PLUGINS => $table($($arg,)* t::PLUGINS),
            t::ids::PLUGIN_BLOBS => $table($($arg,)* t::PLUGIN_BLOBS),
            t::ids::DELIVERED => $table($($arg,)* t::DELIVERED),
            _ => $unknown,
        }
    }};
}
pub(crate) use with_table;

/// Opens `def` for reading.
pub(crate) fn read<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    def: Def<K, V>,
) -> Result<ReadOnlyTable<K, V>, ReadError> {
    txn.open_table(def.def)
        .map_err(|e| ReadError::table(def.name, e))
}

/// Opens the multimap `def` for reading.
pub(crate) fn read_multimap<K: Key + 'static, V: Key + 'static>(
    txn: &ReadTransaction,
    def: MultiDef<K, V>,
) -> Result<ReadOnlyMultimapTable<K, V>, ReadError> {
    txn.open_multimap_table(def.def)
        .map_err(|e| ReadError::table(def.name, e))
}

/// The firing ids that `signal_firing_links` holds for instance `(name,
/// seq)`, in key order: the rows `(name, seq, *)`, which start at `(name,
/// seq, "")` (tuples compare element by element).
pub(crate) fn linked_firings<E: TableFailure>(
    links: &impl ReadableTable<(&'static str, u64, &'static str), ()>,
    name: &str,
    seq: u64,
) -> Result<Vec<String>, E> {
    let mut out = Vec::new();
    for row in links
        .range((name, seq, "")..)
        .at::<E>(names::SIGNAL_FIRINGS)?
    {
        let (k, _) = row.at::<E>(names::SIGNAL_FIRINGS)?;
        let (n, s, fid) = k.value();
        if (n, s) != (name, seq) {
            break;
        }
        out.push(fid.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ids_are_unique_nonzero_and_name_each_table_once() {
        let mut seen_ids = std::collections::BTreeSet::new();
        let mut seen_names = std::collections::BTreeSet::new();
        for (id, name, _) in ALL {
            assert_ne!(id, 0, "{name}");
            assert!(seen_ids.insert(id), "id {id} used twice");
            assert!(seen_names.insert(name), "table {name} listed twice");
            assert_eq!(name_of(id), Some(name));
        }
        assert_eq!(name_of(0), None);
        assert_eq!(name_of(200), None);
    }
}
