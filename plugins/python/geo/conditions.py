"""The `condition` resource of the Python `geo` operator (componentize-py
looks for an exported interface's resources in a module named after the
interface). The geometry and the error texts follow the Rust sibling."""

import math
import re
from typing import Any, List, Optional, Tuple

from wit_world.exports import conditions
from componentize_py_types import Err

from strict_json import JsonError, loads

EARTH_RADIUS_M = 6_371_008.8

# Rust's `char::is_whitespace` (the Unicode White_Space property), for `trim`.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# What Rust's `str::parse::<f64>` accepts (Python's `float` also takes
# underscores, surrounding whitespace and non-ASCII digits).
RUST_FLOAT = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)",
    re.IGNORECASE,
)

Point = Tuple[float, float]


class GeoError(Exception):
    pass


def rust_float(x: float) -> str:
    """An f64 as Rust's `{}` shows it: shortest digits, never an exponent,
    no `.0` on whole numbers."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "inf" if x > 0 else "-inf"
    text = repr(x)
    sign = ""
    if text.startswith("-"):
        sign, text = "-", text[1:]
    if "e" in text:
        mantissa, exp = text.split("e")
        whole, _, frac = mantissa.partition(".")
        digits = whole + frac
        point = len(whole) + int(exp)
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits))
        else:
            text = digits[:point] + "." + digits[point:]
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


def rust_debug_str(text: str) -> str:
    """A string as Rust's `{:?}` shows it."""
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append("\\u{%x}" % ord(ch))
    return '"' + "".join(out) + '"'


def check_point(lat: float, lon: float) -> Point:
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise GeoError(
            f"({rust_float(lat)}, {rust_float(lon)}) is not a point: "
            "lat must be in [-90, 90], lon in [-180, 180]"
        )
    return lat, lon


def number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise GeoError(f"{what} must be a number")
    return float(v)


def point_from_json(v: Any) -> Point:
    if isinstance(v, dict):
        return check_point(number(v.get("lat"), "lat"), number(v.get("lon"), "lon"))
    if isinstance(v, list) and len(v) == 2:
        return check_point(number(v[0], "lat"), number(v[1], "lon"))
    raise GeoError('a point is {"lat": .., "lon": ..} or [lat, lon]')


def point_from_text(text: str) -> Point:
    lat, sep, lon = text.partition(",")
    if not sep:
        raise GeoError(f'{rust_debug_str(text)} is not "lat,lon"')

    def parse(s: str) -> float:
        s = s.strip(RUST_WHITESPACE)
        if RUST_FLOAT.fullmatch(s) is None:
            raise GeoError(f'{rust_debug_str(text)} is not "lat,lon"')
        return float(s)

    return check_point(parse(lat), parse(lon))


def haversine_m(a: Point, b: Point) -> float:
    (lat1, lon1), (lat2, lon2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = math.radians(lat2 - lat1)
    dl = math.radians(lon2 - lon1)
    s1, s2 = math.sin(dp / 2.0), math.sin(dl / 2.0)
    h = s1 * s1 + math.cos(p1) * math.cos(p2) * s2 * s2
    # Rust: `a.sqrt().min(1.0)` (the NaN of a negative root gives 1.0).
    root = math.sqrt(h) if h >= 0.0 else 1.0
    return 2.0 * EARTH_RADIUS_M * math.asin(min(root, 1.0))


def in_polygon(ring: List[Point], point: Point) -> bool:
    lat, lon = point
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        ai, oi = ring[i]
        aj, oj = ring[j]
        if (ai > lat) != (aj > lat) and lon < (oj - oi) * (lat - ai) / (aj - ai) + oi:
            inside = not inside
        j = i
    return inside


class Condition(conditions.Condition):
    def __init__(self, radius: Optional[Tuple[float, float, float]], ring: Optional[List[Point]]) -> None:
        self.radius = radius
        self.ring = ring

    @classmethod
    def prepare(cls, argument: str) -> "Condition":
        try:
            return cls._prepare(argument)
        except GeoError as e:
            raise Err(str(e))

    @classmethod
    def _prepare(cls, argument: str) -> "Condition":
        try:
            arg = loads(argument)
        except JsonError as e:
            raise GeoError(f"the argument is not JSON: {e}")
        if not isinstance(arg, dict):
            raise GeoError("the argument must be an object with within_radius or within_polygon")
        if len(arg) != 1:
            raise GeoError("the argument must have exactly one key: within_radius or within_polygon")
        if "within_radius" in arg:
            r = arg["within_radius"]
            try:
                lat, lon = point_from_json(r)
            except GeoError as e:
                raise GeoError(f"within_radius: {e}")
            meters = number(r.get("meters") if isinstance(r, dict) else None, "within_radius.meters")
            if meters != meters or meters < 0.0:
                raise GeoError("within_radius.meters must not be negative")
            return cls((lat, lon, meters), None)
        if "within_polygon" in arg:
            vertices = arg["within_polygon"]
            if not isinstance(vertices, list):
                raise GeoError("within_polygon must be an array of [lat, lon] vertices")
            if len(vertices) < 3:
                raise GeoError(f"within_polygon needs at least 3 vertices, found {len(vertices)}")
            ring = []
            for i, v in enumerate(vertices):
                try:
                    ring.append(point_from_json(v))
                except GeoError as e:
                    raise GeoError(f"within_polygon[{i}]: {e}")
            return cls(None, ring)
        raise GeoError("the argument's key must be within_radius or within_polygon")

    def test(self, value: conditions.Value) -> bool:
        try:
            if isinstance(value, conditions.Value_Text):
                point = point_from_text(value.value)
            elif isinstance(value, (conditions.Value_Object, conditions.Value_Array)):
                try:
                    parsed = loads(value.value)
                except JsonError as e:
                    raise GeoError(f"bad JSON from host: {e}")
                point = point_from_json(parsed)
            else:
                return False
        except GeoError as e:
            raise Err(str(e))
        if self.radius is not None:
            lat, lon, meters = self.radius
            return haversine_m((lat, lon), point) <= meters
        if self.ring is not None:
            return in_polygon(self.ring, point)
        return False
