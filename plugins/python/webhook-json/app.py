"""The `webhook-json` adapter in Python (componentize-py): the sibling of
plugins/adapters/webhook-json, with the same settings and passing the same tests.

Settings (from `config-get`): `name-pointer` or `name` (one required),
`id-pointer`, `params` (a JSON object mapping param names to JSON pointers),
`payload-pointer`, `items-pointer` (one signal per element of that array, the
other pointers relative to the element). A body that is not JSON, or a missing
name, is rejected; a missing or bad setting asks for a retry.
"""

import json
from typing import Any, List, Optional, Tuple

import wit_world
from wit_world import exports
from wit_world.exports.adapter import DecodeError_Reject, DecodeError_Retry, Envelope, Signal
from wit_world.imports.host import config_get
from wit_world.imports.types import Description
from componentize_py_types import Err

_MISSING = object()


def pointer(doc: Any, ptr: str) -> Any:
    """Resolves an RFC 6901 JSON pointer; `_MISSING` when nothing is there."""
    if ptr == "":
        return doc
    if not ptr.startswith("/"):
        return _MISSING
    for raw in ptr[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict):
            if token not in doc:
                return _MISSING
            doc = doc[token]
        elif isinstance(doc, list):
            if not token.isdigit() or (len(token) > 1 and token.startswith("0")) or int(token) >= len(doc):
                return _MISSING
            doc = doc[int(token)]
        else:
            return _MISSING
    return doc


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Mapping:
    def __init__(self) -> None:
        self.params: List[Tuple[str, str]] = []
        text = config_get("params")
        if text is not None:
            try:
                obj = json.loads(text)
            except ValueError as e:
                raise Err(DecodeError_Retry(f"setting params is not a JSON object: {e}"))
            if not isinstance(obj, dict):
                raise Err(DecodeError_Retry("setting params is not a JSON object"))
            for key, ptr in obj.items():
                if not isinstance(ptr, str):
                    raise Err(DecodeError_Retry(f"setting params.{key} must be a JSON pointer string"))
                self.params.append((key, ptr))
        self.name_pointer = config_get("name-pointer")
        self.name = config_get("name")
        self.id_pointer = config_get("id-pointer")
        self.payload_pointer = config_get("payload-pointer")
        self.items_pointer = config_get("items-pointer")
        if self.name_pointer is None and self.name is None:
            raise Err(DecodeError_Retry("setting name-pointer or name is required"))

    def one(self, item: Any, index: Optional[int]) -> Signal:
        def at(what: str) -> str:
            return what if index is None else f"item {index}: {what}"

        if self.name_pointer is not None:
            found = pointer(item, self.name_pointer)
            if isinstance(found, str):
                name = found
            elif found is not _MISSING:
                raise Err(DecodeError_Reject(at(f"name at {self.name_pointer} is not a string: {compact(found)}")))
            elif self.name is not None:
                name = self.name
            else:
                raise Err(DecodeError_Reject(at(f"no name at {self.name_pointer}")))
        else:
            name = self.name or ""
        signal_id: Optional[str] = None
        if self.id_pointer is not None:
            found = pointer(item, self.id_pointer)
            if found is _MISSING or found is None:
                signal_id = None
            elif isinstance(found, str):
                signal_id = found
            elif isinstance(found, (int, float)) and not isinstance(found, bool):
                signal_id = compact(found)
            else:
                raise Err(DecodeError_Reject(at(f"id at {self.id_pointer} is not a string: {compact(found)}")))
        params = {}
        for key, ptr in self.params:
            found = pointer(item, ptr)
            if found is not _MISSING:
                params[key] = found
        payload = None
        if self.payload_pointer is not None:
            found = pointer(item, self.payload_pointer)
            if found is not _MISSING:
                payload = compact(found)
        return Signal(name=name, id=signal_id, params=compact(params), payload=payload)


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="webhook-json",
            argument_shape="settings: name-pointer | name, id-pointer, params (JSON object of name -> pointer), payload-pointer, items-pointer",
            version="0.1.0",
        )


class Adapter(exports.Adapter):
    def decode(self, envelope: Envelope) -> List[Signal]:
        mapping = Mapping()
        try:
            body = json.loads(bytes(envelope.body))
        except ValueError as e:
            raise Err(DecodeError_Reject(f"the body is not JSON: {e}"))
        if mapping.items_pointer is None:
            return [mapping.one(body, None)]
        items = pointer(body, mapping.items_pointer)
        if not isinstance(items, list):
            raise Err(DecodeError_Reject(f"no array at {mapping.items_pointer}"))
        return [mapping.one(item, i) for i, item in enumerate(items)]
