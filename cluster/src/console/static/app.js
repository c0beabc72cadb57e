// The console page: reads the token once (URL fragment or the form), draws each snapshot the server pushes, and
// turns every button into one JSON POST to the console server: the same endpoints curl can call.
import { openStream } from './stream.js';
import { drawTopology } from './topology.js';

const $ = (id) => document.getElementById(id);
const KEY = 'chaos-console-token';
let token = null;
let meta = null;
let lastSnapshot = null;
/** Partition groups drawn by clicking nodes: node -> group index. */
const groups = new Map();

// The fragment never reaches a server; take it out of the address bar (and history) at once.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  sessionStorage.setItem(KEY, fromHash);
  history.replaceState(null, '', location.pathname);
}
token = sessionStorage.getItem(KEY);

function say(text, error = false) {
  const m = $('message');
  m.textContent = text;
  m.className = error ? 'error' : '';
}

async function api(path, body) {
  const init = { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const data = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (res.status === 401) showLogin('the token was refused');
  if (!res.ok) throw new Error(data?.error ?? `HTTP ${res.status}`);
  return data;
}

/** Runs a steering action and reports its outcome in the header. */
async function act(label, path, body) {
  say(`${label}…`);
  try {
    await api(path, body);
    say(`${label}: done`);
  } catch (err) {
    say(`${label}: ${err.message}`, true);
  }
}

function option(select, value, text = value) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  select.append(o);
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text ?? '—';
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

const secs = (ms) => (ms === null ? 'until removed' : `${Math.ceil(ms / 1000)} s left`);

function renderRelays(s) {
  const body = $('relays').tBodies[0];
  body.replaceChildren();
  for (const n of s.nodes) {
    const tr = document.createElement('tr');
    tr.dataset.node = n.node;
    cell(tr, `relay-${n.node}`, n.relayUp ? '' : 'down');
    if (!n.relayUp) {
      cell(tr, 'unreachable', 'down').colSpan = 8;
      body.append(tr);
      continue;
    }
    const count = (st) => n.peers.filter((p) => p.status === st).length;
    cell(tr, n.mode, `mode-${n.mode}`);
    cell(tr, n.cache, `cache-${n.cache}`);
    cell(tr, `${count('up')} / ${count('suspect')} / ${n.peers.length - count('up') - count('suspect')}`, 'num peers');
    cell(tr, n.partitioned === null ? '?' : n.partitioned ? 'partitioned' : 'connected', `partition ${n.partitioned ? 'part-yes' : 'part-no'}`);
    cell(tr, n.queueDepth, 'num');
    cell(tr, n.publishP99Ms === null ? null : `${n.publishP99Ms.toFixed(1)} ms`, 'num');
    cell(tr, n.eventsPerSecond === null ? null : n.eventsPerSecond.toFixed(1), 'num');
    cell(tr, n.sidecarUp ? n.profile ?? '—' : 'sidecar down', n.sidecarUp ? '' : 'down');
    body.append(tr);
  }
}

function renderLinks(s) {
  const body = $('links').tBodies[0];
  body.replaceChildren();
  for (const n of s.nodes) {
    for (const l of n.links) {
      const tr = document.createElement('tr');
      tr.dataset.node = n.node;
      tr.dataset.link = l.name;
      cell(tr, `sidecar-${n.node}`, n.sidecarUp ? '' : 'down');
      cell(tr, `${l.name}${l.enabled ? '' : ' (disabled)'}`, l.enabled ? '' : 'down');
      cell(tr, l.activeConnections, 'num');
      const faults = cell(tr, l.faults.length ? '' : 'none');
      for (const f of l.faults) {
        const span = document.createElement('span');
        span.className = 'fault';
        span.textContent = `${f.name} (${f.type}, ${f.stream}; ${secs(f.remainingMs)}; fired ${f.fired})`;
        const rm = document.createElement('button');
        rm.type = 'button';
        rm.textContent = '×';
        rm.title = 'remove this fault';
        rm.addEventListener('click', () => act(`remove ${f.name}`, '/api/fault/remove', { node: n.node, link: l.name, name: f.name }));
        span.append(rm);
        faults.append(span);
      }
      cell(tr, Object.entries(l.firedTotals).map(([t, c]) => `${t} ${c}`).join(', ') || '—', 'num');
      body.append(tr);
    }
  }
}

function renderExperiment(e) {
  $('exp-status').textContent = e.running
    ? `running ${e.request.profile}${e.request.shape ? ` (${e.request.shape})` : ''} since ${new Date(e.startedAt).toLocaleTimeString()}`
    : e.startedAt ? `last run ${e.request?.profile}: ${e.verdict ?? e.error ?? 'no verdict'}${e.report ? ` (report ${e.report})` : ''}` : 'no experiment run from this console yet';
  $('exp-run').disabled = e.running;
  $('exp-stop').disabled = !e.running;
  const log = $('exp-log');
  if (log.childElementCount === e.lines.length) return;
  log.replaceChildren(...e.lines.map((l) => {
    const li = document.createElement('li');
    li.textContent = `+${(l.t / 1000).toFixed(1)}s ${l.line}`;
    return li;
  }));
  log.scrollTop = log.scrollHeight;
  if (!e.running && e.report) void loadReports();
}

function redrawTopology() {
  if (!lastSnapshot) return;
  drawTopology($('topology'), lastSnapshot, { groups: $('shape').value === 'groups' ? groups : null, onNodeClick: cycleGroup });
}

function render({ snapshot, experiment }) {
  lastSnapshot = snapshot;
  redrawTopology();
  renderRelays(snapshot);
  renderLinks(snapshot);
  renderExperiment(experiment);
  $('updated').textContent = `updated ${new Date(snapshot.at).toLocaleTimeString()} (poll ${snapshot.pollMs} ms)`;
}

function cycleGroup(node) {
  if ($('shape').value !== 'groups') return;
  groups.set(node, ((groups.get(node) ?? 0) + 1) % Math.min(meta.nodes.length, 3));
  showGroups();
  redrawTopology();
}

function groupList() {
  const out = [];
  for (const [node, g] of groups) (out[g] ??= []).push(node);
  return out.filter(Boolean);
}

function showGroups() {
  $('groups-view').textContent = groupList().map((g) => `{${g.join(',')}}`).join(' | ');
}

function shapeChanged() {
  const shape = $('shape').value;
  $('isolate-wrap').hidden = shape !== 'isolate';
  $('groups-wrap').hidden = shape !== 'groups';
  redrawTopology();
}

function fillFaultLinks() {
  const node = meta.nodes.find((n) => n.name === $('fault-node').value);
  $('fault-link').replaceChildren();
  for (const l of node.links) option($('fault-link'), l.name);
}

async function loadReports() {
  const { reports } = await api('/api/reports');
  const list = $('reports');
  list.replaceChildren();
  if (!reports.length) list.textContent = 'none yet in .reports/ (run an experiment)';
  for (const r of reports) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'open';
    b.addEventListener('click', async () => {
      const frame = $('report-frame');
      frame.srcdoc = await api(`/api/reports/${encodeURIComponent(r.name)}`);
      frame.hidden = false;
    });
    li.append(b, ` ${r.name} (${new Date(r.modified).toLocaleString()}, ${Math.round(r.bytes / 1024)} KiB)`);
    list.append(li);
  }
}

function wire() {
  $('heal').addEventListener('click', () => act('heal everything', '/api/heal', {}));
  $('shape').addEventListener('change', shapeChanged);
  $('partition-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const shape = $('shape').value;
    const body = { shape, oneWay: $('one-way').checked, existing: $('existing').value };
    if (shape === 'isolate') body.node = $('isolate-node').value;
    if (shape === 'groups') body.groups = groupList();
    void act(`partition ${shape}`, '/api/partition', body);
  });
  $('profile-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const nodes = [...document.querySelectorAll('#profile-nodes input:checked')].map((i) => i.value);
    void act(`apply ${$('profile').value}`, '/api/profile', { profile: $('profile').value, nodes });
  });
  $('fault-node').addEventListener('change', fillFaultLinks);
  $('fault-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    let attributes;
    try {
      attributes = JSON.parse($('fault-attrs').value || '{}');
    } catch {
      say('attributes must be JSON, e.g. {"latency": 500}', true);
      return;
    }
    const body = { node: $('fault-node').value, link: $('fault-link').value, type: $('fault-type').value, stream: $('fault-stream').value, attributes };
    const d = Number($('fault-duration').value);
    if (d > 0) body.durationMs = Math.round(d * 1000);
    void act(`add ${body.type} on ${body.node}/${body.link}`, '/api/fault', body);
  });
  $('experiment-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = { profile: $('exp-profile').value };
    if ($('exp-shape').value) body.shape = $('exp-shape').value;
    const hold = Number($('exp-hold').value);
    if (hold > 0) body.holdMs = Math.round(hold * 1000);
    void act(`experiment ${body.profile}`, '/api/experiment', body);
  });
  $('exp-stop').addEventListener('click', () => act('stop experiment', '/api/experiment/stop', {}));
  $('reports-refresh').addEventListener('click', () => void loadReports());
}

function fillForms() {
  for (const s of meta.shapes) option($('shape'), s);
  for (const s of meta.shapes) option($('exp-shape'), s);
  for (const p of meta.profiles) option($('profile'), p);
  for (const p of meta.experimentProfiles) option($('exp-profile'), p);
  for (const t of meta.faultTypes) option($('fault-type'), t);
  meta.nodes.forEach((n, i) => {
    option($('isolate-node'), n.name);
    option($('fault-node'), n.name);
    groups.set(n.name, i === 0 ? 0 : 1);
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = n.name;
    box.checked = true;
    label.append(box, ` ${n.name}`);
    $('profile-nodes').append(label);
  });
  fillFaultLinks();
  showGroups();
  shapeChanged();
}

function showLogin(why) {
  $('app').hidden = true;
  $('login').hidden = false;
  if (why) say(why, true);
}

async function start() {
  $('login').hidden = true;
  $('app').hidden = false;
  if (meta) return; // A second login after a refused token: forms and stream already set up.
  try {
    meta = await api('/api/meta');
  } catch (err) {
    say(`cannot reach the console: ${err.message}`, true);
    return;
  }
  fillForms();
  wire();
  void loadReports().catch((err) => say(err.message, true));
  openStream('/api/events', token, {
    onEvent: (type, data) => type === 'snapshot' && render(data),
    onState: (state) => {
      $('conn').textContent = state === 'open' ? 'live' : state;
      $('conn').className = `conn ${state === 'open' ? '' : 'off'}`;
      if (state === 'unauthorized') showLogin('the token was refused');
    },
  });
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem(KEY, token);
  void start();
});

if (token) void start();
else showLogin();
