"""The `condition` resource of the `{{name}}` operator.

`prepare` runs once per argument (compile whatever is expensive there); `test`
runs once per value and must be quick (the host stops a call after 5 ms by
default). Errors are raised as `Err(message)`.
"""

import json

from wit_world.exports import conditions
from componentize_py_types import Err


class Condition(conditions.Condition):
    def __init__(self, needle: str) -> None:
        self.needle = needle

    @classmethod
    def prepare(cls, argument: str) -> "Condition":
        # The argument arrives as JSON text: `"prod"` with its quotes.
        try:
            arg = json.loads(argument)
        except ValueError as e:
            raise Err(f"the argument is not JSON: {e}")
        if not isinstance(arg, str):
            raise Err(f"the argument must be a string, not {json.dumps(arg)}")
        return cls(arg)

    def test(self, value: conditions.Value) -> bool:
        if isinstance(value, conditions.Value_Text):
            return self.needle in value.value
        # Numbers, booleans, null, arrays and objects never match.
        return False
