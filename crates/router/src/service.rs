//! Starting and stopping the router: open the store, load subscriptions, connect
//! to NATS, and run the ingest, outbox, admin and retention tasks.
//!
//! Start order: store → catalog (from the store, then from subscription files) →
//! NATS (retrying in the background if the server is down) → subscriptions →
//! tasks. Shutdown order: stop taking new messages (unsubscribe), finish the
//! batches already received, drain the outbox once, flush the client. Nothing
//! that was acknowledged is lost by a shutdown; firings still in the outbox at
//! exit go out on the next start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use signalbox_matcher::OperatorRegistry;
use signalbox_model::Subscription;
use signalbox_store::{Store, StoreOptions};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::catalog::Catalog;
use crate::config::{IngestMode, RouterConfig};
use crate::connect::{ConnectError, Persistence, connect};
use crate::shared::Shared;

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open store {path}: {source}")]
    Store {
        /// The redb file.
        path: PathBuf,
        /// The store's error.
        source: signalbox_store::OpenError,
    },
    /// A stored subscription could not be read.
    #[error("cannot read stored subscriptions: {0}")]
    Subscriptions(String),
    /// A subscription file is invalid.
    #[error("subscription file {path}: {message}")]
    SubscriptionFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginLoadError),
    /// The HTTP listener could not start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The JetStream stream or consumer could not be set up.
    #[error(transparent)]
    JetStream(#[from] crate::jetstream_ingest::JetStreamSetupError),
    /// NATS settings are unusable.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A NATS subscription could not be made.
    #[error("cannot subscribe to {subject}: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client's error.
        message: String,
    },
    /// The commit thread could not be started.
    #[error("cannot start the commit thread: {0}")]
    CommitThread(std::io::Error),
}

/// A store transaction takes the batches queued behind the first one up to
/// this many times `batch_size` signals (see [`crate::committer`]).
const COMMIT_MERGE_BATCHES: usize = 4;

/// How long a graceful shutdown may take before the remaining tasks are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The ingest source chosen by the configuration.
#[expect(
    clippy::large_enum_variant,
    reason = "built once at start-up and moved into its task"
)]
enum Ingest {
    Core(async_nats::Subscriber),
    JetStream(
        Option<
            async_nats::jetstream::consumer::Consumer<
                async_nats::jetstream::consumer::pull::Config,
            >,
        >,
    ),
}

/// A running router.
pub struct Router {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    http_addr: Option<std::net::SocketAddr>,
}

impl Router {
    /// Starts a router with this configuration and no custom operators.
    pub async fn start(config: RouterConfig) -> Result<Router, StartError> {
        Router::start_with(config, OperatorRegistry::default()).await
    }

    /// Starts a router with custom operators.
    pub async fn start_with(
        config: RouterConfig,
        operators: OperatorRegistry,
    ) -> Result<Router, StartError> {
        config.validate()?;
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
        .map_err(|source| StartError::Store {
            path: path.clone(),
            source,
        })?;
        let store = Arc::new(store);
        let mut operators = operators;
        let plugins = crate::plugins::load(&config, &store, &mut operators).await?;
        let catalog = Catalog::new(operators, &config.wait_prefix);
        load_stored(&store, &catalog)?;
        let file_subs = read_subscription_files(&config.subscriptions)?;
        let nats_events = Arc::new(crate::connect::NatsEvents::default());
        let client = connect(
            &config.nats,
            Persistence::Service,
            Some(nats_events.clone()),
        )
        .await?;
        // With retry-on-initial-connect the client returns before it is connected;
        // wait a little so that a reachable server has our subscriptions when
        // `start` returns. An unreachable one is retried in the background.
        let connected_by = tokio::time::Instant::now() + Duration::from_secs(5);
        while client.connection_state() != async_nats::connection::State::Connected
            && tokio::time::Instant::now() < connected_by
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sns = crate::sns::SnsState::new(&config)?;
        let catalog = Arc::new(catalog);
        let handoff = Arc::new(crate::handoff::Handoff::default());
        let committer = crate::committer::Committer::start(
            store.clone(),
            catalog.clone(),
            handoff.clone(),
            config.batch_size.saturating_mul(COMMIT_MERGE_BATCHES),
        )
        .map_err(StartError::CommitThread)?;
        let shared = Arc::new(Shared {
            config,
            store,
            catalog,
            committer,
            client,
            outbox_wake: Notify::new(),
            handoff,
            metrics: crate::metrics::Metrics::with_plugins(plugins.metered())
                .counting_nats(nats_events),
            plugins,
            sns,
            kafka_lag: Default::default(),
        });
        let waiting = crate::waits::load_waiting(&shared).map_err(StartError::Subscriptions)?;
        for (path, sub) in file_subs {
            crate::admin::add_subscription(&shared, sub)
                .await
                .map_err(|e| StartError::SubscriptionFile {
                    path,
                    message: e.error.message,
                })?;
        }
        let signals_subject = format!("{}.>", shared.config.subject_prefix);
        let ingest = match shared.config.ingest {
            IngestMode::Core => Ingest::Core(
                shared
                    .client
                    .queue_subscribe(signals_subject.clone(), shared.config.queue_group.clone())
                    .await
                    .map_err(|e| StartError::Subscribe {
                        subject: signals_subject.clone(),
                        message: e.to_string(),
                    })?,
            ),
            IngestMode::Jetstream => {
                // A stream that exists with the wrong subjects is a configuration
                // error; a server that is not reachable yet is retried in the background.
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    crate::jetstream_ingest::setup(&shared),
                )
                .await
                {
                    Ok(Ok(consumer)) => Ingest::JetStream(Some(consumer)),
                    Ok(Err(e @ crate::jetstream_ingest::JetStreamSetupError::Subjects { .. })) => {
                        return Err(e.into());
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "JetStream ingest not ready; retrying in the background");
                        Ingest::JetStream(None)
                    }
                    Err(_) => {
                        tracing::warn!(
                            "JetStream ingest setup timed out; retrying in the background"
                        );
                        Ingest::JetStream(None)
                    }
                }
            }
        };
        let admin_subject = format!("{}.>", shared.config.admin_prefix);
        let (admin_service, admin_requests) =
            crate::service_api::start(&shared)
                .await
                .map_err(|message| StartError::Subscribe {
                    subject: admin_subject.clone(),
                    message,
                })?;
        let wait_sub = shared
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
        // Make sure the server has our subscriptions before we say we are started
        // (bounded: if NATS is down, the client subscribes when it reconnects).
        if let Err(e) = round_trip(&shared.client, Duration::from_secs(2)).await {
            tracing::warn!(error = %e, "NATS round trip after subscribing failed");
        }
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        match ingest {
            Ingest::Core(sub) => {
                tasks.spawn(run_ingest(shared.clone(), sub, rx.clone()));
            }
            Ingest::JetStream(consumer) => {
                tasks.spawn(crate::jetstream_ingest::run(
                    shared.clone(),
                    consumer,
                    rx.clone(),
                ));
            }
        }
        tasks.spawn(crate::outbox::run(shared.clone(), rx.clone()));
        for source in shared.config.sources.kafka.clone() {
            tasks.spawn(crate::kafka::run(shared.clone(), source, rx.clone()));
        }
        tasks.spawn(crate::service_api::run(
            shared.clone(),
            admin_service,
            admin_requests,
            rx.clone(),
        ));
        tasks.spawn(run_retention(shared.clone(), rx.clone()));
        tasks.spawn(serve_requests(
            shared.clone(),
            wait_sub,
            rx.clone(),
            |s, m| async move { crate::waits::handle_register(&s, m).await },
        ));
        let http_addr = match shared.config.http.listen.clone() {
            Some(addr) => {
                let (local, task) = crate::http::serve(shared.clone(), &addr, rx.clone()).await?;
                tasks.spawn(async move {
                    let _ = task.await;
                });
                Some(local)
            }
            None => None,
        };
        tasks.spawn(crate::waits::run_timeouts(shared.clone(), rx));
        tracing::info!(
            signals = %signals_subject,
            ingest = ?shared.config.ingest,
            admin = %admin_subject,
            store = %path.display(),
            subscriptions = shared.catalog.len(),
            waiting,
            "signalbox router started"
        );
        Ok(Router {
            shared,
            shutdown,
            tasks,
            http_addr,
        })
    }

    /// The router's NATS client (for tests and embedding).
    pub fn client(&self) -> async_nats::Client {
        self.shared.client.clone()
    }

    /// The store (for tests and embedding).
    pub fn store(&self) -> Arc<Store> {
        self.shared.store.clone()
    }

    /// Where the HTTP admin API listens, when it is on.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_addr
    }

    /// The live configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.shared.config
    }

    /// Stops taking messages, finishes in-flight work, drains the outbox, flushes.
    pub async fn shutdown(mut self) {
        tracing::info!("signalbox router shutting down");
        let _ = self.shutdown.send(true);
        // Bounded: with NATS gone, a last publish or flush could wait forever.
        // Work not finished by then is safe in the store and resumes on restart.
        let drain = async {
            while let Some(res) = self.tasks.join_next().await {
                if let Err(e) = res {
                    tracing::error!(error = %e, "router task failed");
                }
            }
            if let Err(e) = self.shared.client.flush().await {
                tracing::warn!(error = %e, "final flush failed");
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "shutdown grace period over; stopping with work left in the outbox (it resumes on restart)"
            );
            self.tasks.abort_all();
        }
        tracing::info!("signalbox router stopped");
    }
}

/// Sends a message to ourselves and waits for it: when it arrives, the server has
/// processed everything this connection sent before it (subscriptions included).
async fn round_trip(client: &async_nats::Client, timeout: Duration) -> Result<(), String> {
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, sub.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("subscription closed".into()),
        Err(_) => Err(format!("no echo within {timeout:?}")),
    }
}

fn load_stored(store: &Store, catalog: &Catalog) -> Result<(), StartError> {
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
    Ok(())
}

/// Reads subscription files: each path is a file or a directory of `*.yaml`,
/// `*.yml` and `*.json` files (read in name order).
pub fn read_subscription_files(
    paths: &[PathBuf],
) -> Result<Vec<(PathBuf, Subscription)>, StartError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| StartError::SubscriptionFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_subscription_file(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(&path).map_err(|e| StartError::SubscriptionFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let sub = Subscription::from_yaml(&text).map_err(|e| StartError::SubscriptionFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            Ok((path, sub))
        })
        .collect()
}

fn is_subscription_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

async fn run_ingest(
    shared: Arc<Shared>,
    mut sub: async_nats::Subscriber,
    mut shutdown: watch::Receiver<bool>,
) {
    let batch_size = shared.config.batch_size;
    let mut in_flight = crate::ingest::InFlight::new(shared.clone());
    loop {
        let first = tokio::select! {
            m = sub.next() => m,
            _ = shutdown.changed() => None,
        };
        let Some(first) = first else {
            break;
        };
        let mut batch = vec![crate::ingest::Inbound::Core(first)];
        while batch.len() < batch_size {
            match sub.next().now_or_never() {
                Some(Some(m)) => batch.push(crate::ingest::Inbound::Core(m)),
                _ => break,
            }
        }
        if let Some(pending) = crate::ingest::submit_batch(&shared, batch).await {
            in_flight.push(pending).await;
        }
    }
    in_flight.finish().await;
    // Stop new deliveries, then finish what the client already buffered.
    if let Err(e) = sub.unsubscribe().await {
        tracing::warn!(error = %e, "unsubscribe failed during shutdown");
    }
    let mut rest = Vec::new();
    while let Some(Some(m)) = sub.next().now_or_never() {
        rest.push(crate::ingest::Inbound::Core(m));
    }
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(batch_size));
        crate::ingest::process_batch(&shared, rest).await;
        rest = tail;
    }
}

/// Serves requests on `sub` one at a time with `handle` until shutdown.
async fn serve_requests<F, Fut>(
    shared: Arc<Shared>,
    mut sub: async_nats::Subscriber,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(Arc<Shared>, async_nats::Message) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = shutdown.changed() => None,
        };
        let Some(msg) = msg else {
            break;
        };
        handle(shared.clone(), msg).await;
    }
    let _ = sub.unsubscribe().await;
}

async fn run_retention(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(600);
    loop {
        // Dedup entries expire by their time alone and are deleted with their
        // instances (history retention, at least as long as the dedup one).
        let now = crate::clock::now_ms();
        let store = shared.store.clone();
        let keep = i64::try_from(shared.config.history_retention.as_millis()).unwrap_or(i64::MAX);
        match tokio::task::spawn_blocking(move || store.compact_history(now, keep)).await {
            Ok(Ok(c)) if c != signalbox_store::HistoryCompaction::default() => tracing::info!(
                signals = c.signals,
                firings = c.firings,
                waits = c.waits,
                offers = c.offers,
                "history past retention removed"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "history compaction failed"),
            Err(e) => tracing::warn!(error = %e, "history compaction task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
