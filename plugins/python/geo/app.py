"""The `geo` operator in Python (componentize-py): the sibling of
plugins/operators/geo, passing the same tests.

Argument (JSON object, exactly one key):
- `{"within_radius": {"lat": 52.52, "lon": 13.405, "meters": 1500}}`: great
  circle (haversine, mean Earth radius) distance at most `meters`;
- `{"within_polygon": [[52.5, 13.3], [52.6, 13.3], [52.6, 13.5]]}`: vertices as
  `[lat, lon]`, at least 3, the ring closes by itself; tested by ray casting in
  the lat/lon plane (no antimeridian or pole crossing); a point on an edge may
  fall either way.

Value: a point, as a string `"lat,lon"` (`"52.52,13.405"`), or as an object
`{"lat": .., "lon": ..}` / array `[lat, lon]` when the host passes one. A value
of another type does not match; a malformed or out-of-range point is an error.
"""

import wit_world
from wit_world import exports
from wit_world.imports.types import Description


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="geo",
            argument_shape='{"within_radius": {"lat": f, "lon": f, "meters": f}} or {"within_polygon": [[lat, lon], ...]}; the value is "lat,lon"',
            version="0.1.0",
        )


class Conditions(exports.Conditions):
    pass
