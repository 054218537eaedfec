// The `webhook-json` adapter in JavaScript (jco / ComponentizeJS): the sibling
// of plugins/adapters/webhook-json and plugins/python/webhook-json, with the
// same settings and passing the same tests.
//
// Settings (from `config-get`): `name-pointer` or `name` (one required),
// `id-pointer`, `params` (a JSON object mapping param names to JSON pointers),
// `payload-pointer`, `items-pointer` (one signal per element of that array, the
// other pointers relative to the element). A body that is not JSON, or a
// missing name, is rejected; a missing or bad setting asks for a retry.
//
// A `decode-error` is thrown as the variant value itself ({tag, val}); a
// thrown Error would trap.

import { configGet } from 'signalbox:plugin/host@0.1.0';

const MISSING = Symbol('missing');

const reject = (message) => ({ tag: 'reject', val: message });
const retry = (message) => ({ tag: 'retry', val: message });

// Resolves an RFC 6901 JSON pointer; MISSING when nothing is there.
function pointer(doc, ptr) {
  if (ptr === '') return doc;
  if (!ptr.startsWith('/')) return MISSING;
  for (const raw of ptr.slice(1).split('/')) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(doc)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= doc.length) return MISSING;
      doc = doc[Number(token)];
    } else if (doc !== null && typeof doc === 'object') {
      if (!Object.hasOwn(doc, token)) return MISSING;
      doc = doc[token];
    } else {
      return MISSING;
    }
  }
  return doc;
}

const setting = (key) => configGet(key) ?? undefined;

class Mapping {
  constructor() {
    this.params = [];
    const text = setting('params');
    if (text !== undefined) {
      let obj;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        throw retry(`setting params is not a JSON object: ${e.message}`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        throw retry('setting params is not a JSON object');
      }
      for (const [key, ptr] of Object.entries(obj)) {
        if (typeof ptr !== 'string') {
          throw retry(`setting params.${key} must be a JSON pointer string`);
        }
        this.params.push([key, ptr]);
      }
    }
    this.namePointer = setting('name-pointer');
    this.name = setting('name');
    this.idPointer = setting('id-pointer');
    this.payloadPointer = setting('payload-pointer');
    this.itemsPointer = setting('items-pointer');
    if (this.namePointer === undefined && this.name === undefined) {
      throw retry('setting name-pointer or name is required');
    }
  }

  one(item, index) {
    const at = (what) => (index === undefined ? what : `item ${index}: ${what}`);
    let name;
    if (this.namePointer !== undefined) {
      const found = pointer(item, this.namePointer);
      if (typeof found === 'string') {
        name = found;
      } else if (found !== MISSING) {
        throw reject(at(`name at ${this.namePointer} is not a string: ${JSON.stringify(found)}`));
      } else if (this.name !== undefined) {
        name = this.name;
      } else {
        throw reject(at(`no name at ${this.namePointer}`));
      }
    } else {
      name = this.name;
    }
    let id;
    if (this.idPointer !== undefined) {
      const found = pointer(item, this.idPointer);
      if (found === MISSING || found === null) {
        id = undefined;
      } else if (typeof found === 'string') {
        id = found;
      } else if (typeof found === 'number') {
        id = JSON.stringify(found);
      } else {
        throw reject(at(`id at ${this.idPointer} is not a string: ${JSON.stringify(found)}`));
      }
    }
    const params = {};
    for (const [key, ptr] of this.params) {
      const found = pointer(item, ptr);
      if (found !== MISSING) params[key] = found;
    }
    let payload;
    if (this.payloadPointer !== undefined) {
      const found = pointer(item, this.payloadPointer);
      if (found !== MISSING) payload = JSON.stringify(found);
    }
    return { name, id, params: JSON.stringify(params), payload };
  }
}

export function describe() {
  return {
    name: 'webhook-json',
    argumentShape:
      'settings: name-pointer | name, id-pointer, params (JSON object of name -> pointer), payload-pointer, items-pointer',
    version: '0.1.0',
  };
}

function decode(envelope) {
  const mapping = new Mapping();
  let body;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(envelope.body));
  } catch (e) {
    throw reject(`the body is not JSON: ${e.message}`);
  }
  if (mapping.itemsPointer === undefined) return [mapping.one(body, undefined)];
  const items = pointer(body, mapping.itemsPointer);
  if (!Array.isArray(items)) throw reject(`no array at ${mapping.itemsPointer}`);
  return items.map((item, i) => mapping.one(item, i));
}

export const adapter = { decode };
