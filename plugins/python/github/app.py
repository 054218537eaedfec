"""The `github` adapter in Python (componentize-py): the sibling of
plugins/adapters/github, with the same setting and passing the same tests.

Settings: `secret` (required): the webhook secret. Every request must carry
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; a missing or wrong
signature is rejected (compared in constant time with `hmac.compare_digest`).
The HMAC is computed here (RFC 2104 over `hashlib.sha256`): `hmac.new` traps
inside componentize-py 0.25.1's runtime (a wasm `unreachable` in native code,
not a Python exception), while `hashlib.sha256` and `hmac.compare_digest` work.
The `X-GitHub-Event` header picks the event:
- `push` -> `github.push` {repository, ref, branch?, tag?, before, after, pusher, commits}
- `pull_request` -> `github.pull_request` {repository, action, number, merged, base, head, author}
- `release` -> `github.release` {repository, action, tag, prerelease, draft}
- `ping` and every other event -> no signal (accepted and dropped).

The signal id is the `X-GitHub-Delivery` header; the payload is the body.
Without the `secret` setting every message asks for a retry.
"""

import hashlib
import hmac
import json
from typing import Any, Dict, List, Optional, Tuple

import wit_world
from wit_world import exports
from wit_world.exports.adapter import DecodeError_Reject, DecodeError_Retry, Envelope, Signal
from wit_world.imports.host import Level, config_get, log
from wit_world.imports.types import Description
from componentize_py_types import Err

from strict_json import JsonError, loads

_HEX = frozenset("0123456789abcdefABCDEF")
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def header(envelope: Envelope, name: str) -> Optional[str]:
    """The first header with this name, compared ASCII case-insensitively."""
    for key, value in envelope.headers:
        if key.translate(_ASCII_LOWER) == name:
            return value
    return None


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104); the same bytes as `hmac.new(key, message, hashlib.sha256)`."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    inner.update(message)
    outer = hashlib.sha256(key.translate(_OPAD))
    outer.update(inner.digest())
    return outer.digest()


def verify(secret: str, body: bytes, signature: Optional[str]) -> None:
    if signature is None:
        raise Err(DecodeError_Reject("missing X-Hub-Signature-256 header"))
    if not signature.startswith("sha256="):
        raise Err(DecodeError_Reject("X-Hub-Signature-256 must start with sha256="))
    hex_sig = signature[len("sha256=") :]
    if len(hex_sig) % 2 != 0 or not all(c in _HEX for c in hex_sig):
        raise Err(DecodeError_Reject("X-Hub-Signature-256 is not hex"))
    expected = bytes.fromhex(hex_sig)
    actual = hmac_sha256(secret.encode("utf-8"), body)
    if not hmac.compare_digest(actual, expected):
        raise Err(DecodeError_Reject("signature mismatch"))


def at(doc: Any, *path: str) -> Any:
    """The value at a path of object keys; None (JSON null) when absent."""
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def flag(doc: Any, *path: str) -> bool:
    value = at(doc, *path)
    return value if isinstance(value, bool) else False


def params_for(event: str, body: Any) -> Optional[Tuple[str, Dict[str, Any]]]:
    repository = at(body, "repository", "full_name")
    if event == "push":
        git_ref = at(body, "ref")
        if not isinstance(git_ref, str):
            git_ref = ""
        commits = at(body, "commits")
        params = {
            "repository": repository,
            "ref": git_ref,
            "before": at(body, "before"),
            "after": at(body, "after"),
            "pusher": at(body, "pusher", "name"),
            "commits": len(commits) if isinstance(commits, list) else 0,
        }
        if git_ref.startswith("refs/heads/"):
            params["branch"] = git_ref[len("refs/heads/") :]
        if git_ref.startswith("refs/tags/"):
            params["tag"] = git_ref[len("refs/tags/") :]
    elif event == "pull_request":
        params = {
            "repository": repository,
            "action": at(body, "action"),
            "number": at(body, "number"),
            "merged": flag(body, "pull_request", "merged"),
            "base": at(body, "pull_request", "base", "ref"),
            "head": at(body, "pull_request", "head", "ref"),
            "author": at(body, "pull_request", "user", "login"),
        }
    elif event == "release":
        params = {
            "repository": repository,
            "action": at(body, "action"),
            "tag": at(body, "release", "tag_name"),
            "prerelease": flag(body, "release", "prerelease"),
            "draft": flag(body, "release", "draft"),
        }
    else:
        return None
    return f"github.{event}", {k: v for k, v in params.items() if v is not None}


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            name="github",
            argument_shape="settings: secret (the webhook secret); events push, pull_request, release",
            version="0.1.0",
        )


class Adapter(exports.Adapter):
    def decode(self, envelope: Envelope) -> List[Signal]:
        secret = config_get("secret")
        if secret is None:
            raise Err(DecodeError_Retry("setting secret is not configured"))
        body_bytes = bytes(envelope.body)
        verify(secret, body_bytes, header(envelope, "x-hub-signature-256"))
        event = header(envelope, "x-github-event")
        if event is None:
            raise Err(DecodeError_Reject("missing X-GitHub-Event header"))
        try:
            body = loads(body_bytes)
        except JsonError as e:
            raise Err(DecodeError_Reject(f"the body is not JSON: {e}"))
        found = params_for(event, body)
        if found is None:
            log(Level.DEBUG, f"ignoring GitHub event {event}")
            return []
        name, params = found
        return [
            Signal(
                name=name,
                id=header(envelope, "x-github-delivery"),
                params=compact(params),
                payload=compact(body),
            )
        ]
