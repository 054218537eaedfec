//! Shared helpers for the matcher benchmarks: a seeded RNG, the citylots-shaped
//! record generator, params parsing, and a resident-memory probe. No timing
//! assertions live here; benchmarks only measure.

#![allow(dead_code)]

use serde_json::{Value as Json, json};
use signalbox_model::{Map, Value};

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

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
