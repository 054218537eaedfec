//! `dev`: the embedded default. Starts a local `nats-server` (JetStream, data
//! under the data dir) as a child, loads the example subscriptions, runs the
//! router, prints how to try it, and on SIGINT/SIGTERM stops the router and
//! then the child, so no nats-server is left behind.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use signalbox_router::embedded::{NatsProcess, free_port};
use signalbox_router::{Router, RouterConfig};

use super::serve::StopSignal;
use crate::cli::DevArgs;

/// Runs `dev`.
pub async fn run(args: DevArgs) -> Result<ExitCode> {
    let stop = StopSignal::install()?;
    if let Some(n) = args.group {
        return super::dev_group::run(&args, n, stop).await;
    }
    let port = match args.port {
        Some(p) => p,
        None if std::net::TcpListener::bind("127.0.0.1:4222").is_ok() => 4222,
        None => free_port().context("no free port for nats-server")?,
    };
    let nats_dir = args.data_dir.join("nats");
    let nats = NatsProcess::start(&nats_dir, Some(port)).context("cannot start nats-server")?;
    let mut cfg = RouterConfig::default();
    cfg.nats.urls = vec![nats.url()];
    cfg.data_dir = args.data_dir.join("router");
    cfg.subscriptions = if args.subscriptions.is_empty() {
        let examples = PathBuf::from("examples/subscriptions");
        if examples.is_dir() {
            vec![examples]
        } else {
            Vec::new()
        }
    } else {
        args.subscriptions.clone()
    };
    // The HTTP admin API on loopback (no token: it is not reachable from outside).
    cfg.http.listen = Some(if std::net::TcpListener::bind("127.0.0.1:7070").is_ok() {
        "127.0.0.1:7070".to_string()
    } else {
        "127.0.0.1:0".to_string()
    });
    let router = Router::start(cfg.clone())
        .await
        .context("cannot start the router")?;
    let http = router
        .http_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    let url = nats.url();
    // Written with errors ignored: a closed stdout (piped to `head`, a test
    // that stopped reading) must not crash the router.
    say(&format!(
        "signalbox dev is running.\n\
         \n  NATS:          {url} (nats-server pid {pid}, data in {nats_dir})\
         \n  store:         {store}\
         \n  HTTP admin:    {http}/readyz, {http}/v1/lineage/export?format=dot\
         \n  lineage page:  {http}/lineage\
         \n  subscriptions: {subs}\
         \n\nTry it (in another terminal):\
         \n  signalbox sub ls --nats-url {url}\
         \n  nats sub 'runs.>' --server {url}        # or any NATS client: watch firings\
         \n  signalbox publish table_updated --nats-url {url} --id demo-1 \\\
         \n      --param table=prod.events --param partition=20261126 --param rows=1200000\
         \n  signalbox signals ls table_updated --nats-url {url}\
         \n\nPress Ctrl-C to stop (the router drains, then nats-server stops).",
        pid = nats.pid().unwrap_or_default(),
        nats_dir = nats_dir.display(),
        store = cfg.store_path().display(),
        subs = cfg
            .subscriptions
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ));
    stop.wait().await;
    router.shutdown().await;
    drop(nats);
    say("signalbox dev stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Prints a line to stdout, ignoring a closed pipe.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
