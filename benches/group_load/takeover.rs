//! Issue 18, "Takeover": the time from SIGKILL of a partition's owner to the
//! first firing of that partition from the new owner, at default settings
//! (`lease_ttl` 3 s), on the 3-node cluster with 3 routers.
//!
//! One group (core ingest) runs for every repetition. A trickle task sends a
//! request for the signal `tick` every `--trickle-ms` (20 ms) with a unique
//! id, each awaited on its own task with a timeout, so a request lost with a
//! dead router never slows the trickle. One subscription fires for every
//! `tick` to `runs.load`, captured by the stream `RUNS` (3 replicas); a
//! collector reads it with an ordered consumer and notes each firing's
//! stream timestamp (when the target stored it) and when it arrived here.
//!
//! Each repetition: wait until the group is stable and firings flow, find the
//! owner of `tick`'s partition in `cluster.status`, note the wall clock and
//! SIGKILL it. The takeover time is the stream timestamp of the first firing
//! stored more than [`GRACE`] after the kill, minus the kill time: the dead
//! owner can have no firing in flight longer than that, so that firing is the
//! new owner's; the firings stored within the grace are counted and printed
//! (in flight from the old owner). Then the killed router is started again
//! (same member name and data) and the group left to become stable before
//! the next repetition. At the end, every `n` stored twice in `RUNS` would be
//! a firing published twice: the count is printed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use signalbox_router::group::hash::signal_partition;
use signalbox_testkit::NatsCluster;

use super::group::{Group, PARTITIONS};
use super::load::{Ingest, RUNS_STREAM, fresh_runs_stream, subscription};

/// Firings stored within this long after the kill may still be the dead
/// owner's (published before it died, stored just after).
const GRACE: Duration = Duration::from_millis(100);
/// The longest a takeover is waited for.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(60);
/// The signal name of the trickle.
const NAME: &str = "tick";

/// One firing as the collector saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The stream's timestamp, ns since the Unix epoch.
    stored_ns: i128,
    /// When it arrived here.
    received: Instant,
    /// Its signal's index.
    n: usize,
}

/// One repetition's figures.
#[derive(Debug, Clone)]
pub struct Takeover {
    /// Kill → first firing stored from the new owner.
    pub stored: Duration,
    /// Kill → that firing received by the collector.
    pub received: Duration,
    /// Last firing stored before the kill → the kill (how steady the flow was).
    pub before: Duration,
    /// Firings stored within the grace after the kill.
    pub in_flight: usize,
    pub killed: String,
    pub new_owner: String,
}

fn unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Runs `reps` takeovers; returns their figures and prints a line each.
pub async fn run(
    cluster: &NatsCluster,
    bin: &std::path::Path,
    reps: usize,
    trickle: Duration,
) -> Result<Vec<Takeover>> {
    let urls = cluster.urls();
    let client = cluster.client().await?;
    let js = jetstream::new(client.clone());
    fresh_runs_stream(&js, 3).await?;
    let subs = vec![(
        "tick.yaml".to_string(),
        subscription("t", NAME, Ingest::JetStream),
    )];
    let mut group = Group::start(bin, &urls, "takeover", 3, "core", &subs).await?;
    let partition = signal_partition("signals", NAME, PARTITIONS);
    println!("takeover: signal {NAME:?} lives in partition {partition}");

    // The collector.
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let collector = {
        let seen = seen.clone();
        let mut messages = js
            .get_stream(RUNS_STREAM)
            .await?
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await?
            .messages()
            .await?;
        tokio::spawn(async move {
            while let Some(Ok(m)) = messages.next().await {
                let received = Instant::now();
                let Ok(info) = m.info() else { continue };
                let stored_ns = info.published.unix_timestamp_nanos();
                if let Some((n, _)) = super::load::firing(&m.message.payload)
                    && let Ok(mut v) = seen.lock()
                {
                    v.push(Seen {
                        stored_ns,
                        received,
                        n,
                    });
                }
            }
        })
    };

    // The trickle.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let trickler = {
        let (stop, answered, unanswered) = (stop.clone(), answered.clone(), unanswered.clone());
        let producer = cluster.client().await?;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(trickle);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Bounded: at most an hour of requests.
            let limit = (3600.0 / trickle.as_secs_f64()) as usize;
            for i in 0..limit {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let (producer, answered, unanswered) =
                    (producer.clone(), answered.clone(), unanswered.clone());
                tokio::spawn(async move {
                    let body = format!(r#"{{"id":"tk-{i}","params":{{"n":{i}}}}}"#);
                    let r = tokio::time::timeout(
                        Duration::from_secs(5),
                        producer.request(format!("signals.{NAME}"), body.into()),
                    )
                    .await;
                    let counter = if matches!(r, Ok(Ok(_))) {
                        answered
                    } else {
                        unanswered
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                });
            }
        })
    };

    let mut results = Vec::new();
    let outcome = async {
        for rep in 0..reps {
            let owners = group.stable(Duration::from_secs(120)).await?;
            wait_flowing(&seen).await?;
            let owner = owners
                .get(&partition)
                .cloned()
                .flatten()
                .context("the partition has no owner")?;
            let i: usize = owner
                .strip_prefix('r')
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("unexpected member name {owner:?}"))?;
            let kill_ns = unix_ns();
            let kill_at = Instant::now();
            group.kill(i);
            let grace_ns = kill_ns + GRACE.as_nanos() as i128;
            let first = loop {
                let found = seen.lock().ok().and_then(|v| {
                    v.iter()
                        .filter(|s| s.stored_ns > grace_ns)
                        .min_by_key(|s| s.stored_ns)
                        .copied()
                });
                if let Some(f) = found {
                    break f;
                }
                if kill_at.elapsed() > TAKEOVER_LIMIT {
                    bail!(
                        "no firing from a new owner within {TAKEOVER_LIMIT:?}; logs:\n{}",
                        group.logs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let (before_ns, in_flight) = seen.lock().map_or((kill_ns, 0), |v| {
                (
                    v.iter()
                        .map(|s| s.stored_ns)
                        .filter(|t| *t <= kill_ns)
                        .max()
                        .unwrap_or(kill_ns),
                    v.iter()
                        .filter(|s| s.stored_ns > kill_ns && s.stored_ns <= grace_ns)
                        .count(),
                )
            });
            let new_owner = Group::owners(&group.status().await?)
                .get(&partition)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "?".into());
            let t = Takeover {
                stored: Duration::from_nanos((first.stored_ns - kill_ns).max(0) as u64),
                received: first.received - kill_at,
                before: Duration::from_nanos((kill_ns - before_ns).max(0) as u64),
                in_flight,
                killed: owner.clone(),
                new_owner,
            };
            println!(
                "[rep {rep}] SIGKILL {} (owner of partition {partition}) -> first firing from the new owner ({}) stored after {:.3} s, received after {:.3} s; last firing before the kill {:.0} ms before it; {} stored within the {} ms grace",
                t.killed,
                t.new_owner,
                t.stored.as_secs_f64(),
                t.received.as_secs_f64(),
                t.before.as_secs_f64() * 1e3,
                t.in_flight,
                GRACE.as_millis()
            );
            results.push(t);
            group.restart(i).await?;
        }
        anyhow::Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = trickler.await;
    // Let the last requests fire, then count what was stored twice.
    tokio::time::sleep(Duration::from_secs(6)).await;
    collector.abort();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    if let Ok(v) = seen.lock() {
        for s in v.iter() {
            *counts.entry(s.n).or_default() += 1;
        }
    }
    let twice = counts.values().filter(|c| **c > 1).count();
    println!(
        "takeover: {} requests answered, {} unanswered (taken by a router as it was killed, or timed out during a takeover); {} distinct firings stored, {} stored more than once",
        answered.load(Ordering::Relaxed),
        unanswered.load(Ordering::Relaxed),
        counts.len(),
        twice
    );
    group.remove(&js).await?;
    super::load::delete_stream(&js, RUNS_STREAM).await;
    outcome?;
    Ok(results)
}

/// Waits (bounded) until firings are flowing: ten new ones within a second.
async fn wait_flowing(seen: &Arc<Mutex<Vec<Seen>>>) -> Result<()> {
    let count = || seen.lock().map_or(0, |v| v.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let before = count();
        tokio::time::sleep(Duration::from_secs(1)).await;
        if count() >= before + 10 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("firings are not flowing (the trickle or the group stalled)");
        }
    }
}
