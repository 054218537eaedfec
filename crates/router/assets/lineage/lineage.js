// The signalbox lineage page: reads the router's /v1 JSON routes and draws the
// lineage graph around one signal, subscription or firing as SVG, in columns
// producer → signal → subscription → firing → target, with the explain
// verdicts. No dependencies, no build step.
//
// Stable DOM for tests and tools: every node is <g data-node-id="kind:name"
// data-kind="...">, every edge <path data-edge="FROM->TO" data-kind="...">,
// every verdict <li data-verdict="SUB|NAME:SEQ" data-matches="true|false|unknown">,
// every search result <li data-signal="NAME:SEQ">.
//
// Address: ?signal=NAME:SEQ | ?sub=ID | ?firing=ID picks the focus;
// ?name=&params= fills the search (its first result is the focus when no other
// is given). The admin token comes from the input above (kept in
// sessionStorage for this tab) or from a #token= fragment, which is taken out
// of the address bar at once.
'use strict';

const COLUMNS = ['producer', 'signal', 'subscription', 'firing', 'target'];
const COLUMN_OF = { producer: 0, signal: 1, subscription: 2, wait: 2, firing: 3, target: 4 };
const NODE_W = 190;
const NODE_H = 34;
const COL_GAP = 64;
const ROW_GAP = 16;
const PAD = 20;
const HEAD = 30;
const LANE = 16; // room above and below the nodes for edges that skip a column
const LABEL_MAX = 25;
const SVG_NS = 'http://www.w3.org/2000/svg';
const TOKEN_KEY = 'signalbox.lineage.token';
// The router's root, also behind a proxy that adds a path prefix.
const ROOT = location.pathname.replace(/lineage\/?$/, '');

const byId = (id) => document.getElementById(id);

// ---------------------------------------------------------------- data access

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Moves a `#token=` fragment into sessionStorage and out of the address bar. */
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (!fragment.has('token')) return;
  sessionStorage.setItem(TOKEN_KEY, fragment.get('token'));
  fragment.delete('token');
  const rest = fragment.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
}

/** GET (or POST with `body`) a /v1 route as JSON, with the bearer token. */
async function api(path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const init = body === undefined ? { headers } : { method: 'POST', headers, body };
  const response = await fetch(ROOT + path, init);
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    throw new ApiError(401, 'unauthorized: give the admin token above');
  }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

/** A query string from an object, leaving out empty values. */
function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return new URLSearchParams(pairs.map(([k, v]) => [k, String(v)])).toString();
}

/**
 * The search box's params as a pattern: `a=1 b.c=x` becomes
 * {"a": [1], "b": {"c": ["x"]}} (values parse as JSON when they can);
 * text starting with `{` is taken as a pattern as it is.
 */
function patternFrom(text) {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('{')) return trimmed;
  const pattern = {};
  for (const pair of trimmed.split(/\s+/)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ApiError(400, `params: expected key=value, got "${pair}"`);
    const path = pair.slice(0, eq).split('.');
    const raw = pair.slice(eq + 1);
    let value;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    if (value !== null && typeof value === 'object') value = raw;
    let at = pattern;
    for (const key of path.slice(0, -1)) {
      if (typeof at[key] !== 'object' || Array.isArray(at[key])) at[key] = {};
      at = at[key];
    }
    at[path[path.length - 1]] = [value];
  }
  return JSON.stringify(pattern);
}

let subscriptionList = null;

/** Every subscription (fetched once per page). */
async function subscriptions() {
  if (subscriptionList === null) {
    subscriptionList = (await api('v1/admin/sub.ls', '')).subscriptions || [];
  }
  return subscriptionList;
}

// ---------------------------------------------------------------- the graph

/** Nodes and edges by id, plus the explain verdicts gathered on the way. */
class Graph {
  constructor() {
    this.nodes = new Map();
    this.edges = new Map();
    this.verdicts = [];
  }

  addNode(node) {
    if (!this.nodes.has(node.id)) this.nodes.set(node.id, { id: node.id, kind: node.kind, label: node.label });
  }

  addEdge(edge) {
    const key = edge.from + '->' + edge.to;
    const known = this.edges.get(key);
    if (known) {
      if (edge.title && !known.title) known.title = edge.title;
      return;
    }
    this.edges.set(key, { key, from: edge.from, to: edge.to, kind: edge.kind, title: edge.title || '' });
  }

  /** Adds an export (`{nodes, edges}`); with `keep`, only the edges it accepts and their ends. */
  merge(exported, keep) {
    const nodes = new Map(exported.nodes.map((n) => [n.id, n]));
    for (const edge of exported.edges) {
      if (keep && !keep(edge)) continue;
      for (const end of [edge.from, edge.to]) {
        if (nodes.has(end)) this.addNode(nodes.get(end));
      }
      this.addEdge(edge);
    }
    if (!keep) exported.nodes.forEach((n) => this.addNode(n));
  }
}

const exportOf = (params) => api('v1/lineage/export?' + query({ format: 'json', ...params }));

/** Adds the producers of the signals already drawn (the first 25). */
async function addProducers(graph) {
  const signals = [...graph.nodes.values()].filter((n) => n.kind === 'signal').slice(0, 25);
  const exports = await Promise.all(signals.map((n) => exportOf({ signal: n.id.slice('signal:'.length) })));
  exports.forEach((e) => graph.merge(e, (edge) => edge.kind === 'produced'));
}

/**
 * Asks why `signalKey` did or did not match `sub`; a miss becomes a dashed
 * edge. A pair that cannot be explained (a removed subscription, a signal past
 * retention) is listed as such and drawn without a verdict edge.
 */
async function explain(graph, sub, signalKey, signalLabel) {
  let answer;
  try {
    answer = await api('v1/explain?' + query({ sub, signal: signalKey }));
  } catch (e) {
    if (e.status === 401) throw e;
    graph.verdicts.push({ sub, signal: signalKey, matches: 'unknown', verdict: 'cannot explain: ' + e.message });
    return;
  }
  const from = 'signal:' + signalKey;
  const to = 'subscription:' + sub;
  graph.verdicts.push({ sub, signal: signalKey, matches: answer.matches === true, verdict: answer.verdict || '' });
  graph.addNode({ id: from, kind: 'signal', label: signalLabel || signalKey });
  graph.addNode({ id: to, kind: 'subscription', label: sub });
  graph.addEdge({ from, to, kind: answer.matches ? 'matched' : 'no_match', title: answer.verdict });
}

/** What each kind of focus draws; each returns the focus node's id. */
const FOCUS = {
  async signal(graph, key) {
    graph.merge(await exportOf({ signal: key }));
    const name = key.slice(0, key.lastIndexOf(':'));
    const node = graph.nodes.get('signal:' + key);
    if (!node) throw new ApiError(404, `no stored signal ${key}`);
    for (const sub of await subscriptions()) {
      if (sub.signals.some((s) => s.name === name)) await explain(graph, sub.id, key, node.label);
    }
    return 'signal:' + key;
  },

  async sub(graph, id) {
    graph.merge(await exportOf({ sub: id, limit: 50 }));
    await addProducers(graph);
    const sub = (await subscriptions()).find((s) => s.id === id);
    if (!sub && graph.nodes.size <= 1) throw new ApiError(404, `no subscription ${id}`);
    // A removed subscription still shows its past firings, without verdicts.
    for (const name of new Set(sub ? sub.signals.map((s) => s.name) : [])) {
      const recent = await api('v1/signals/search?' + query({ name, limit: 10 }));
      for (const s of recent.signals) await explain(graph, id, s.signal, `${s.signal} (${s.id})`);
    }
    return 'subscription:' + id;
  },

  async firing(graph, id) {
    graph.merge(await exportOf({ firing: id }));
    if (!graph.nodes.has('firing:' + id)) throw new ApiError(404, `no firing ${id}`);
    await addProducers(graph);
    for (const edge of graph.edges.values()) {
      const sub = edge.kind === 'fired' && edge.to === 'firing:' + id && edge.from.startsWith('subscription:');
      if (!sub) continue;
      for (const input of [...graph.edges.values()].filter((e) => e.kind === 'fed' && e.to === 'firing:' + id)) {
        const key = input.from.slice('signal:'.length);
        await explain(graph, edge.from.slice('subscription:'.length), key, graph.nodes.get(input.from).label);
      }
    }
    return 'firing:' + id;
  },
};

// ---------------------------------------------------------------- layout

/**
 * Layered layout: one column per kind, rows ordered to reduce crossings by a
 * few barycentre sweeps (each node goes to the mean row of its neighbours in
 * the columns on one side, left to right, then right to left).
 */
function layout(graph) {
  const columns = COLUMNS.map(() => []);
  for (const node of graph.nodes.values()) columns[COLUMN_OF[node.kind] ?? 2].push(node);
  columns.forEach((col) => col.sort((a, b) => a.id.localeCompare(b.id)));
  const neighbours = new Map([...graph.nodes.keys()].map((id) => [id, []]));
  for (const e of graph.edges.values()) {
    if (neighbours.has(e.from) && neighbours.has(e.to)) {
      neighbours.get(e.from).push(e.to);
      neighbours.get(e.to).push(e.from);
    }
  }
  const row = new Map();
  const column = new Map();
  columns.forEach((col, c) => col.forEach((n, r) => { row.set(n.id, r); column.set(n.id, c); }));
  const sweep = (c, side) => {
    const weight = (n) => {
      const near = neighbours.get(n.id).filter((m) => Math.sign(column.get(m) - c) === side);
      return near.length ? near.reduce((sum, m) => sum + row.get(m), 0) / near.length : row.get(n.id);
    };
    const keyed = columns[c].map((n) => [weight(n), n]);
    keyed.sort((a, b) => a[0] - b[0] || a[1].id.localeCompare(b[1].id));
    columns[c] = keyed.map(([, n]) => n);
    columns[c].forEach((n, r) => row.set(n.id, r));
  };
  for (let pass = 0; pass < 4; pass++) {
    for (let c = 1; c < columns.length; c++) sweep(c, -1);
    for (let c = columns.length - 2; c >= 0; c--) sweep(c, 1);
  }
  const tallest = Math.max(1, ...columns.map((col) => col.length));
  const place = new Map();
  const extent = columns.map(() => null);
  columns.forEach((col, c) => {
    const offset = ((tallest - col.length) * (NODE_H + ROW_GAP)) / 2;
    col.forEach((n, r) => place.set(n.id, {
      x: PAD + c * (NODE_W + COL_GAP),
      y: PAD + HEAD + LANE + offset + r * (NODE_H + ROW_GAP),
    }));
    if (col.length) {
      extent[c] = { top: place.get(col[0].id).y, bottom: place.get(col[col.length - 1].id).y + NODE_H };
    }
  });
  return {
    place,
    extent,
    width: 2 * PAD + COLUMNS.length * NODE_W + (COLUMNS.length - 1) * COL_GAP,
    height: 2 * PAD + HEAD + 2 * LANE + tallest * (NODE_H + ROW_GAP) - ROW_GAP,
  };
}

/**
 * The SVG path of an edge: a curve from the right side of one node to the left
 * side of the next; an edge that skips columns runs along a lane above (or
 * below) the nodes of the columns it skips instead of through them.
 */
function edgePath(a, b, extent) {
  const x1 = a.x + NODE_W;
  const y1 = a.y + NODE_H / 2;
  const x2 = b.x;
  const y2 = b.y + NODE_H / 2;
  const curve = (xa, ya, xb, yb) => {
    const bend = Math.max(24, Math.abs(xb - xa) / 2);
    return `C${xa + bend},${ya} ${xb - bend},${yb} ${xb},${yb}`;
  };
  const c1 = Math.round((a.x - PAD) / (NODE_W + COL_GAP));
  const c2 = Math.round((b.x - PAD) / (NODE_W + COL_GAP));
  const skipped = extent.slice(c1 + 1, c2).filter(Boolean);
  if (!skipped.length) return `M${x1},${y1} ${curve(x1, y1, x2, y2)}`;
  const top = Math.min(...skipped.map((e) => e.top)) - LANE / 2;
  const bottom = Math.max(...skipped.map((e) => e.bottom)) + LANE / 2;
  const middle = (y1 + y2) / 2;
  const lane = Math.abs(middle - top) <= Math.abs(bottom - middle) ? top : bottom;
  const xa = PAD + (c1 + 1) * (NODE_W + COL_GAP) - COL_GAP / 4;
  const xb = PAD + c2 * (NODE_W + COL_GAP) - (3 * COL_GAP) / 4;
  return `M${x1},${y1} ${curve(x1, y1, xa, lane)} L${xb},${lane} ${curve(xb, lane, x2, y2)}`;
}

// ---------------------------------------------------------------- drawing

function svg(tag, attributes = {}, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function html(tag, attributes = {}, text) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const shorten = (text) => (text.length > LABEL_MAX ? text.slice(0, LABEL_MAX - 1) + '…' : text);

/** Where clicking a node goes: a new focus, keeping the search. */
function focusLink(node) {
  const search = new URLSearchParams(location.search);
  const keep = { name: search.get('name'), params: search.get('params') };
  const name = node.id.slice(node.kind.length + 1);
  if (node.kind === 'signal') return '?' + query({ ...keep, signal: name });
  if (node.kind === 'subscription') return '?' + query({ ...keep, sub: name });
  if (node.kind === 'firing') return '?' + query({ ...keep, firing: name });
  return null;
}

function draw(graph, focusId) {
  const { place, extent, width, height } = layout(graph);
  const root = byId('graph');
  root.replaceChildren();
  // Drawn at its natural size, shrunk to fit a narrower window.
  root.setAttribute('width', width);
  root.setAttribute('height', height);
  root.setAttribute('viewBox', `0 0 ${width} ${height}`);
  root.style.maxWidth = '100%';
  root.style.height = 'auto';
  const defs = svg('defs', {}, root);
  for (const id of ['arrow', 'arrow-miss']) {
    const marker = svg('marker', {
      id, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
    }, defs);
    svg('path', { d: 'M0,0 L10,5 L0,10 z', class: id }, marker);
  }
  COLUMNS.forEach((title, c) => {
    const t = svg('text', { x: PAD + c * (NODE_W + COL_GAP) + NODE_W / 2, y: PAD + 12, class: 'column-title' }, root);
    t.textContent = title;
  });
  const edges = svg('g', { class: 'edges' }, root);
  for (const e of graph.edges.values()) {
    const a = place.get(e.from);
    const b = place.get(e.to);
    if (!a || !b) continue;
    const path = svg('path', {
      d: edgePath(a, b, extent),
      class: `edge edge-${e.kind}`,
      'data-edge': e.key,
      'data-kind': e.kind,
      'marker-end': e.kind === 'no_match' ? 'url(#arrow-miss)' : 'url(#arrow)',
    }, edges);
    svg('title', {}, path).textContent = e.title ? `${e.kind}: ${e.title}` : e.kind;
  }
  const nodes = svg('g', { class: 'nodes' }, root);
  for (const n of graph.nodes.values()) {
    const p = place.get(n.id);
    const g = svg('g', {
      class: `node node-${n.kind}${n.id === focusId ? ' focus' : ''}`,
      'data-node-id': n.id,
      'data-kind': n.kind,
      transform: `translate(${p.x},${p.y})`,
    }, nodes);
    svg('title', {}, g).textContent = `${n.kind} ${n.label}`;
    svg('rect', { width: NODE_W, height: NODE_H, rx: 6 }, g);
    svg('text', { x: 10, y: NODE_H / 2 + 5 }, g).textContent = shorten(n.label);
    const link = focusLink(n);
    if (link) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'link');
      g.addEventListener('click', () => { location.search = link; });
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') location.search = link; });
    }
  }
}

function showResults(signals) {
  const list = byId('results');
  list.replaceChildren();
  const search = new URLSearchParams(location.search);
  for (const s of signals) {
    const li = html('li', { 'data-signal': s.signal });
    const link = html('a', { href: '?' + query({ name: search.get('name'), params: search.get('params'), signal: s.signal }) }, s.signal);
    li.append(link, ' ', html('span', { class: 'id' }, s.id), ' ', html('time', { datetime: s.received_at }, s.received_at));
    li.append(html('code', {}, JSON.stringify(s.params)));
    if (s.matched.length) li.append(html('span', { class: 'matched' }, '→ ' + s.matched.join(', ')));
    list.append(li);
  }
  if (!signals.length) list.append(html('li', { class: 'empty' }, 'no stored signal matches'));
}

function showVerdicts(verdicts) {
  const list = byId('verdicts');
  list.replaceChildren();
  for (const v of verdicts) {
    const li = html('li', { 'data-verdict': `${v.sub}|${v.signal}`, 'data-matches': v.matches });
    li.append(html('strong', {}, `${v.signal} → ${v.sub}`), html('span', {}, v.verdict));
    list.append(li);
  }
  if (!verdicts.length) list.append(html('li', { class: 'empty' }, 'no subscription listens to these signals'));
}

function status(text, state) {
  const el = byId('status');
  el.textContent = text;
  el.dataset.state = state;
}

// ---------------------------------------------------------------- start

async function loadNames() {
  const reply = await api('v1/admin/signals.ls', '');
  byId('names').replaceChildren(...(reply.names || []).map((n) => html('option', { value: n.name })));
}

async function main() {
  takeTokenFromFragment();
  const tokenInput = byId('token');
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || '';
  byId('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
    else sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  const search = new URLSearchParams(location.search);
  byId('name').value = search.get('name') || '';
  byId('params').value = search.get('params') || '';
  try {
    await loadNames();
    const found = await api('v1/signals/search?' + query({
      name: search.get('name'), where: patternFrom(search.get('params') || ''), limit: 50,
    }));
    showResults(found.signals);
    let kind = ['signal', 'sub', 'firing'].find((k) => search.get(k));
    let value = kind ? search.get(kind) : null;
    if (!kind && found.signals.length) {
      kind = 'signal';
      value = found.signals[0].signal;
    }
    if (!kind) {
      status('No stored signals yet.', 'ok');
      return;
    }
    const graph = new Graph();
    const focusId = await FOCUS[kind](graph, value);
    const words = { signal: 'signal', sub: 'subscription', firing: 'firing' };
    byId('focus').textContent = `Lineage of ${words[kind]} ${value}`;
    draw(graph, focusId);
    showVerdicts(graph.verdicts);
    status(`${graph.nodes.size} nodes, ${graph.edges.size} edges`, 'ok');
  } catch (e) {
    status(e.message, 'error');
  }
}

main();
