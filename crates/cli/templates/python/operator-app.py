"""The `{{name}}` operator (componentize-py): matches a string that contains
the argument.

In a subscription pattern: `{"{{name}}": "prod"}` matches the values `"prod"`,
`"eu-prod-1"`, ... Argument: a JSON string (an error otherwise, shown to
whoever creates the subscription). Value: a string; any other value does not
match.

This module is the world (`describe`); the `condition` resource lives in
`conditions.py`, because componentize-py looks for an exported interface's
resources in a module named after the interface.
"""

import wit_world
from wit_world import exports
from wit_world.imports.types import Description


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="{{name}}",
            argument_shape="a string; the value matches when it is a string containing it",
            version="0.1.0",
        )


class Conditions(exports.Conditions):
    pass
