// The `{{name}}` operator (jco / ComponentizeJS): matches a string that
// contains the argument.
//
// In a subscription pattern: `{"{{name}}": "prod"}` matches the values
// `"prod"`, `"eu-prod-1"`, ... Argument: a JSON string (an error otherwise,
// shown to whoever creates the subscription). Value: a string; any other value
// does not match.
//
// ComponentizeJS conventions: the world's `describe` is an exported function,
// the exported interface `conditions` an exported object holding the resource
// class; a WIT `value` arrives as `{tag, val}` (`tag` 'text', 'integer', ...);
// a `result` is `ok` when the function returns and `err` with the thrown value
// when it throws a string (a thrown Error traps).
//
// `prepare` runs once per argument (compile whatever is expensive there);
// `test` runs once per value and must be quick (the host stops a call after
// 5 ms by default).

export function describe() {
  return {
    name: '{{name}}',
    argumentShape: 'a string; the value matches when it is a string containing it',
    version: '0.1.0',
  };
}

class Condition {
  #needle;

  constructor(needle) {
    this.#needle = needle;
  }

  static prepare(argument) {
    // The argument arrives as JSON text: `"prod"` with its quotes.
    let needle;
    try {
      needle = JSON.parse(argument);
    } catch (e) {
      throw `the argument is not JSON: ${e.message}`;
    }
    if (typeof needle !== 'string') {
      throw `the argument must be a string, not ${JSON.stringify(needle)}`;
    }
    return new Condition(needle);
  }

  test(value) {
    // Numbers, booleans, null, arrays and objects never match.
    return value.tag === 'text' && value.val.includes(this.#needle);
  }
}

export const conditions = { Condition };
