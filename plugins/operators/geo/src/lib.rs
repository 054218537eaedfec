//! The `geo` operator: whether a point lies within a radius or a polygon.
//!
//! Argument (JSON object, exactly one key):
//! - `{"within_radius": {"lat": 52.52, "lon": 13.405, "meters": 1500}}`: great
//!   circle (haversine, mean Earth radius) distance at most `meters`;
//! - `{"within_polygon": [[52.5, 13.3], [52.6, 13.3], [52.6, 13.5]]}`: vertices as
//!   `[lat, lon]`, at least 3, the ring closes by itself; tested by ray casting in
//!   the lat/lon plane (fine for polygons that do not cross the antimeridian or
//!   a pole); a point on an edge may fall either way.
//!
//! Value: a point, as a string `"lat,lon"` (`"52.52,13.405"`), or as an object
//! `{"lat": .., "lon": ..}` / array `[lat, lon]` when the host passes one. A value
//! of another type does not match; a malformed or out-of-range point is an error.

use exports::signalbox::plugin::conditions::{
    Condition, Guest as ConditionsGuest, GuestCondition, Value,
};
use serde_json::Value as Json;

wit_bindgen::generate!({ world: "operator", path: "../../../wit" });

const EARTH_RADIUS_M: f64 = 6_371_008.8;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "geo".into(),
            argument_shape: "{\"within_radius\": {\"lat\": f, \"lon\": f, \"meters\": f}} or {\"within_polygon\": [[lat, lon], ...]}; the value is \"lat,lon\"".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl ConditionsGuest for Plugin {
    type Condition = Area;
}

/// A prepared area.
enum Area {
    Radius { lat: f64, lon: f64, meters: f64 },
    Polygon(Vec<(f64, f64)>),
}

fn check_point(lat: f64, lon: f64) -> Result<(f64, f64), String> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "({lat}, {lon}) is not a point: lat must be in [-90, 90], lon in [-180, 180]"
        ));
    }
    Ok((lat, lon))
}

fn number(v: Option<&Json>, what: &str) -> Result<f64, String> {
    v.and_then(Json::as_f64)
        .ok_or_else(|| format!("{what} must be a number"))
}

fn point_from_json(v: &Json) -> Result<(f64, f64), String> {
    match v {
        Json::Object(o) => check_point(number(o.get("lat"), "lat")?, number(o.get("lon"), "lon")?),
        Json::Array(a) if a.len() == 2 => {
            check_point(number(a.first(), "lat")?, number(a.get(1), "lon")?)
        }
        _ => Err("a point is {\"lat\": .., \"lon\": ..} or [lat, lon]".into()),
    }
}

fn point_from_text(text: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not \"lat,lon\""))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("{text:?} is not \"lat,lon\""))
    };
    check_point(parse(lat)?, parse(lon)?)
}

fn haversine_m((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

fn in_polygon(ring: &[(f64, f64)], (lat, lon): (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (ai, oi) = ring[i];
        let (aj, oj) = ring[j];
        if (ai > lat) != (aj > lat) && lon < (oj - oi) * (lat - ai) / (aj - ai) + oi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

impl GuestCondition for Area {
    fn prepare(argument: String) -> Result<Condition, String> {
        let arg: Json = serde_json::from_str(&argument)
            .map_err(|e| format!("the argument is not JSON: {e}"))?;
        let Json::Object(obj) = arg else {
            return Err(
                "the argument must be an object with within_radius or within_polygon".into(),
            );
        };
        if obj.len() != 1 {
            return Err(
                "the argument must have exactly one key: within_radius or within_polygon".into(),
            );
        }
        let area = if let Some(r) = obj.get("within_radius") {
            let (lat, lon) = point_from_json(r).map_err(|e| format!("within_radius: {e}"))?;
            let meters = number(r.get("meters"), "within_radius.meters")?;
            if meters.is_nan() || meters < 0.0 {
                return Err("within_radius.meters must not be negative".into());
            }
            Area::Radius { lat, lon, meters }
        } else if let Some(p) = obj.get("within_polygon") {
            let Json::Array(vertices) = p else {
                return Err("within_polygon must be an array of [lat, lon] vertices".into());
            };
            if vertices.len() < 3 {
                return Err(format!(
                    "within_polygon needs at least 3 vertices, found {}",
                    vertices.len()
                ));
            }
            let ring = vertices
                .iter()
                .enumerate()
                .map(|(i, v)| point_from_json(v).map_err(|e| format!("within_polygon[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Area::Polygon(ring)
        } else {
            return Err("the argument's key must be within_radius or within_polygon".into());
        };
        Ok(Condition::new(area))
    }

    fn test(&self, value: Value) -> Result<bool, String> {
        let point = match value {
            Value::Text(t) => point_from_text(&t)?,
            Value::Object(json) | Value::Array(json) => {
                let v: Json =
                    serde_json::from_str(&json).map_err(|e| format!("bad JSON from host: {e}"))?;
                point_from_json(&v)?
            }
            _ => return Ok(false),
        };
        Ok(match self {
            Area::Radius { lat, lon, meters } => haversine_m((*lat, *lon), point) <= *meters,
            Area::Polygon(ring) => in_polygon(ring, point),
        })
    }
}

export!(Plugin);
