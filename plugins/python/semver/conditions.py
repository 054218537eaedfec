"""The `condition` resource of the Python `semver` operator (componentize-py
looks for an exported interface's resources in a module named after the
interface)."""

from typing import List

from wit_world.exports import conditions
from componentize_py_types import Err

import semver_range
from semver_range import Comparator, SemverError
from strict_json import JsonError, loads


class Condition(conditions.Condition):
    def __init__(self, alternatives: List[List[Comparator]]) -> None:
        self.alternatives = alternatives

    @classmethod
    def prepare(cls, argument: str) -> "Condition":
        try:
            arg = loads(argument)
        except JsonError as e:
            raise Err(f"the argument is not JSON: {e}")
        if not isinstance(arg, str):
            raise Err('the argument must be a string range like ">=2.1.0 <3"')
        try:
            return cls([semver_range.parse_range(part) for part in arg.split("||")])
        except SemverError as e:
            raise Err(str(e))

    def test(self, value: conditions.Value) -> bool:
        if not isinstance(value, conditions.Value_Text):
            return False
        try:
            version = semver_range.parse_version(value.value)
        except SemverError as e:
            raise Err(str(e))
        return any(semver_range.matches(req, version) for req in self.alternatives)
