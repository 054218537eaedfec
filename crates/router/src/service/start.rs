//! The steps of [`crate::Router::start`], one function each, in the order it
//! calls them. Each step either succeeds or returns the [`StartError`] that
//! names what is wrong; nothing is spawned before every fallible step passed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use signalbox_matcher::OperatorRegistry;
use signalbox_model::Subscription;
use signalbox_store::{Store, StoreOptions};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::error::StartError;
use crate::config::RouterConfig;
use crate::group::Group;
use crate::group::front::FrontDoor;
use crate::group::lease::Leases;
use crate::group::names::GroupNames;
use crate::metrics::{GaugeRow, Gauges, Metrics};
use crate::nats::connect::{NatsEvents, Persistence, connect, round_trip};
use crate::nats::peers;
use crate::pipeline::catalog::Catalog;
use crate::pipeline::catalog::remote::GroupRoute;
use crate::pipeline::partition::{Partition, Partitions};
use crate::plugins::LivePlugins;
use crate::shared::Shared;
use crate::sources::kafka::KafkaMetrics;
use crate::sources::nats::Ingest;

/// A store transaction takes the batches queued behind the first one up to
/// this many times `batch_size` signals (see `crate::pipeline::committer`).
const COMMIT_MERGE_BATCHES: usize = 4;

/// Creates the data directory and opens the redb file.
pub(super) fn open_store(config: &RouterConfig) -> Result<Arc<Store>, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let path = config.store_path();
    let store = Store::open(
        &path,
        StoreOptions {
            dedup_retention: config.dedup_retention,
            ..StoreOptions::default()
        },
    )
    .map_err(|source| StartError::Store { path, source })?;
    Ok(Arc::new(store))
}

/// The catalog with every stored subscription that still compiles.
pub(super) fn load_catalog(
    store: &Store,
    operators: OperatorRegistry,
    config: &RouterConfig,
) -> Result<Catalog, StartError> {
    let catalog = Catalog::new(operators, &config.wait_prefix);
    // In a group the subscriptions come from the group's bucket (see
    // `watch_subscriptions`), not from this router's store.
    if config.cluster.is_some() {
        return Ok(catalog);
    }
    let subs = store
        .subscriptions()
        .map_err(|e| StartError::Subscriptions(e.to_string()))?;
    for sub in subs {
        match catalog.compile(&sub) {
            Ok(c) => catalog.insert(c),
            // A stored subscription that no longer compiles (e.g. an operator was
            // removed) is reported, not fatal: the others keep working.
            Err(e) => {
                tracing::error!(subscription = %sub.id, error = %e, "stored subscription does not compile; skipped")
            }
        }
    }
    Ok(catalog)
}

/// Connects to NATS, waiting up to 5 s for a reachable server (an unreachable
/// one is retried in the background), and counts the connection's events.
pub(super) async fn connect_nats(
    config: &RouterConfig,
) -> Result<(async_nats::Client, Arc<NatsEvents>), StartError> {
    let events = Arc::new(NatsEvents::default());
    let client = connect(&config.nats, Persistence::Service, Some(events.clone())).await?;
    // With retry-on-initial-connect the client returns before it is connected;
    // wait a little so that a reachable server has our subscriptions when
    // `start` returns.
    let connected_by = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.connection_state() != async_nats::connection::State::Connected
        && tokio::time::Instant::now() < connected_by
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((client, events))
}

/// Joins the group of `[cluster]` (checks, then streams and buckets); `None`
/// for a router alone.
pub(super) async fn join_group(
    config: &RouterConfig,
    client: &async_nats::Client,
) -> Result<Option<Arc<Group>>, StartError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let joined = crate::group::setup::join(client, config, cluster).await?;
    let member = cluster.member.clone().unwrap_or_else(|| {
        format!(
            "router-{}",
            &uuid::Uuid::now_v7().simple().to_string()[..12]
        )
    });
    let names = GroupNames::new(&cluster.group);
    let js = async_nats::jetstream::new(client.clone());
    let leases = Leases::new(
        js.clone(),
        joined.leases.clone(),
        names.clone(),
        &member,
        cluster.lease_ttl,
    );
    let front = FrontDoor::new(
        client.clone(),
        names.clone(),
        &config.subject_prefix,
        joined.record.partitions,
        &member,
    );
    tracing::info!(group = %cluster.group, %member, partitions = joined.record.partitions, "joined the group");
    Ok(Some(Arc::new(Group {
        config: cluster.clone(),
        member,
        names,
        joined,
        js,
        leases,
        front,
    })))
}

/// Refuses to start next to routers that would split the truth
/// (`crate::nats::peers`): alone beside another router on the same
/// subjects, or in a group beside a router alone or of another group.
pub(super) async fn check_peers(
    config: &RouterConfig,
    client: &async_nats::Client,
) -> Result<(), StartError> {
    if client.connection_state() != async_nats::connection::State::Connected {
        return Ok(());
    }
    let mine = peers::metadata(
        config.cluster.as_ref().map(|c| c.group.as_str()),
        &config.subject_prefix,
        &config.queue_group,
    );
    for peer in peers::gather(client, "", Duration::from_millis(300)).await {
        if let Some(why) = peers::conflict(&mine, &peer) {
            return Err(StartError::Peers(why));
        }
    }
    Ok(())
}

/// The state every task shares. Alone, partition 0 (the router's store and
/// its commit thread) is started now; in a group, partitions come and go
/// with ownership.
pub(super) fn shared_state(
    config: RouterConfig,
    store: Arc<Store>,
    catalog: Catalog,
    client: async_nats::Client,
    plugins: LivePlugins,
    group: Option<Arc<Group>>,
) -> Result<Arc<Shared>, StartError> {
    if let Some(g) = &group {
        catalog.set_group_route(GroupRoute {
            in_prefix: g.names.in_prefix(),
            partitions: g.partitions(),
            subject_prefix: config.subject_prefix.clone(),
        });
    }
    let catalog = Arc::new(catalog);
    let partitions = Arc::new(Partitions::default());
    if group.is_none() {
        let home = Partition::start(
            0,
            store.clone(),
            catalog.clone(),
            config.batch_size.saturating_mul(COMMIT_MERGE_BATCHES),
        )
        .map_err(StartError::CommitThread)?;
        partitions.insert(Arc::new(home));
    }
    let metrics = Metrics::new();
    metrics.set_plugins(plugins.metered());
    Ok(Arc::new(Shared {
        config,
        store,
        catalog,
        client,
        metrics,
        plugins,
        partitions,
        group,
    }))
}

/// Registers what other rooms report in `/metrics`: every transport's row,
/// the NATS connection's events, and the store and catalog gauges read at
/// scrape time.
pub(super) fn register_metrics(shared: &Arc<Shared>, nats_events: Arc<NatsEvents>) {
    let metrics = &shared.metrics;
    for transport in crate::sources::TRANSPORTS {
        metrics.declare_transport(transport);
    }
    metrics.register_collector(Box::new(nats_events));
    // The collector holds the partitions and the catalog, not `Shared`:
    // the metrics live in `Shared`, and a collector holding it would keep it
    // (and the redb files) alive forever.
    let (partitions, catalog) = (shared.partitions.clone(), shared.catalog.clone());
    metrics.register_collector(Box::new(Gauges::new(move || {
        store_gauges(&partitions, &catalog)
    })));
}

/// The store and catalog gauges, read now: the sum over the partitions
/// worked here (the oldest pending firing of any of them).
fn store_gauges(partitions: &Partitions, catalog: &Catalog) -> Vec<GaugeRow> {
    let mut rows = vec![GaugeRow::plain(
        "signalbox_subscriptions",
        "Live subscriptions.",
        catalog.len() as f64,
    )];
    let mut st = signalbox_store::StoreStats::default();
    for p in partitions.all() {
        let Ok(one) = p.store.stats() else {
            continue;
        };
        st.pending += one.pending;
        st.signals += one.signals;
        st.firings += one.firings;
        st.signal_ids += one.signal_ids;
        st.file_bytes += one.file_bytes;
        st.join_offers += one.join_offers;
        st.oldest_pending_ms = match (st.oldest_pending_ms, one.oldest_pending_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let oldest_age_ms = st
        .oldest_pending_ms
        .map_or(0, |t| (crate::clock::now_ms() - t).max(0));
    rows.extend([
        GaugeRow::plain("signalbox_outbox_pending", "Firings waiting in the outbox.", st.pending as f64),
        GaugeRow::plain("signalbox_store_signals", "Stored signal instances.", st.signals as f64),
        GaugeRow::plain("signalbox_store_firings", "Stored firings.", st.firings as f64),
        GaugeRow::plain(
            "signalbox_store_signal_ids",
            "Stored (name, id) rows: dedup entries, live or expired, kept until their instance's history is compacted.",
            st.signal_ids as f64,
        ),
        GaugeRow::plain("signalbox_store_file_bytes", "Size of the redb file.", st.file_bytes as f64),
        GaugeRow::plain(
            "signalbox_outbox_oldest_age_seconds",
            "Age of the oldest firing still in the outbox (0 when empty).",
            oldest_age_ms as f64 / 1000.0,
        ),
        GaugeRow::plain(
            "signalbox_join_offers",
            "Signals held in join state, waiting for their join partners.",
            st.join_offers as f64,
        ),
    ]);
    rows
}

/// Makes the stored waits live again and stores the subscription files
/// through the same path as `sub.add`; how many waits are waiting.
pub(super) async fn load_waits_and_files(
    shared: &Arc<Shared>,
    file_subs: Vec<(PathBuf, Subscription)>,
) -> Result<usize, StartError> {
    let waiting = match &shared.group {
        None => crate::pipeline::waits::load_waiting(&shared.store, &shared.catalog)
            .map_err(StartError::Subscriptions)?,
        Some(group) => {
            // The group's subscriptions, before any partition is worked.
            let subs = crate::group::subs::list(&group.joined.subs)
                .await
                .map_err(StartError::Subscriptions)?;
            for sub in subs {
                match shared.catalog.compile(&sub) {
                    Ok(c) => shared.catalog.insert(c),
                    Err(e) => {
                        tracing::error!(subscription = %sub.id, error = %e, "group subscription does not compile here; skipped")
                    }
                }
            }
            0
        }
    };
    for (path, sub) in file_subs {
        crate::api::admin::add_subscription(shared, sub)
            .await
            .map_err(|e| StartError::SubscriptionFile {
                path,
                message: e.error.message,
            })?;
    }
    Ok(waiting)
}

/// Binds the HTTP listener when configured (its TLS files loaded): a local
/// step that can fail, so it runs before the router connects to NATS and
/// announces itself.
pub(super) async fn bind_http(
    config: &RouterConfig,
) -> Result<Option<crate::api::http::Listening>, StartError> {
    match &config.http.listen {
        Some(addr) => Ok(Some(crate::api::http::bind(&config.http, addr).await?)),
        None => Ok(None),
    }
}

/// What [`subscribe`] set up, for [`spawn_tasks`].
pub(super) struct Subscribed {
    ingest: Ingest,
    admin: crate::api::nats_service::Started,
    waits: async_nats::Subscriber,
}

/// Subscribes the ingest, the admin service and wait registrations, then
/// makes sure the server has the subscriptions (bounded: with NATS down, the
/// client subscribes when it reconnects).
pub(super) async fn subscribe(shared: &Arc<Shared>) -> Result<Subscribed, StartError> {
    let ingest = Ingest::start(shared).await?;
    let admin = crate::api::nats_service::start(shared)
        .await
        .map_err(|message| StartError::Subscribe {
            subject: format!("{}.>", shared.config.admin_prefix),
            message,
        })?;
    let waits = shared
        .client
        .queue_subscribe(
            shared.config.wait_subject.clone(),
            shared.config.queue_group.clone(),
        )
        .await
        .map_err(|e| StartError::Subscribe {
            subject: shared.config.wait_subject.clone(),
            message: e.to_string(),
        })?;
    if let Err(e) = round_trip(&shared.client, Duration::from_secs(2)).await {
        tracing::warn!(error = %e, "NATS round trip after subscribing failed");
    }
    Ok(Subscribed {
        ingest,
        admin,
        waits,
    })
}

/// Spawns every task: ingest, outbox, Kafka sources, admin, retention, wait
/// registrations and timeouts, and the HTTP listener when configured.
pub(super) async fn spawn_tasks(
    shared: &Arc<Shared>,
    subscribed: Subscribed,
    http: Option<crate::api::http::Listening>,
    rx: watch::Receiver<bool>,
) -> Result<(JoinSet<()>, Option<std::net::SocketAddr>), StartError> {
    let Subscribed {
        ingest,
        admin,
        waits,
    } = subscribed;
    let mut tasks = JoinSet::new();
    tasks.spawn(ingest.run(shared.clone(), rx.clone()));
    if let Some(home) = shared.home() {
        tasks.spawn(crate::delivery::outbox::run(
            shared.clone(),
            home,
            rx.clone(),
        ));
    }
    let kafka = KafkaMetrics::register(&shared.metrics);
    for source in shared.config.sources.kafka.clone() {
        tasks.spawn(crate::sources::kafka::run(
            shared.clone(),
            kafka.clone(),
            source,
            rx.clone(),
        ));
    }
    tasks.spawn(crate::api::nats_service::run(
        shared.clone(),
        admin,
        rx.clone(),
    ));
    tasks.spawn(super::retention::run(shared.clone(), rx.clone()));
    tasks.spawn(crate::api::waits::serve(shared.clone(), waits, rx.clone()));
    let http_addr = match http {
        Some(bound) => {
            let local = bound.local();
            let routes = crate::sources::http_routes(shared)?;
            let task = crate::api::http::serve(shared.clone(), bound, routes, rx.clone());
            tasks.spawn(async move {
                let _ = task.await;
            });
            Some(local)
        }
        None => None,
    };
    if let Some(group) = shared.group.clone() {
        tasks.spawn(super::subscriptions::watch(
            shared.clone(),
            group.clone(),
            rx.clone(),
        ));
        tasks.spawn(crate::api::plugin_group::watch(
            shared.clone(),
            group.clone(),
            rx.clone(),
        ));
        tasks.spawn(crate::api::group_query::serve(
            shared.clone(),
            group.clone(),
            rx.clone(),
        ));
        let http = http_addr.map(|a| a.to_string());
        tasks.spawn(crate::ownership::run(
            shared.clone(),
            group,
            http,
            rx.clone(),
        ));
    }
    tasks.spawn(crate::api::waits::run_timeouts(shared.clone(), rx));
    Ok((tasks, http_addr))
}
