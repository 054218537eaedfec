// The `{{name}}` source adapter (jco / ComponentizeJS): one JSON object body
// becomes one signal.
//
// Settings (`--set KEY=VALUE` with `signalbox plugin test|deploy`, read with
// `configGet`): `name` (required), the name of the signal. The body must be a
// JSON object; it becomes the signal's params, and its `id` field, when it is
// a string, the signal's id (else the host assigns one).
//
// A body that is not a JSON object is rejected (bad input stays bad: HTTP 422,
// dead-letter); a missing setting asks for a retry (a configuration problem
// the operator can fix: HTTP 503, redelivery). A `decode-error` is thrown as
// the variant value itself ({tag, val}); a thrown Error would trap.

import { configGet, log } from 'signalbox:plugin/host@0.1.0';

export function describe() {
  return {
    name: '{{name}}',
    argumentShape: 'settings: name (the signal name); the body is a JSON object, its params',
    version: '0.1.0',
  };
}

function decode(envelope) {
  const name = configGet('name');
  if (name === undefined || name === null) {
    throw { tag: 'retry', val: 'setting name is required' };
  }
  let body;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(envelope.body));
  } catch (e) {
    throw { tag: 'reject', val: `the body is not JSON: ${e.message}` };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw { tag: 'reject', val: 'the body must be a JSON object' };
  }
  const id = typeof body.id === 'string' ? body.id : undefined;
  log('debug', `${envelope.body.length} bytes from ${envelope.topic} -> ${name}`);
  return [{ name, id, params: JSON.stringify(body), payload: undefined }];
}

export const adapter = { decode };
