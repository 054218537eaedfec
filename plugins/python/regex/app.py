"""The `regex` operator in Python (componentize-py): the sibling of
plugins/operators/regex, passing the same tests.

Argument: a JSON string holding a pattern, anchored at both ends (`fullmatch`),
compiled once in `prepare`. Value: a string; any other value does not match.
Python's `re` syntax is close to Rust's `regex` for common patterns, but it
backtracks: a pathological pattern can be slow, and the host's deadline stops it.
"""

import wit_world
from wit_world import exports
from wit_world.imports.types import Description


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="regex",
            argument_shape='a regular expression string, anchored at both ends; the value is a string',
            version="0.1.0",
        )


class Conditions(exports.Conditions):
    pass
