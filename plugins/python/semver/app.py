"""The `semver` operator in Python (componentize-py): the sibling of
plugins/operators/semver, passing the same tests.

Argument: a JSON string holding a range in npm/cargo style, comparators
separated by spaces or commas (`">=2.1.0 <3"`, `"^1.2"`, `"~1.4.2"`), and
alternatives separated by `||` (`">=1.0 <2 || >=3"`). Value: a string version
(`"2.3.1"`, `"v2.3.1"`; a missing minor or patch counts as 0). A value that is
not a string does not match; a string that is not a version is an error.

The range logic (`semver_range.py`) is written here, in pure Python, after the
Rust `semver` crate (1.0) the Rust sibling uses: the same syntax, the same
cargo semantics (a bare version means `^`; a pre-release only matches a
comparator with a pre-release on the same major.minor.patch) and the same
error texts.
"""

import wit_world
from wit_world import exports
from wit_world.imports.types import Description


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="semver",
            argument_shape='a version range string, e.g. ">=2.1.0 <3" or "^1.2 || >=3"; the value is a version string',
            version="0.1.0",
        )


class Conditions(exports.Conditions):
    pass
