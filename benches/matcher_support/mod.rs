//! Shared helpers for the matcher benchmarks: a seeded RNG, the citylots-shaped
//! record generator, params parsing, a resident-memory probe, and the clock
//! the benchmarks use (with [`pass`], one pass of matching over the inputs).
//! No timing assertions live here; benchmarks only measure.
//!
//! The clock ([`on_cpu`]) is the benchmark thread's on-CPU time, not wall
//! time, so that other work on a busy machine does not inflate a sample (it
//! still shares the caches); on an idle machine the two agree.
//! `MATCHER_BENCH_WALL=1` measures wall time instead.

#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use signalbox_model::{Map, Value};

// The matcher tests' generator: one implementation for tests and benchmarks.
#[path = "../../crates/matcher/tests/support/rng.rs"]
mod rng;
pub use rng::Rng;

pub const STREETS: [&str; 24] = [
    "GREENWICH",
    "FULTON",
    "MISSION",
    "VALENCIA",
    "JACKSON",
    "WASHINGTON",
    "ACADIA",
    "ALEMANY",
    "BEACH",
    "BEALE",
    "CLAY",
    "DIVISADERO",
    "EDDY",
    "FILLMORE",
    "GEARY",
    "HAIGHT",
    "JEFFERSON",
    "JONES",
    "LARKIN",
    "MASON",
    "OCTAVIA",
    "POLK",
    "SUTTER",
    "TAYLOR",
];
pub const ST_TYPES: [&str; 5] = ["ST", "AVE", "BLVD", "WAY", "TER"];

/// One citylots-shaped record (the shape of quamina's `cl-sample-*`, plus
/// `geometry.firstCoordinates` as in event-ruler's citylots2 benchmark data).
pub fn citylot(rng: &mut Rng) -> Json {
    let block = rng.below(7000);
    let lot = rng.below(300);
    let mapblklot = format!("{block:04}{lot:03}");
    let from = rng.below(3000);
    let street = STREETS[rng.below(STREETS.len() as u64) as usize];
    let st_type = if rng.below(10) == 0 {
        Json::Null
    } else {
        json!(ST_TYPES[rng.below(5) as usize])
    };
    let (lon0, lat0) = (-122.52 + rng.unit() * 0.16, 37.70 + rng.unit() * 0.11);
    let points = 4 + rng.below(12) as usize;
    let ring: Vec<Json> = (0..points)
        .map(|_| {
            json!([
                lon0 + (rng.unit() - 0.5) * 0.0005,
                lat0 + (rng.unit() - 0.5) * 0.0005,
                0
            ])
        })
        .collect();
    let polygon = rng.below(20) != 0;
    json!({
        "type": "Feature",
        "properties": {
            "MAPBLKLOT": mapblklot, "BLKLOT": mapblklot, "BLOCK_NUM": format!("{block:04}"), "LOT_NUM": format!("{lot:03}"),
            "FROM_ST": from.to_string(), "TO_ST": (from + rng.below(40)).to_string(),
            "STREET": street, "ST_TYPE": st_type, "ODD_EVEN": if from.is_multiple_of(2) { "E" } else { "O" }
        },
        "geometry": {
            "type": if polygon { "Polygon" } else { "MultiPolygon" },
            "coordinates": if polygon { json!([ring]) } else { json!([[ring]]) },
            "firstCoordinates": {"x": lon0, "y": lat0, "z": 0}
        }
    })
}

/// Params from JSON bytes, as the router would parse them.
pub fn parse_params(bytes: &[u8]) -> Map {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Params from a JSON value.
pub fn to_params(j: &Json) -> Map {
    match Value::from_json(j, "params") {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// On-CPU time of this thread so far, in nanoseconds
/// (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), if it can be read. Exact to
/// the nanosecond; `/proc/thread-self/schedstat`, read by the running thread
/// itself, only advances at scheduler ticks (4 ms steps here), too coarse for
/// samples of a few tens of milliseconds.
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the
    // call, and `clock_gettime` writes nothing else.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// One pass of `count` (how many ids matched an input) over every one of
/// `inputs`, each behind `black_box`: the ids matched in all.
pub fn pass<T>(inputs: &[T], count: impl Fn(&T) -> usize) -> usize {
    inputs.iter().map(|input| count(black_box(input))).sum()
}

/// Runs `f` `iters` times and returns the on-CPU time this thread spent on
/// it (wall time when `MATCHER_BENCH_WALL` is set or the CPU time cannot be
/// read): the sample's duration for criterion's `iter_custom`.
pub fn on_cpu<R>(iters: u64, mut f: impl FnMut() -> R) -> Duration {
    let wall = Instant::now();
    let cpu = if std::env::var_os("MATCHER_BENCH_WALL").is_some() {
        None
    } else {
        thread_cpu_ns()
    };
    for _ in 0..iters {
        black_box(f());
    }
    match (cpu, cpu.and(thread_cpu_ns())) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
        _ => wall.elapsed(),
    }
}
