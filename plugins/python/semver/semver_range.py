"""Version ranges with the syntax and semantics of the Rust `semver` crate
(1.0), which the Rust `semver` operator uses: a port of its parser
(`VersionReq::parse`, `Version::parse`), of its matching (`VersionReq::matches`)
and of its error messages, plus the operator's own steps around them
(comparators separated by spaces or commas, an operator written apart from its
version, `v` prefix and missing minor/patch in the value)."""

from typing import List, NamedTuple, Optional, Tuple

U64_MAX = 2**64 - 1
MAX_COMPARATORS = 32

# Rust's `char::is_whitespace` (the Unicode White_Space property), for `trim`.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

MAJOR = "major version number"
MINOR = "minor version number"
PATCH = "patch version number"
PRE = "pre-release identifier"
BUILD = "build metadata"

EXACT, GREATER, GREATER_EQ, LESS, LESS_EQ, TILDE, CARET, WILDCARD = range(8)

_DIGITS = "0123456789"
_IDENT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
_WILDCARDS = "*xX"


class SemverError(Exception):
    pass


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    pre: str


class Comparator(NamedTuple):
    op: int
    major: int
    minor: Optional[int]
    patch: Optional[int]
    pre: str


def rust_debug_char(ch: str) -> str:
    """A char as Rust's `{:?}` shows it (`'q'`)."""
    escapes = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "'": "\\'", "\\": "\\\\"}
    if ch in escapes:
        return f"'{escapes[ch]}'"
    if ch.isprintable():
        return f"'{ch}'"
    return "'\\u{%x}'" % ord(ch)


def rust_debug_str(text: str) -> str:
    """A string as Rust's `{:?}` shows it (`"two"`)."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append("\\u{%x}" % ord(ch))
    return '"' + "".join(out) + '"'


def _at(text: str, i: int) -> Optional[str]:
    return text[i] if i < len(text) else None


def _numeric(text: str, i: int, pos: str) -> Tuple[int, int]:
    start = i
    value = 0
    while i < len(text) and text[i] in _DIGITS:
        if value == 0 and i > start:
            raise SemverError(f"invalid leading zero in {pos}")
        value = value * 10 + ord(text[i]) - 48
        if value > U64_MAX:
            raise SemverError(f"value of {pos} exceeds u64::MAX")
        i += 1
    if i > start:
        return value, i
    if i < len(text):
        raise SemverError(f"unexpected character {rust_debug_char(text[i])} while parsing {pos}")
    raise SemverError(f"unexpected end of input while parsing {pos}")


def _dot(text: str, i: int, pos: str) -> int:
    ch = _at(text, i)
    if ch == ".":
        return i + 1
    if ch is not None:
        raise SemverError(f"unexpected character {rust_debug_char(ch)} after {pos}")
    raise SemverError(f"unexpected end of input while parsing {pos}")


def _identifier(text: str, start: int, pos: str) -> Tuple[str, int]:
    accumulated = 0
    segment = 0
    nondigit = False
    while True:
        ch = _at(text, start + accumulated + segment)
        if ch is not None and ch in _IDENT:
            segment += 1
            nondigit = True
        elif ch is not None and ch in _DIGITS:
            segment += 1
        else:
            if segment == 0:
                if accumulated == 0 and ch != ".":
                    return "", start
                raise SemverError(f"empty identifier segment in {pos}")
            if pos == PRE and segment > 1 and not nondigit and text[start + accumulated] == "0":
                raise SemverError(f"invalid leading zero in {pos}")
            accumulated += segment
            if ch == ".":
                accumulated += 1
                segment = 0
                nondigit = False
            else:
                return text[start : start + accumulated], start + accumulated


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] == " ":
        i += 1
    return i


def parse_semver(text: str) -> Version:
    """`semver::Version::parse`: exactly `major.minor.patch[-pre][+build]`."""
    if text == "":
        raise SemverError("empty string, expected a semver version")
    pos = MAJOR
    major, i = _numeric(text, 0, pos)
    i = _dot(text, i, pos)
    pos = MINOR
    minor, i = _numeric(text, i, pos)
    i = _dot(text, i, pos)
    pos = PATCH
    patch, i = _numeric(text, i, pos)
    pre = ""
    if i < len(text) and text[i] == "-":
        pos = PRE
        pre, i = _identifier(text, i + 1, pos)
        if pre == "":
            raise SemverError(f"empty identifier segment in {pos}")
    if i < len(text) and text[i] == "+":
        pos = BUILD
        build, i = _identifier(text, i + 1, pos)
        if build == "":
            raise SemverError(f"empty identifier segment in {pos}")
    if i < len(text):
        raise SemverError(f"unexpected character {rust_debug_char(text[i])} after {pos}")
    return Version(major, minor, patch, pre)


def _op(text: str, i: int) -> Tuple[int, int]:
    ch = _at(text, i)
    if ch == "=":
        return EXACT, i + 1
    if ch == ">":
        return (GREATER_EQ, i + 2) if _at(text, i + 1) == "=" else (GREATER, i + 1)
    if ch == "<":
        return (LESS_EQ, i + 2) if _at(text, i + 1) == "=" else (LESS, i + 1)
    if ch == "~":
        return TILDE, i + 1
    if ch == "^":
        return CARET, i + 1
    return CARET, i


def _comparator(text: str, start: int) -> Tuple[Comparator, str, int]:
    op, i = _op(text, start)
    default_op = i == start
    i = _skip_spaces(text, i)
    pos = MAJOR
    major, i = _numeric(text, i, pos)
    has_wildcard = False
    minor: Optional[int] = None
    patch: Optional[int] = None
    if _at(text, i) == ".":
        i += 1
        pos = MINOR
        ch = _at(text, i)
        if ch is not None and ch in _WILDCARDS:
            has_wildcard = True
            if default_op:
                op = WILDCARD
            i += 1
        else:
            minor, i = _numeric(text, i, pos)
    if _at(text, i) == ".":
        i += 1
        pos = PATCH
        ch = _at(text, i)
        if ch is not None and ch in _WILDCARDS:
            if default_op:
                op = WILDCARD
            i += 1
        elif has_wildcard:
            raise SemverError("unexpected character after wildcard in version req")
        else:
            patch, i = _numeric(text, i, pos)
    pre = ""
    if patch is not None and _at(text, i) == "-":
        pos = PRE
        pre, i = _identifier(text, i + 1, pos)
        if pre == "":
            raise SemverError(f"empty identifier segment in {pos}")
    if patch is not None and _at(text, i) == "+":
        pos = BUILD
        build, i = _identifier(text, i + 1, pos)
        if build == "":
            raise SemverError(f"empty identifier segment in {pos}")
    i = _skip_spaces(text, i)
    return Comparator(op, major, minor, patch, pre), pos, i


def parse_req(text: str) -> List[Comparator]:
    """`semver::VersionReq::parse`: comparators separated by commas."""
    i = _skip_spaces(text, 0)
    ch = _at(text, i)
    if ch is not None and ch in _WILDCARDS:
        rest = _skip_spaces(text, i + 1)
        if rest == len(text):
            return []
        if text[rest] == ",":
            raise SemverError(f"wildcard req ({ch}) must be the only comparator in the version req")
        raise SemverError("unexpected character after wildcard in version req")
    comparators: List[Comparator] = []
    while True:
        try:
            comparator, pos, i = _comparator(text, i)
        except SemverError:
            ch = _at(text, i)
            if ch is not None and ch in _WILDCARDS:
                rest = _skip_spaces(text, i + 1)
                if rest == len(text) or text[rest] == ",":
                    raise SemverError(
                        f"wildcard req ({ch}) must be the only comparator in the version req"
                    )
            raise
        comparators.append(comparator)
        if i == len(text):
            return comparators
        if text[i] != ",":
            raise SemverError(f"expected comma after {pos}, found {rust_debug_char(text[i])}")
        i = _skip_spaces(text, i + 1)
        if len(comparators) == MAX_COMPARATORS:
            raise SemverError("excessive number of version comparators")


def parse_range(text: str) -> List[Comparator]:
    """One alternative of the operator's argument: comparators separated by
    spaces or commas, an operator written apart from its version joined to it."""
    parts: List[str] = []
    for token in text.replace(",", " ").split(" "):
        if token == "":
            continue
        if parts and all(c in "<>=~^" for c in parts[-1]):
            parts[-1] += token
            continue
        parts.append(token)
    if not parts:
        raise SemverError("the range is empty")
    try:
        return parse_req(", ".join(parts))
    except SemverError as e:
        raise SemverError(f"not a version range ({rust_debug_str(text)}): {e}")


def parse_version(text: str) -> Version:
    """The operator's value: `v` prefix allowed, a missing minor or patch is 0."""
    t = text.strip(RUST_WHITESPACE)
    if t.startswith("v"):
        t = t[1:]
    core_end = len(t)
    for i, ch in enumerate(t):
        if ch == "-" or ch == "+":
            core_end = i
            break
    dots = t[:core_end].count(".")
    if dots == 0:
        padded = t[:core_end] + ".0.0" + t[core_end:]
    elif dots == 1:
        padded = t[:core_end] + ".0" + t[core_end:]
    else:
        padded = t
    try:
        return parse_semver(padded)
    except SemverError as e:
        raise SemverError(f"not a version ({rust_debug_str(text)}): {e}")


def compare_pre(a: str, b: str) -> int:
    """`semver::Prerelease`'s order: -1, 0 or 1 (no pre-release is highest)."""
    if a == b:
        return 0
    if a == "":
        return 1
    if b == "":
        return -1
    left = a.split(".")
    right = b.split(".")
    for n, lhs in enumerate(left):
        if n >= len(right):
            return 1
        rhs = right[n]
        lnum = all(c in _DIGITS for c in lhs)
        rnum = all(c in _DIGITS for c in rhs)
        if lnum and rnum:
            if len(lhs) != len(rhs):
                return -1 if len(lhs) < len(rhs) else 1
            if lhs != rhs:
                return -1 if lhs < rhs else 1
        elif lnum:
            return -1
        elif rnum:
            return 1
        elif lhs != rhs:
            return -1 if lhs < rhs else 1
    return 0 if len(left) == len(right) else -1


def _exact(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return False
    if c.minor is not None and v.minor != c.minor:
        return False
    if c.patch is not None and v.patch != c.patch:
        return False
    return v.pre == c.pre


def _greater(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return v.major > c.major
    if c.minor is None:
        return False
    if v.minor != c.minor:
        return v.minor > c.minor
    if c.patch is None:
        return False
    if v.patch != c.patch:
        return v.patch > c.patch
    return compare_pre(v.pre, c.pre) > 0


def _less(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return v.major < c.major
    if c.minor is None:
        return False
    if v.minor != c.minor:
        return v.minor < c.minor
    if c.patch is None:
        return False
    if v.patch != c.patch:
        return v.patch < c.patch
    return compare_pre(v.pre, c.pre) < 0


def _tilde(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return False
    if c.minor is not None and v.minor != c.minor:
        return False
    if c.patch is not None and v.patch != c.patch:
        return v.patch > c.patch
    return compare_pre(v.pre, c.pre) >= 0


def _caret(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return False
    if c.minor is None:
        return True
    if c.patch is None:
        return v.minor >= c.minor if c.major > 0 else v.minor == c.minor
    if c.major > 0:
        if v.minor != c.minor:
            return v.minor > c.minor
        if v.patch != c.patch:
            return v.patch > c.patch
    elif c.minor > 0:
        if v.minor != c.minor:
            return False
        if v.patch != c.patch:
            return v.patch > c.patch
    elif v.minor != c.minor or v.patch != c.patch:
        return False
    return compare_pre(v.pre, c.pre) >= 0


def _matches_one(c: Comparator, v: Version) -> bool:
    if c.op == EXACT or c.op == WILDCARD:
        return _exact(c, v)
    if c.op == GREATER:
        return _greater(c, v)
    if c.op == GREATER_EQ:
        return _exact(c, v) or _greater(c, v)
    if c.op == LESS:
        return _less(c, v)
    if c.op == LESS_EQ:
        return _exact(c, v) or _less(c, v)
    if c.op == TILDE:
        return _tilde(c, v)
    return _caret(c, v)


def matches(req: List[Comparator], v: Version) -> bool:
    """`semver::VersionReq::matches`: every comparator matches, and a
    pre-release only when a comparator on the same major.minor.patch has one."""
    for c in req:
        if not _matches_one(c, v):
            return False
    if v.pre == "":
        return True
    for c in req:
        if c.major == v.major and c.minor == v.minor and c.patch == v.patch and c.pre != "":
            return True
    return False
