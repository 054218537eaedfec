//! Issue 19, item 1: the router against the relay peer (`relay.rs`), each a
//! process of its own, in one run on one nats-server, for each mode.
//!
//! Per mode and repetition, alternating which goes first: a throughput run
//! of `--signals` signals through the relay, then through `signalbox serve`
//! (fresh streams, fresh data directory, one subscription that fires for
//! every signal), each metered from `/proc`: the relay or router process,
//! nats-server, and this process (the load generator and the receiver). Then
//! latency runs of both at one fixed pace, half of the relay's median
//! maximum rate. The table gives medians with min–max, and the ratios of
//! issue 19 item 2 with their verdicts. From the router's `/metrics` after
//! each throughput run: the sum of its batch commit latencies
//! (`signalbox_commit_seconds`, submit to answer, queueing behind earlier
//! commits included) over the signals it committed. Batches overlap, so this
//! is a wall-time figure that can exceed the run's length per signal; the
//! commit's CPU cost is the commit thread's own (`signalbox-commit`, from
//! `/proc/<pid>/task`) over the signals, also printed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream;

use super::cpu::{pids_cpu, thread_cpu};

/// The router's commit thread, as `/proc` names it (15 bytes at most).
const COMMIT_THREAD: &str = "signalbox-commi";
use super::load::{
    Ingest, Outcome, RUNS_STREAM, Run, SIGNALS_STREAM, delete_stream, fresh_runs_stream, median,
    ms, spread, subscription, verdict,
};
use super::serve::Serve;
use signalbox_testkit::{KillOnDrop, TestNats};

/// Who carries the signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Relay,
    Router,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::Relay => "relay",
            Peer::Router => "router",
        }
    }

    /// The order of the two in repetition `rep`: alternated, so that neither
    /// always runs first.
    fn order(rep: usize) -> [Peer; 2] {
        if rep.is_multiple_of(2) {
            [Peer::Relay, Peer::Router]
        } else {
            [Peer::Router, Peer::Relay]
        }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Measured {
    outcome: Outcome,
    /// CPU µs per signal: the peer process, nats-server, this process.
    peer_us: Option<f64>,
    nats_us: Option<f64>,
    own_us: Option<f64>,
    /// The router's summed batch commit latency per signal, µs (its
    /// histogram's sum / signals; batches overlap, so not a CPU cost).
    commit_us: Option<f64>,
    /// The router's commit thread (`signalbox-commit`) CPU µs per signal,
    /// from `/proc/<pid>/task`: what the durable commit costs, amortized.
    commit_cpu_us: Option<f64>,
}

/// The options of this section.
#[derive(Debug, Clone)]
pub struct PeerArgs {
    pub signals: usize,
    pub reps: usize,
    pub latency_secs: f64,
    pub modes: Vec<Ingest>,
    /// Pace of the latency runs instead of half the relay's maximum.
    pub latency_rate: Option<f64>,
}

/// A running peer: the relay child or `signalbox serve`.
enum Running {
    Relay(KillOnDrop),
    Router(Serve),
}

impl Running {
    fn pid(&self) -> Option<u32> {
        match self {
            Running::Relay(p) => Some(p.id()),
            Running::Router(s) => s.pid(),
        }
    }
}

/// Starts the relay child and waits for its `ready`. The guard holds the
/// child's stdin open; the child exits when it closes.
async fn start_relay(mode: Ingest, url: &str) -> Result<KillOnDrop> {
    let exe = std::env::current_exe().context("the bench's own binary")?;
    let mut child = KillOnDrop(
        std::process::Command::new(exe)
            .args(["--relay-child", mode.setting(), url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the relay")?,
    );
    let stdout = child.stdout.take().context("relay stdout")?;
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .map(|_| line)
        }),
    )
    .await
    .context("the relay did not say ready within 20 s")???;
    if line.trim() != "ready" {
        bail!("the relay said {line:?} instead of ready");
    }
    Ok(child)
}

/// Starts `signalbox serve` alone on `url` with one subscription firing for
/// every signal named `load`, and waits until it takes signals.
async fn start_router(bin: &Path, dir: &Path, url: &str, mode: Ingest) -> Result<Serve> {
    let subs = dir.join("subscriptions");
    std::fs::create_dir_all(&subs)?;
    std::fs::write(subs.join("load.yaml"), subscription("b", "load", mode))?;
    let config = format!(
        "data_dir = {data:?}\nsubscriptions = [{subs:?}]\ningest = {ingest:?}\n\n[nats]\nurls = [{url:?}]\n",
        data = dir.join("data").display().to_string(),
        subs = subs.display().to_string(),
        ingest = mode.setting(),
    );
    let mut serve = Serve::start(bin, dir, &config)?;
    serve.ready(Duration::from_secs(30)).await?;
    Ok(serve)
}

/// Waits until the router takes signals: in JetStream mode its durable
/// consumer exists; in core mode it answers a request for a name no
/// subscription watches (so no firing comes of it).
async fn wait_taking(client: &async_nats::Client, mode: Ingest) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let js = jetstream::new(client.clone());
    loop {
        let taking = match mode {
            Ingest::JetStream => match js.get_stream(SIGNALS_STREAM).await {
                Ok(s) => s.consumer_info("signalbox").await.is_ok(),
                Err(_) => false,
            },
            Ingest::Core => tokio::time::timeout(
                Duration::from_secs(1),
                client.request("signals.probe", r#"{"params":{}}"#.into()),
            )
            .await
            .is_ok_and(|r| r.is_ok()),
        };
        if taking {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the router did not take signals within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The router's summed batch commit latency per signal in µs, from its
/// `/metrics`: the sum of `signalbox_commit_seconds` over the signals it
/// committed (wall time of overlapping batches, not CPU).
fn commit_us(metrics: &str, signals: usize) -> Option<f64> {
    let sum: f64 = metrics
        .lines()
        .find(|l| l.starts_with("signalbox_commit_seconds_sum"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())?;
    Some(sum * 1e6 / signals.max(1) as f64)
}

/// One run of `peer` in `mode`: fresh streams, a fresh peer process, `n`
/// signals paced at `rate` (or as fast as possible), metered from `/proc`.
async fn measure(
    nats: &TestNats,
    bin: &Path,
    peer: Peer,
    mode: Ingest,
    n: usize,
    rate: Option<f64>,
    tag: &str,
) -> Result<Measured> {
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    delete_stream(&js, SIGNALS_STREAM).await;
    if mode == Ingest::JetStream {
        fresh_runs_stream(&js, 1).await?;
    }
    let dir = tempfile::tempdir()?;
    let running = match peer {
        Peer::Relay => Running::Relay(start_relay(mode, &nats.url()).await?),
        Peer::Router => {
            let serve = start_router(bin, dir.path(), &nats.url(), mode).await?;
            wait_taking(&client, mode).await?;
            Running::Router(serve)
        }
    };
    let urls = [nats.url()];
    let run = Run::prepare(&urls, mode, "signals", &["load".to_string()], n, rate, tag).await?;
    let pid = running.pid().context("the peer is not running")?;
    let nats_pid = nats.pid().context("nats-server is not running")?;
    let commit_before = thread_cpu(pid, COMMIT_THREAD);
    let before = (
        pids_cpu(&[pid]),
        pids_cpu(&[nats_pid]),
        super::cpu::self_cpu(),
    );
    let outcome = run.go().await?;
    let after = (
        pids_cpu(&[pid]),
        pids_cpu(&[nats_pid]),
        super::cpu::self_cpu(),
    );
    let commit_after = thread_cpu(pid, COMMIT_THREAD);
    let per = |b: Option<Duration>, a: Option<Duration>| {
        Some(a?.saturating_sub(b?).as_secs_f64() * 1e6 / n as f64)
    };
    let commit = match &running {
        Running::Router(serve) => serve
            .metrics()
            .await
            .ok()
            .and_then(|m| commit_us(&m, outcome.received)),
        Running::Relay(_) => None,
    };
    drop(running);
    delete_stream(&js, SIGNALS_STREAM).await;
    delete_stream(&js, RUNS_STREAM).await;
    Ok(Measured {
        peer_us: per(before.0, after.0),
        nats_us: per(before.1, after.1),
        own_us: per(before.2, after.2),
        commit_us: commit,
        commit_cpu_us: per(commit_before, commit_after),
        outcome,
    })
}

/// Runs the comparison and prints its tables.
pub async fn run(args: &PeerArgs) -> Result<()> {
    let bin = signalbox_testkit::signalbox_binary()?;
    let nats = TestNats::start()?;
    println!(
        "relay vs router (issue 19): {} signals per throughput run, {} repetitions alternated, \
         latency runs of {} s at one pace, {} CPUs (shared with other work: rates vary, CPU per \
         signal from /proc varies less)",
        args.signals,
        args.reps,
        args.latency_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    for &mode in &args.modes {
        let mut thr: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
        for rep in 0..args.reps {
            for peer in Peer::order(rep) {
                let tag = format!("t{rep}-{}-{}", mode.setting(), peer.label());
                let m = measure(&nats, &bin, peer, mode, args.signals, None, &tag).await?;
                println!(
                    "[rep {rep}] {} {}: {:.0} signals/s ({} of {} firings, {} duplicates); CPU µs per signal: {} {}, nats-server {}, load generator {}{}",
                    mode.setting(),
                    peer.label(),
                    m.outcome.rate,
                    m.outcome.received,
                    m.outcome.sent,
                    m.outcome.duplicates,
                    peer.label(),
                    fmt(m.peer_us),
                    fmt(m.nats_us),
                    fmt(m.own_us),
                    m.commit_us
                        .map(|c| format!("; summed batch commit latency per signal {c:.1} µs"))
                        .unwrap_or_default()
                        + &m.commit_cpu_us
                            .map(|c| format!("; commit thread CPU per signal {c:.1} µs"))
                            .unwrap_or_default(),
                );
                if !m.outcome.complete() {
                    println!("   WARNING: not every signal fired exactly once");
                }
                thr[peer as usize].push(m);
            }
        }
        let relay_rates: Vec<f64> = thr[0].iter().map(|m| m.outcome.rate).collect();
        let pace = args.latency_rate.unwrap_or(median(&relay_rates) / 2.0);
        let n = ((pace * args.latency_secs) as usize).max(200);
        let mut lat: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
        for rep in 0..args.reps {
            for peer in Peer::order(rep) {
                let tag = format!("l{rep}-{}-{}", mode.setting(), peer.label());
                let m = measure(&nats, &bin, peer, mode, n, Some(pace), &tag).await?;
                println!(
                    "[rep {rep}] {} {} paced {:.0}/s ({n} signals): p50 {} p99 {} max {}; CPU µs per signal: {} {}, nats-server {}",
                    mode.setting(),
                    peer.label(),
                    pace,
                    ms(m.outcome.p50),
                    ms(m.outcome.p99),
                    ms(m.outcome.max),
                    peer.label(),
                    fmt(m.peer_us),
                    fmt(m.nats_us),
                );
                if !m.outcome.complete() {
                    println!("   WARNING: not every signal fired exactly once");
                }
                lat[peer as usize].push(m);
            }
        }
        table(mode, &thr, &lat, pace);
    }
    Ok(())
}

fn fmt(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |u| format!("{u:.1}"))
}

/// The table of one mode: medians (min–max) and the ratios of issue 19.
fn table(mode: Ingest, thr: &[Vec<Measured>; 2], lat: &[Vec<Measured>; 2], pace: f64) {
    let col = |runs: &[Measured], f: fn(&Measured) -> Option<f64>| -> Vec<f64> {
        runs.iter().filter_map(f).collect()
    };
    println!();
    println!(
        "== {} mode: relay and router as processes of their own; median (min–max) of {} runs ==",
        mode.setting(),
        thr[0].len()
    );
    println!(
        "{:<8} {:>24} {:>22} {:>22} {:>22} {:>24} {:>24}",
        "",
        "rate, signals/s",
        "CPU µs/signal, peer",
        "nats-server",
        "load generator",
        format!("p50 at {pace:.0}/s, ms"),
        "p99, ms"
    );
    for peer in [Peer::Relay, Peer::Router] {
        let t = &thr[peer as usize];
        let l = &lat[peer as usize];
        println!(
            "{:<8} {:>24} {:>22} {:>22} {:>22} {:>24} {:>24}",
            peer.label(),
            spread(&col(t, |m| Some(m.outcome.rate)), 0),
            spread(&col(t, |m| m.peer_us), 1),
            spread(&col(t, |m| m.nats_us), 1),
            spread(&col(t, |m| m.own_us), 1),
            spread(&col(l, |m| Some(m.outcome.p50.as_secs_f64() * 1e3)), 2),
            spread(&col(l, |m| Some(m.outcome.p99.as_secs_f64() * 1e3)), 2),
        );
    }
    let commit = col(&thr[1], |m| m.commit_us);
    if !commit.is_empty() {
        println!(
            "router summed batch commit latency per signal (wall, batches overlap; not a CPU cost): {} µs",
            spread(&commit, 1)
        );
    }
    let commit_cpu = col(&thr[1], |m| m.commit_cpu_us);
    if !commit_cpu.is_empty() {
        println!(
            "router commit thread CPU per signal (the durable commit, amortized): {} µs",
            spread(&commit_cpu, 1)
        );
    }
    let m = |peer: Peer, f: fn(&Measured) -> Option<f64>, runs: &[Vec<Measured>; 2]| {
        median(&col(&runs[peer as usize], f))
    };
    let rate_ratio = m(Peer::Router, |m| Some(m.outcome.rate), thr)
        / m(Peer::Relay, |m| Some(m.outcome.rate), thr);
    let cpu_ratio = m(Peer::Router, |m| m.peer_us, thr) / m(Peer::Relay, |m| m.peer_us, thr);
    let p99 = |m: &Measured| Some(m.outcome.p99.as_secs_f64() * 1e3);
    let p99_ratio = m(Peer::Router, p99, lat) / m(Peer::Relay, p99, lat);
    let router_us = m(Peer::Router, |m| m.peer_us, thr);
    println!(
        "rate router/relay {rate_ratio:.2}× (goal ≥ 0.8×: {}); router CPU per signal / relay's {cpu_ratio:.2}× (goal ≤ 2×: {}); p99 router/relay at {pace:.0}/s {p99_ratio:.2}× (goal ≤ 2×: {})",
        verdict(rate_ratio >= 0.8),
        verdict(cpu_ratio <= 2.0),
        verdict(p99_ratio <= 2.0),
    );
    if mode == Ingest::JetStream {
        println!(
            "router CPU per signal {router_us:.1} µs (goal ≤ 15 µs in JetStream mode: {})",
            verdict(router_us <= 15.0)
        );
    }
}
