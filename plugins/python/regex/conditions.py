"""The `condition` resource of the Python `regex` operator (componentize-py
looks for an exported interface's resources in a module named after the
interface)."""

import json
import re

from wit_world.exports import conditions
from componentize_py_types import Err


class Condition(conditions.Condition):
    def __init__(self, pattern: "re.Pattern[str]") -> None:
        self.pattern = pattern

    @classmethod
    def prepare(cls, argument: str) -> "Condition":
        try:
            arg = json.loads(argument)
        except ValueError as e:
            raise Err(f"the argument is not JSON: {e}")
        if not isinstance(arg, str):
            raise Err("the argument must be a regular expression string")
        try:
            return cls(re.compile(arg))
        except re.error as e:
            raise Err(f"not a valid regular expression: {e}")

    def test(self, value: conditions.Value) -> bool:
        if isinstance(value, conditions.Value_Text):
            return self.pattern.fullmatch(value.value) is not None
        return False
