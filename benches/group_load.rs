//! Group-mode figures of issue 18 ("Figures" in `issues show 18`), each from
//! one run of this tool, with real processes: a 3-node nats-server cluster
//! on loopback (the test kit's `NatsCluster`), routers as `signalbox serve`
//! processes of the release build (`group_load/group.rs`), and, for the
//! single-mode baseline, one router on one nats-server.
//!
//! 1. Takeover (`group_load/takeover.rs`): SIGKILL the owner of a name's
//!    partition under a steady trickle of requests (every 20 ms) and time the
//!    first firing of that partition stored at the JetStream target from the
//!    new owner. Default settings (`lease_ttl` 3 s). Goal ≤ 5 s; repeated
//!    `--reps` times (5), min / median / max.
//! 2. Cost (`group_load/cost.rs`): CPU per signal from `/proc` (routers
//!    summed, nats-servers summed, this process) and the rate, single mode
//!    against groups of 3, 2 and 1 routers, the same subscriptions and load,
//!    rows alternated within each of `--cost-reps` repetitions (3). Goal:
//!    group (3 routers) ≤ 1.5× single in CPU per signal. Then a model of
//!    what more cores would give, from CPU per signal alone.
//!
//! Run: `cargo bench --bench group_load` (options after `--`: `--only
//! takeover|cost`, `--reps N` (takeovers, 5), `--cost-reps N` (3),
//! `--signals N` (20000 per cost row), `--names K` (32 signal names, one
//! subscription each), `--routers 3,2,1`, `--trickle-ms MS` (20)). The machine
//! this was written on has 2 cores shared with other work: every process of
//! a row shares them, so the rates say little about scaling; CPU per signal
//! does. The run is bounded: every wait has a timeout and the tool exits by
//! itself.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use signalbox_testkit::{NatsCluster, TestNats, signalbox_binary};

/// The allocator of the `signalbox` binary (this process only runs the load).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Shared with `e2e_load`; not every item of them is used here.
#[allow(dead_code)]
#[path = "e2e_load/cpu.rs"]
mod cpu;
#[allow(dead_code)]
#[path = "e2e_load/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "e2e_load/serve.rs"]
mod serve;

#[path = "group_load/cost.rs"]
mod cost;
#[path = "group_load/group.rs"]
mod group;
#[path = "group_load/takeover.rs"]
mod takeover;

use cost::Setup;
use load::{median, spread, verdict};

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    takeover: bool,
    cost: bool,
    reps: usize,
    cost_reps: usize,
    signals: usize,
    names: usize,
    routers: Vec<usize>,
    trickle: Duration,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            takeover: true,
            cost: true,
            reps: 5,
            cost_reps: 3,
            signals: 20_000,
            names: 32,
            routers: vec![3, 2, 1],
            trickle: Duration::from_millis(20),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--only" => match value("--only")?.as_str() {
                    "takeover" => args.cost = false,
                    "cost" => args.takeover = false,
                    other => bail!("--only takes takeover or cost, not {other:?}"),
                },
                "--reps" => args.reps = value("--reps")?.parse()?,
                "--cost-reps" => args.cost_reps = value("--cost-reps")?.parse()?,
                "--signals" => args.signals = value("--signals")?.parse()?,
                "--names" => args.names = value("--names")?.parse()?,
                "--routers" => {
                    args.routers = value("--routers")?
                        .split(',')
                        .map(|s| s.trim().parse::<usize>())
                        .collect::<Result<_, _>>()?;
                }
                "--trickle-ms" => {
                    args.trickle = Duration::from_millis(value("--trickle-ms")?.parse()?);
                }
                // `cargo bench` passes `--bench`.
                "--bench" => {}
                other => eprintln!("group_load: ignoring argument {other:?}"),
            }
        }
        if args.reps == 0
            || args.cost_reps == 0
            || args.signals == 0
            || args.names == 0
            || args.routers.is_empty()
            || args.routers.contains(&0)
            || args.trickle.is_zero()
        {
            bail!("every count and --trickle-ms must be positive");
        }
        Ok(args)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let started = Instant::now();
    let bin = signalbox_binary()?;
    println!(
        "group_load: {} CPUs (shared with other work on this machine), signalbox at {}",
        cores(),
        bin.display()
    );
    let cluster = NatsCluster::start().await?;
    if args.takeover {
        let results = takeover::run(&cluster, &bin, args.reps, args.trickle).await?;
        takeover_table(&results);
    }
    if args.cost {
        cost_section(&args, &cluster, &bin).await?;
    }
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn takeover_table(results: &[takeover::Takeover]) {
    let secs = |f: fn(&takeover::Takeover) -> Duration| -> Vec<f64> {
        results.iter().map(|t| f(t).as_secs_f64()).collect()
    };
    let stored = secs(|t| t.stored);
    println!();
    println!(
        "== takeover: SIGKILL of a partition's owner -> first firing of that partition from the new owner; 3 routers, 3-node cluster, lease_ttl 3s (default); {} kills ==",
        results.len()
    );
    println!(
        "stored at the JetStream target after the kill: median {} s (min–max in parentheses); goal <= 5 s: {}",
        spread(&stored, 3),
        verdict(stored.iter().all(|s| *s <= 5.0) && !stored.is_empty())
    );
    println!(
        "received by the bench's ordered consumer:     median {} s",
        spread(&secs(|t| t.received), 3)
    );
    println!(
        "(last firing before the kill, before it: {} s)",
        spread(&secs(|t| t.before), 3)
    );
}

async fn cost_section(args: &Args, cluster: &NatsCluster, bin: &std::path::Path) -> Result<()> {
    let nats = TestNats::start()?;
    let names: Vec<String> = (0..args.names).map(|k| format!("load{k}")).collect();
    let mut setups = vec![Setup::Single];
    setups.extend(args.routers.iter().map(|n| Setup::Group(*n)));
    println!();
    println!(
        "cost: {} signals per row over {} names (one subscription each), JetStream ingest, {} repetitions, rows alternated",
        args.signals, args.names, args.cost_reps
    );
    let mut rows: std::collections::BTreeMap<Setup, Vec<cost::Row>> = Default::default();
    for rep in 0..args.cost_reps {
        let mut order = setups.clone();
        if rep % 2 == 1 {
            order.reverse();
        }
        for setup in order {
            let tag = format!("c{rep}");
            let row = match setup {
                Setup::Single => cost::single(&nats, bin, &names, args.signals, &tag).await?,
                Setup::Group(n) => {
                    let name = format!("cost{rep}n{n}");
                    cost::group(cluster, bin, n, &name, &names, args.signals, &tag).await?
                }
            };
            println!(
                "[rep {rep}] {}: {:.0} signals/s ({} of {} firings, {} duplicates); CPU µs per signal: routers {}, nats-server(s) {}, load generator {}; idle ms/s: routers {}, nats {}{}",
                setup.label(),
                row.outcome.rate,
                row.outcome.received,
                row.outcome.sent,
                row.outcome.duplicates,
                fmt(row.routers_us),
                fmt(row.nats_us),
                fmt(row.own_us),
                fmt(row.idle_routers),
                fmt(row.idle_nats),
                if row.shares.is_empty() {
                    String::new()
                } else {
                    format!("; {}", row.shares)
                }
            );
            if !row.outcome.complete() {
                println!("   WARNING: not every signal fired exactly once");
            }
            rows.entry(setup).or_default().push(row);
        }
    }
    cost_table(&rows);
    Ok(())
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn cost_table(rows: &std::collections::BTreeMap<Setup, Vec<cost::Row>>) {
    let col = |runs: &[cost::Row], f: fn(&cost::Row) -> Option<f64>| -> Vec<f64> {
        runs.iter().filter_map(f).collect()
    };
    let total = |r: &cost::Row| Some(r.routers_us? + r.nats_us?);
    println!();
    println!("== CPU per signal, group against single: median (min–max) of the repetitions ==");
    println!(
        "{:<36} {:>22} {:>20} {:>20} {:>20} {:>16} {:>14}",
        "",
        "rate, signals/s",
        "routers µs/sig",
        "nats µs/sig",
        "both µs/sig",
        "load gen µs",
        "idle ms/s"
    );
    for (setup, runs) in rows {
        println!(
            "{:<36} {:>22} {:>20} {:>20} {:>20} {:>16} {:>14}",
            setup.label(),
            spread(&col(runs, |r| Some(r.outcome.rate)), 0),
            spread(&col(runs, |r| r.routers_us), 1),
            spread(&col(runs, |r| r.nats_us), 1),
            spread(&col(runs, total), 1),
            spread(&col(runs, |r| r.own_us), 1),
            format!(
                "{:.0} / {:.0}",
                median(&col(runs, |r| r.idle_routers)),
                median(&col(runs, |r| r.idle_nats))
            ),
        );
    }
    let med =
        |s: Setup, f: fn(&cost::Row) -> Option<f64>| rows.get(&s).map(|runs| median(&col(runs, f)));
    if let (Some(single), Some(group)) = (med(Setup::Single, total), med(Setup::Group(3), total)) {
        let ratio = group / single;
        let routers = med(Setup::Group(3), |r| r.routers_us).unwrap_or(0.0)
            / med(Setup::Single, |r| r.routers_us).unwrap_or(f64::NAN);
        let nats = med(Setup::Group(3), |r| r.nats_us).unwrap_or(0.0)
            / med(Setup::Single, |r| r.nats_us).unwrap_or(f64::NAN);
        println!(
            "group of 3 / single, CPU per signal (routers + nats-servers): {ratio:.2}× (goal <= 1.5×: {}); routers alone {routers:.2}×, nats-servers alone {nats:.2}×",
            verdict(ratio <= 1.5)
        );
    }
    println!();
    println!(
        "model: cores needed = CPU per signal (routers + nats-servers) × rate; rate a machine of C cores could carry = C / CPU per signal (if the work spreads and nothing else runs; this machine has {})",
        cores()
    );
    for (setup, runs) in rows {
        let c = median(&col(runs, total));
        if c <= 0.0 {
            continue;
        }
        println!(
            "{:<36} {c:>7.1} µs/signal: 10k/s {:.2} cores, 50k/s {:.2}, 100k/s {:.2}; at 2 cores {:.0}/s, 8 cores {:.0}/s, 16 cores {:.0}/s",
            setup.label(),
            c * 1e4 / 1e6,
            c * 5e4 / 1e6,
            c * 1e5 / 1e6,
            2.0 * 1e6 / c,
            8.0 * 1e6 / c,
            16.0 * 1e6 / c
        );
    }
}
