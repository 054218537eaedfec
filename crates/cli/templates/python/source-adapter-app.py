"""The `{{name}}` source adapter (componentize-py): one JSON object body
becomes one signal.

Settings (`--set KEY=VALUE` with `signalbox plugin test|deploy`, read with
`config_get`): `name` (required), the name of the signal. The body must be a
JSON object; it becomes the signal's params, and its `id` field, when it is a
string, the signal's id (else the host assigns one).

A body that is not a JSON object is rejected (bad input stays bad: HTTP 422,
dead-letter); a missing setting asks for a retry (a configuration problem the
operator can fix: HTTP 503, redelivery).
"""

import json
from typing import List

import wit_world
from wit_world import exports
from wit_world.exports.adapter import DecodeError_Reject, DecodeError_Retry, Envelope, Signal
from wit_world.imports.host import Level, config_get, log
from wit_world.imports.types import Description
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="{{name}}",
            argument_shape="settings: name (the signal name); the body is a JSON object, its params",
            version="0.1.0",
        )


class Adapter(exports.Adapter):
    def decode(self, envelope: Envelope) -> List[Signal]:
        name = config_get("name")
        if name is None:
            raise Err(DecodeError_Retry("setting name is required"))
        try:
            body = json.loads(bytes(envelope.body))
        except ValueError as e:
            raise Err(DecodeError_Reject(f"the body is not JSON: {e}"))
        if not isinstance(body, dict):
            raise Err(DecodeError_Reject("the body must be a JSON object"))
        signal_id = body.get("id")
        if not isinstance(signal_id, str):
            signal_id = None
        log(Level.DEBUG, f"{len(envelope.body)} bytes from {envelope.topic} -> {name}")
        return [
            Signal(
                name=name,
                id=signal_id,
                params=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                payload=None,
            )
        ]
