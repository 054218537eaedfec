//! The command line: every verb, its flags, its environment variables and its
//! `--help` example. Environment variables are `SIGNALBOX_*`; a flag beats its
//! variable, which beats the config file, which beats the default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

/// signalbox: a signal router over NATS.
#[derive(Debug, Parser)]
#[command(name = "signalbox", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SIGNALBOX_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router against a NATS server.
    #[command(
        after_help = "Example:\n  signalbox serve --config signalbox.toml\n  SIGNALBOX_NATS_URL=nats://10.0.0.5:4222 signalbox serve --data-dir /var/lib/signalbox"
    )]
    Serve(ServeArgs),
    /// Run the embedded default: a local nats-server child, the example subscriptions, the router.
    #[command(
        after_help = "Example:\n  signalbox dev\n  signalbox dev --data-dir /tmp/sb --port 4333"
    )]
    Dev(DevArgs),
    /// Internal: the process that holds one Kafka source's consumer, started
    /// by the router with frames on its stdin and stdout; not for use by hand.
    /// (`--source` and `--group` only name the worker in `ps`; its settings
    /// come from the router over stdin.)
    #[command(name = "kafka-worker", hide = true)]
    KafkaWorker {
        /// The source it serves.
        #[arg(long)]
        source: Option<String>,
        /// The consumer group it joins.
        #[arg(long)]
        group: Option<String>,
    },
    /// Publish a signal and wait for its acknowledgement.
    #[command(
        after_help = "Example:\n  signalbox publish table_updated --id run-1 --param table=prod.events --param partition=20261126\n  signalbox publish --file signal.json"
    )]
    Publish(PublishArgs),
    /// Manage subscriptions (through a running router), or check subscription files locally.
    #[command(subcommand)]
    Sub(SubCommand),
    /// Inspect stored signals (through a running router).
    #[command(subcommand)]
    Signals(SignalsCommand),
    /// Show a firing and its delivery state.
    #[command(subcommand)]
    Firing(FiringCommand),
    /// A group of routers: members, partition owners, lag.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run stored signals through a subscription (backfill), exactly once, with a progress bar.
    #[command(
        after_help = "Example:\n  signalbox replay --sub big-tables --since 2026-11-01T00:00:00Z"
    )]
    Replay {
        /// Subscription id.
        #[arg(long)]
        sub: String,
        /// Only signals received at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only signals received before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Instances per page (one store transaction each).
        #[arg(long, default_value_t = 1000)]
        page: usize,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lineage: who produced a signal, what it fed, a subscription's firings, a graph export.
    #[command(subcommand)]
    Lineage(LineageCommand),
    /// Explain why a stored signal did or did not match a subscription.
    #[command(
        after_help = "Example:\n  signalbox explain --sub big-tables --signal table_updated:3"
    )]
    Explain(ExplainArgs),
    /// Wait for signals (a step dependency): blocks until satisfied (exit 0), timed out (3) or cancelled (4).
    #[command(
        after_help = "Example:\n  signalbox wait --id etl/8812/train --signal table_updated --where '{\"table\": [\"prod.events\"]}' --timeout 1h\n  signalbox wait --file wait.yaml\n\nExit codes: 0 satisfied, 1 invalid request, 2 NATS or the router unreachable, 3 timed out, 4 cancelled.\nRunning it again with the same id re-attaches to the same wait (it never waits twice)."
    )]
    Wait(WaitArgs),
    /// Test and check patterns locally (no router needed).
    #[command(subcommand)]
    Pattern(PatternCommand),
    /// WebAssembly plugins: scaffold and try one locally, or deploy, list, inspect, roll back and remove them in a running router.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// How a command logs in to NATS: the same flags (and environment
/// variables) for `serve` and every client verb. The URL flag is not here:
/// client verbs default it to the local server, `serve` to its config file.
#[derive(Debug, Clone, Args)]
pub struct NatsLoginArgs {
    /// NATS creds file.
    #[arg(long, env = "SIGNALBOX_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// NATS user (with --password).
    #[arg(long, env = "SIGNALBOX_NATS_USER")]
    pub user: Option<String>,
    /// NATS password (with --user).
    #[arg(long, env = "SIGNALBOX_NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// NATS token.
    #[arg(long, env = "SIGNALBOX_NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl NatsLoginArgs {
    /// Sets in `nats` each login setting given here (flag or environment),
    /// leaving the others as they are.
    pub fn apply(&self, nats: &mut signalbox_router::NatsConfig) {
        if let Some(c) = &self.creds {
            nats.creds_file = Some(c.clone());
        }
        if let Some(u) = &self.user {
            nats.user = Some(u.clone());
        }
        if let Some(p) = &self.password {
            nats.password = Some(p.clone());
        }
        if let Some(t) = &self.token {
            nats.token = Some(t.clone());
        }
    }
}

/// How a client verb reaches NATS and the router.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long = "nats-url",
        env = "SIGNALBOX_NATS_URL",
        value_delimiter = ',',
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_urls: Vec<String>,
    #[command(flatten)]
    pub login: NatsLoginArgs,
    /// Subject prefix signals are published under.
    #[arg(long, env = "SIGNALBOX_SUBJECT_PREFIX", default_value = "signals")]
    pub subject_prefix: String,
    /// Subject prefix of the router's admin API.
    #[arg(
        long,
        env = "SIGNALBOX_ADMIN_PREFIX",
        default_value = "signalbox.admin"
    )]
    pub admin_prefix: String,
    /// How long to wait for the router's reply, e.g. 5s.
    #[arg(long = "request-timeout", env = "SIGNALBOX_REQUEST_TIMEOUT", default_value = "5s", value_parser = humantime_duration)]
    pub request_timeout: std::time::Duration,
}

/// `serve` flags (each overrides the config file).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, short, env = "SIGNALBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// NATS server URL(s), comma-separated.
    #[arg(long = "nats-url", env = "SIGNALBOX_NATS_URL", value_delimiter = ',')]
    pub nats_urls: Option<Vec<String>>,
    #[command(flatten)]
    pub login: NatsLoginArgs,
    /// Require TLS to NATS.
    #[arg(long, env = "SIGNALBOX_NATS_TLS")]
    pub tls: bool,
    /// Extra CA certificate (PEM) for NATS TLS.
    #[arg(long, env = "SIGNALBOX_NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Data directory (holds signalbox.redb).
    #[arg(long, env = "SIGNALBOX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Subject prefix signals arrive under.
    #[arg(long, env = "SIGNALBOX_SUBJECT_PREFIX")]
    pub subject_prefix: Option<String>,
    /// Queue group of the ingest subscription.
    #[arg(long, env = "SIGNALBOX_QUEUE_GROUP")]
    pub queue_group: Option<String>,
    /// Subscription files or directories to load at start (repeatable).
    #[arg(
        long = "subscriptions",
        env = "SIGNALBOX_SUBSCRIPTIONS",
        value_delimiter = ','
    )]
    pub subscriptions: Vec<PathBuf>,
    /// Serve the HTTP admin API (health, admin verbs, lineage) on this address, e.g. 127.0.0.1:7070.
    #[arg(long, env = "SIGNALBOX_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Bearer token the HTTP admin API requires.
    #[arg(long, env = "SIGNALBOX_HTTP_TOKEN", hide_env_values = true)]
    pub http_token: Option<String>,
    /// Export spans over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (sets `telemetry.otlp_endpoint`).
    #[arg(long, env = "SIGNALBOX_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// `dev` flags.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Data directory for nats-server's JetStream store and signalbox.redb.
    #[arg(long, env = "SIGNALBOX_DATA_DIR", default_value = ".signalbox/dev")]
    pub data_dir: PathBuf,
    /// Client port for the embedded nats-server (default 4222, or a free one if taken).
    #[arg(long, env = "SIGNALBOX_DEV_PORT")]
    pub port: Option<u16>,
    /// Subscription files or directories to load (default: ./examples/subscriptions).
    #[arg(long = "subscriptions", value_delimiter = ',')]
    pub subscriptions: Vec<PathBuf>,
    /// Export spans over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318.
    #[arg(long, env = "SIGNALBOX_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Start a local group instead: this many nats-server nodes in a cluster
    /// and as many routers (separate processes) sharing one group, to watch a
    /// takeover (kill a router; `signalbox cluster status`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub group: Option<u32>,
}

/// `publish` flags.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Signal name (or give it in --file).
    pub name: Option<String>,
    /// Signal id (idempotency key); a fresh one is assigned when absent.
    #[arg(long)]
    pub id: Option<String>,
    /// A param, `key=value`; the value is read as JSON when it parses (numbers, true, "quoted"), else as a string. Dotted keys nest.
    #[arg(long = "param", short = 'p')]
    pub params: Vec<String>,
    /// The payload, as JSON.
    #[arg(long)]
    pub payload: Option<String>,
    /// A whole signal as a JSON file (`-` for stdin); flags override its fields.
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `sub` verbs.
#[derive(Debug, Subcommand)]
pub enum SubCommand {
    /// Add or update subscriptions from YAML/JSON files.
    #[command(after_help = "Example:\n  signalbox sub add examples/subscriptions/big-tables.yaml")]
    Add {
        /// Files to add.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check subscription files locally (no router needed): the JSON Schema in schemas/, then the router's own checks.
    #[command(
        after_help = "Example:\n  signalbox sub check examples/subscriptions/*.yaml\n\nPrints one JSON line per file. Exit codes: 0 every file is valid, 1 otherwise."
    )]
    Check {
        /// Files to check (YAML or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List subscriptions.
    #[command(after_help = "Example:\n  signalbox sub ls")]
    Ls {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one subscription.
    #[command(after_help = "Example:\n  signalbox sub show big-tables")]
    Show {
        /// Subscription id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a subscription.
    #[command(after_help = "Example:\n  signalbox sub rm big-tables")]
    Rm {
        /// Subscription id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `signals` verbs.
#[derive(Debug, Subcommand)]
pub enum SignalsCommand {
    /// List signal names, or the instances of one name.
    #[command(
        after_help = "Example:\n  signalbox signals ls\n  signalbox signals ls table_updated --after 10 --limit 20"
    )]
    Ls {
        /// Signal name.
        name: Option<String>,
        /// Only instances with a larger seq.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one stored instance, `NAME:SEQ`.
    #[command(after_help = "Example:\n  signalbox signals show table_updated:1")]
    Show {
        /// `NAME:SEQ`.
        signal: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `firing` verbs.
#[derive(Debug, Subcommand)]
pub enum FiringCommand {
    /// Show a firing by id.
    #[command(after_help = "Example:\n  signalbox firing show 3f2a…")]
    Show {
        /// Firing id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The group's members, each partition's owner and lease, positions and lag
    /// (`{"mode": "single"}` for a router alone).
    #[command(after_help = "Example:\n  signalbox cluster status")]
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `wait` flags.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// A whole wait document (YAML or JSON); flags override its fields.
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// Wait id: the idempotency key (e.g. workflow/run/step).
    #[arg(long)]
    pub id: Option<String>,
    /// Signal name to wait for.
    #[arg(long)]
    pub signal: Option<String>,
    /// Pattern over the signal's params (JSON, EventBridge form).
    #[arg(long = "where")]
    pub pattern: Option<String>,
    /// Which stored signals count: a duration (`24h`), an RFC 3339 time, `all` (default) or `none`.
    #[arg(long)]
    pub lookback: Option<String>,
    /// Give up after this long, e.g. `1h`.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Who waits, `key=value` (workflow=etl, run=8812, step=train); repeatable.
    #[arg(long = "consumer")]
    pub consumer: Vec<String>,
    /// Subject waits are registered on.
    #[arg(long, env = "SIGNALBOX_WAIT_SUBJECT", default_value = "signalbox.wait")]
    pub wait_subject: String,
    /// Prefix of the subjects answers are published to.
    #[arg(long, env = "SIGNALBOX_WAIT_PREFIX", default_value = "signalbox.waits")]
    pub wait_prefix: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `lineage` verbs.
#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// A signal instance: producer, source, matched subscriptions, firings fed, waits satisfied.
    #[command(after_help = "Example:\n  signalbox lineage signal table_updated:1")]
    Signal {
        /// `NAME:SEQ`.
        signal: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A subscription: its firings with their inputs, targets and delivery state.
    #[command(after_help = "Example:\n  signalbox lineage sub big-tables")]
    Sub {
        /// Subscription id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A firing: inputs, target, delivery state and attempts.
    #[command(after_help = "Example:\n  signalbox lineage firing 3f2a…")]
    Firing {
        /// Firing id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A wait: its consumer step and the signals that satisfied it.
    #[command(after_help = "Example:\n  signalbox lineage wait etl/8812/train")]
    Wait {
        /// Wait id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Export the lineage graph (JSON or Graphviz DOT) for a time range or around one node.
    #[command(
        after_help = "Example:\n  signalbox lineage export --format dot --since 2026-11-26T00:00:00Z > lineage.dot\n  signalbox lineage export --sub big-tables"
    )]
    Export {
        /// `json` or `dot`.
        #[arg(long, default_value = "json")]
        format: String,
        /// Signals received at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Signals received before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Around this signal instance, `NAME:SEQ`.
        #[arg(long)]
        signal: Option<String>,
        /// Around this subscription.
        #[arg(long)]
        sub: Option<String>,
        /// Around this firing.
        #[arg(long)]
        firing: Option<String>,
        /// At most this many signal instances.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `explain` flags.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Subscription id.
    #[arg(long)]
    pub sub: String,
    /// Stored signal, `NAME:SEQ`.
    #[arg(long)]
    pub signal: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `pattern` verbs.
#[derive(Debug, Subcommand)]
pub enum PatternCommand {
    /// Test a pattern against a signal (like EventBridge's TestEventPattern); prints {"matches", "explain"}.
    #[command(
        after_help = "Example:\n  signalbox pattern test --pattern pattern.json --signal signal.json"
    )]
    Test {
        /// Pattern file (JSON or YAML).
        #[arg(long)]
        pattern: PathBuf,
        /// Signal file (a whole signal, or just its params object).
        #[arg(long)]
        signal: PathBuf,
    },
    /// Check that a pattern is valid.
    #[command(after_help = "Example:\n  signalbox pattern check pattern.json")]
    Check {
        /// Pattern file (JSON or YAML).
        pattern: PathBuf,
    },
}

/// `plugin` verbs: `new` and `test` work locally; the rest go to a running router.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Scaffold a working plugin project (Rust, Python or JavaScript) for one world.
    ///
    /// Writes DIR/NAME: the source of a small working example, a copy of the WIT
    /// package in wit/, and a README saying how to build, test and deploy it.
    /// Refuses a name outside the plugin name rule and a directory that is not empty.
    #[command(
        after_help = "Example:\n  signalbox plugin new --lang rust --world operator even\n  signalbox plugin new --lang python --world source-adapter my-hook --dir plugins/"
    )]
    New {
        /// The plugin name (also the project directory name).
        name: String,
        /// The language of the project.
        #[arg(long, value_enum)]
        lang: PluginLang,
        /// The world the plugin implements.
        #[arg(long, value_enum)]
        world: PluginWorld,
        /// The directory the project is created in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Load a component and run one call locally (operator: prepare + test; adapter: decode); prints the result as JSON.
    ///
    /// Exits 0 when the call ran (a match or not, signals, a rejection or a
    /// retry), 1 when the call failed (trap, timeout, out of memory), 2 when the
    /// component or the input could not be used. SIGNALBOX_PLUGIN_CACHE_DIR, when
    /// set, keeps compiled components between runs.
    #[command(
        after_help = "Example:\n  signalbox plugin test semver.wasm --arg '\">=2.1.0 <3\"' --input '\"2.4.1\"'\n  signalbox plugin test webhook-json.wasm --input body.json --header content-type=application/json --set name-pointer=/event"
    )]
    Test {
        /// The component file (.wasm).
        file: PathBuf,
        /// Operator: the condition's argument (JSON).
        #[arg(long)]
        arg: Option<String>,
        /// Operator: the value to test (JSON). Adapter: the request body (a file path, or `-` for stdin).
        #[arg(long)]
        input: String,
        /// Adapter: a header, NAME=VALUE (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// A plugin setting, KEY=VALUE (repeatable), answered to `config-get`.
        #[arg(long = "set")]
        settings: Vec<String>,
        /// Deadline of each call (prepare, test, decode), e.g. 2s; default:
        /// the router's (5 ms test, 100 ms prepare, 50 ms decode), to see
        /// whether the plugin fits them.
        #[arg(long, value_parser = humantime_duration)]
        deadline: Option<std::time::Duration>,
    },
    /// Deploy a component into the running router (validated, stored, activated atomically).
    #[command(
        after_help = "Example:\n  signalbox plugin deploy target/wasm32-wasip2/release/semver.wasm --name semver\n  signalbox plugin deploy hook.wasm --name github --set secret=s3cr3t"
    )]
    Deploy {
        /// The component file (.wasm).
        file: PathBuf,
        /// The name to deploy under (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// A plugin setting, KEY=VALUE (repeatable), answered to `config-get`.
        #[arg(long = "set")]
        settings: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the router's plugins: name, world, active version, source.
    #[command(after_help = "Example:\n  signalbox plugin ls")]
    Ls {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one plugin: its description, versions, imports, call counts and the subscriptions using it.
    #[command(after_help = "Example:\n  signalbox plugin inspect semver")]
    Inspect {
        /// The plugin name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Activate the previous deployed version of a plugin.
    #[command(after_help = "Example:\n  signalbox plugin rollback semver")]
    Rollback {
        /// The plugin name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a deployed plugin (refused while subscriptions or sources use it).
    #[command(after_help = "Example:\n  signalbox plugin rm semver")]
    Rm {
        /// The plugin name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Languages `plugin new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginLang {
    /// Rust, built with `cargo build --target wasm32-wasip2`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with jco (ComponentizeJS).
    Js,
}

/// Worlds of `wit/` a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginWorld {
    /// A custom operator.
    Operator,
    /// A source adapter.
    SourceAdapter,
}

fn humantime_duration(s: &str) -> Result<std::time::Duration, String> {
    signalbox_model::subscription::parse_duration(s).map(std::time::Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
