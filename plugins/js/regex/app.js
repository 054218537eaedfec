// The `regex` operator in JavaScript (jco / ComponentizeJS): the sibling of
// plugins/operators/regex and plugins/python/regex, passing the same tests.
//
// Argument: a JSON string holding a pattern, anchored at both ends, compiled
// once in `prepare` (a JavaScript RegExp with the `u` flag, which rejects the
// loose escapes of legacy syntax). Value: a string; any other value does not
// match. JavaScript regular expressions backtrack: a pathological pattern can
// be slow, and the host's deadline stops it.
//
// ComponentizeJS conventions: the world's `describe` is an exported function,
// the exported interface `conditions` an exported object holding the resource
// class; a `result` is `ok` when the function returns and `err` with the
// thrown value when it throws a non-Error value (a thrown Error traps).

export function describe() {
  return {
    name: 'regex',
    argumentShape: 'a regular expression string, anchored at both ends; the value is a string',
    version: '0.1.0',
  };
}

class Condition {
  #regex;

  constructor(regex) {
    this.#regex = regex;
  }

  static prepare(argument) {
    let pattern;
    try {
      pattern = JSON.parse(argument);
    } catch (e) {
      throw `the argument is not JSON: ${e.message}`;
    }
    if (typeof pattern !== 'string') {
      throw 'the argument must be a regular expression string';
    }
    try {
      return new Condition(new RegExp(`^(?:${pattern})$`, 'u'));
    } catch (e) {
      throw `not a valid regular expression: ${e.message}`;
    }
  }

  test(value) {
    return value.tag === 'text' && this.#regex.test(value.val);
  }
}

export const conditions = { Condition };
