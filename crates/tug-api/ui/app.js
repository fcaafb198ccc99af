// The tug dashboard: reads the agent's typed API (/v1/openapi.json) and
// follows its event stream; no framework, no build step.

const $ = (sel) => document.querySelector(sel);
const NS = 'http://www.w3.org/2000/svg';

/** An element with attributes and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:') ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

async function api(path, init = {}) {
  const opts = { credentials: 'same-origin', ...init, headers: { ...(init.headers || {}) } };
  if (opts.method && opts.method !== 'GET') {
    // The agent refuses a state-changing request without it (CSRF guard).
    opts.headers['x-tug-csrf'] = '1';
    opts.headers['content-type'] = 'application/json';
  }
  const r = await fetch(path, opts);
  if (r.status === 401) {
    location.assign('/login');
    throw new Error('sign in first');
  }
  if (!r.ok) {
    const b = await r.json().catch(() => ({ error: r.statusText }));
    throw new Error(b.error || r.statusText);
  }
  return r.json();
}

function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; }, 8000);
}

const clock = (secs) => new Date(secs * 1000).toLocaleTimeString();
const when = (secs) => new Date(secs * 1000).toLocaleString();

const state = {
  ps: null,
  routes: null,
  revisions: [],
  spec: null,
  samples: new Map(), // replica name -> [{t, cpu, mem}]
  lastStats: new Map(), // replica name -> {t, cpu_ns}
  rollout: null, // {title, since, steps: [], outcome}
  events: [],
};

// ---------- status of a replica: text and colour say the same ----------

function replicaStatus(r) {
  if (r.state !== 'running') return { cls: 'bad', text: r.state };
  if (r.health === 'unhealthy') return { cls: 'bad', text: 'unhealthy' };
  if (r.health === 'starting') return { cls: 'warn', text: 'starting' };
  return { cls: 'ok', text: r.health === '-' ? 'running' : r.health };
}

function badge(cls, text) {
  const icon = { ok: '✓', bad: '✗', warn: '…', none: '–' }[cls] || '';
  return h('span', { class: `badge ${cls}`, 'data-status': cls }, h('span', { 'aria-hidden': 'true' }, icon + ' '), text);
}

// ---------- topology ----------

function services() {
  const spec = state.spec?.services || {};
  const names = new Set(Object.keys(spec));
  for (const r of state.ps?.replicas || []) names.add(r.service);
  return [...names].sort();
}

function dependsOn(name) {
  const d = state.spec?.services?.[name]?.depends_on;
  if (!d) return [];
  return Array.isArray(d) ? d.map((x) => (typeof x === 'string' ? x : x.service ?? x.name)) : Object.keys(d);
}

function renderTopology() {
  const names = services();
  const box = $('#topology');
  if (!names.length) {
    box.replaceChildren(h('p', { class: 'muted' }, 'No services yet.'));
    return;
  }
  // Columns by depth: a service sits right of everything it depends on.
  const depth = new Map();
  const depthOf = (n, seen = new Set()) => {
    if (depth.has(n)) return depth.get(n);
    if (seen.has(n)) return 0;
    seen.add(n);
    const deps = dependsOn(n).filter((d) => names.includes(d));
    const v = deps.length ? 1 + Math.max(...deps.map((d) => depthOf(d, seen))) : 0;
    depth.set(n, v);
    return v;
  };
  names.forEach((n) => depthOf(n));
  const maxDepth = Math.max(...depth.values());
  const routes = state.routes?.routes || [];
  const gateway = routes.length > 0;
  // Dependents on the left (nearer the gateway), dependencies on the right.
  const colX = (n) => (gateway ? 200 : 20) + (maxDepth - depth.get(n)) * 220;
  const rows = new Map();
  const pos = new Map();
  for (const n of names) {
    const c = depth.get(n);
    const row = rows.get(c) || 0;
    rows.set(c, row + 1);
    pos.set(n, { x: colX(n), y: 20 + row * 80 });
  }
  const height = 40 + Math.max(...rows.values()) * 80;
  const width = (gateway ? 200 : 20) + (maxDepth + 1) * 220;
  const svg = h('svg:svg', { class: 'topology', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'topo-title topo-desc' });
  const edges = [];
  svg.append(
    h('svg:title', { id: 'topo-title' }, 'Stack topology'),
    h('svg:desc', { id: 'topo-desc' }),
    h('svg:defs', {}, h('svg:marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '8', markerHeight: '8', orient: 'auto-start-reverse' },
      h('svg:path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#57606a' }))),
  );
  for (const n of names) {
    for (const d of dependsOn(n)) {
      if (!pos.has(d)) continue;
      const a = pos.get(n), b = pos.get(d);
      svg.append(h('svg:path', { class: 'edge', 'marker-end': 'url(#arrow)', d: `M ${a.x + 170} ${a.y + 27} C ${a.x + 200} ${a.y + 27}, ${b.x - 30} ${b.y + 27}, ${b.x} ${b.y + 27}` }));
      edges.push(`${n} depends on ${d}`);
    }
  }
  if (gateway) {
    const gy = height / 2 - 27;
    svg.append(h('svg:g', { class: 'node ok', 'data-node': 'gateway' },
      h('svg:rect', { x: 10, y: gy, width: 140, height: 54, rx: 8 }),
      h('svg:text', { x: 22, y: gy + 22 }, 'gateway'),
      h('svg:text', { x: 22, y: gy + 42 }, (state.routes.listen[0] || '').replace('http://', ''))));
    for (const r of routes) {
      const b = pos.get(r.service);
      if (!b) continue;
      svg.append(h('svg:path', { class: 'route', 'marker-end': 'url(#arrow)', d: `M 150 ${gy + 27} C 175 ${gy + 27}, ${b.x - 25} ${b.y + 27}, ${b.x} ${b.y + 27}` }));
      edges.push(`the gateway routes ${r.host || '*'}${r.path} to ${r.service}`);
    }
  }
  const summary = [];
  for (const n of names) {
    const reps = (state.ps?.replicas || []).filter((r) => r.service === n);
    const ready = reps.filter((r) => replicaStatus(r).cls === 'ok').length;
    const want = state.spec?.services?.[n]?.replicas ?? reps.length;
    const cls = ready >= want && ready === reps.length ? 'ok' : ready === 0 && want > 0 ? 'bad' : 'warn';
    const word = { ok: 'ready', bad: 'down', warn: 'degraded' }[cls];
    const p = pos.get(n);
    svg.append(h('svg:g', { class: `node ${cls}`, 'data-node': n, 'data-status': cls },
      h('svg:rect', { x: p.x, y: p.y, width: 170, height: 54, rx: 8 }),
      h('svg:text', { x: p.x + 12, y: p.y + 22, 'font-weight': '600' }, n),
      h('svg:text', { x: p.x + 12, y: p.y + 42 }, `${ready}/${want} ${word}`)));
    summary.push(`${n}: ${ready} of ${want} replicas ready (${word})`);
  }
  svg.querySelector('desc').textContent = [...summary, ...edges].join('; ');
  box.replaceChildren(svg);
}

// ---------- replicas with sparklines ----------

function spark(values, label) {
  const w = 80, hgt = 20;
  const max = Math.max(...values, 1e-9);
  const pts = values.map((v, i) => `${(i / Math.max(values.length - 1, 1)) * w},${hgt - (v / max) * (hgt - 2) - 1}`).join(' ');
  return h('svg:svg', { class: 'spark', width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': label },
    h('svg:polyline', { points: pts }));
}

function fmtBytes(b) {
  if (b == null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function renderReplicas() {
  const rows = (state.ps?.replicas || []).map((r) => {
    const st = replicaStatus(r);
    const s = state.samples.get(r.name) || [];
    const last = s[s.length - 1];
    const cpu = last ? `${last.cpu.toFixed(1)}%` : '–';
    const mem = last ? fmtBytes(last.mem) : '–';
    return h('tr', { 'data-replica': r.name, 'data-status': st.cls },
      h('td', {}, r.service),
      h('td', {}, r.name),
      h('td', {}, badge(r.state === 'running' ? 'ok' : 'bad', r.state), r.note ? ` ${r.note}` : ''),
      h('td', {}, r.health === '-' ? badge('none', 'no check') : badge(st.cls === 'bad' && r.state !== 'running' ? 'bad' : st.cls, r.health)),
      h('td', {}, r.endpoint || '–'),
      h('td', {}, s.length > 1 ? spark(s.map((x) => x.cpu), `CPU of ${r.name}, now ${cpu}`) : '', h('span', { class: 'spark-label' }, cpu)),
      h('td', {}, s.length > 1 ? spark(s.map((x) => x.mem || 0), `memory of ${r.name}, now ${mem}`) : '', h('span', { class: 'spark-label' }, mem)),
      h('td', {}, h('button', { type: 'button', onclick: () => openLogs(r), 'aria-label': `Logs of ${r.name}` }, 'Logs')));
  });
  $('#replicas tbody').replaceChildren(...rows);
}

async function sampleStats() {
  if (document.hidden || route() !== 'overview') return;
  try {
    const s = await api('/v1/stats');
    for (const r of s.replicas) {
      const prev = state.lastStats.get(r.name);
      if (r.cpu_ns == null) continue;
      state.lastStats.set(r.name, { t: s.time_ms, cpu_ns: r.cpu_ns });
      if (!prev || s.time_ms <= prev.t) continue;
      const cpu = Math.max(0, ((r.cpu_ns - prev.cpu_ns) / 1e6 / (s.time_ms - prev.t)) * 100);
      const list = state.samples.get(r.name) || [];
      list.push({ t: s.time_ms, cpu, mem: r.memory });
      if (list.length > 30) list.shift();
      state.samples.set(r.name, list);
    }
    renderReplicas();
  } catch (e) {
    console.warn('stats', e);
  }
}

// ---------- events and the rollout ----------

function describe(e) {
  const ev = e.event || {};
  const who = ev.service ? `${ev.service}${ev.replica != null ? `/${ev.replica}` : ''}: ` : '';
  const rest = Object.entries(ev)
    .filter(([k]) => !['event', 'service', 'replica', 'container', 'metrics'].includes(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');
  return `${who}${ev.event.replaceAll('_', ' ')}${rest ? ` (${rest})` : ''}`;
}

const ROLLOUT_STEPS = new Set(['image', 'image_ready', 'waiting', 'creating', 'started', 'healthy', 'removing',
  'service_ready', 'service_failed', 'rolling_back', 'converging', 'converged', 'up_to_date', 'replacing', 'restarting']);

function onEvent(rec) {
  state.events.push(rec);
  if (state.events.length > 200) state.events.shift();
  const kind = rec.event?.event;
  if (kind === 'converging') {
    state.rollout = { title: state.rollout?.pendingTitle || 'Converge', since: rec.time, steps: [], outcome: null };
  }
  if (state.rollout && !state.rollout.outcome && ROLLOUT_STEPS.has(kind)) {
    state.rollout.steps.push(rec);
    if (kind === 'converged' || kind === 'up_to_date') state.rollout.outcome = rec.event.ok === false ? 'failed' : 'succeeded';
  }
  // A health verdict of the agent's probes shows at once.
  if (kind === 'health_changed') {
    const r = (state.ps?.replicas || []).find((x) => x.name === rec.event.container);
    if (r) {
      r.health = rec.event.healthy ? 'healthy' : 'unhealthy';
      renderReplicas();
      renderTopology();
    }
  }
  // A replica that died shows it at once; the next snapshot says the rest.
  if (kind === 'replica' && ['died', 'oom_killed', 'destroyed'].includes(rec.event.change)) {
    const r = (state.ps?.replicas || []).find((x) => x.id === rec.event.container || x.id.startsWith(rec.event.container));
    if (r) {
      r.state = rec.event.change === 'destroyed' ? 'removed' : 'exited';
      r.note = rec.event.exit_code != null ? `exit code ${rec.event.exit_code}` : r.note;
      renderReplicas();
      renderTopology();
    }
  }
  scheduleRender(kind);
}

let renderPending = null;
let refetchPs = false;
let refetchHistory = false;
function scheduleRender(kind) {
  if (kind && kind !== 'build_log') refetchPs = true;
  if (kind === 'converged' || kind === 'up_to_date') refetchHistory = true;
  if (renderPending) return;
  // Coalesce a burst of events into one render (and one fetch).
  renderPending = setTimeout(async () => {
    renderPending = null;
    renderEvents();
    renderRollout();
    if (refetchPs) { refetchPs = false; await loadPs(); }
    if (refetchHistory) { refetchHistory = false; await loadHistory(); }
  }, 150);
}

function renderEvents() {
  const items = state.events.slice(-100).reverse().map((e) =>
    h('li', {}, h('time', { datetime: new Date(e.time * 1000).toISOString() }, clock(e.time)), describe(e)));
  $('#events').replaceChildren(...items);
}

function renderRollout() {
  const box = $('#rollout');
  const r = state.rollout;
  const conv = state.ps?.converge;
  if (!r && !conv) {
    box.replaceChildren(h('p', { class: 'muted' }, 'No rollout in progress.'));
    return;
  }
  const parts = [];
  if (r) {
    const status = r.outcome ? (r.outcome === 'succeeded' ? badge('ok', 'succeeded') : badge('bad', 'failed')) : badge('warn', 'in progress');
    parts.push(h('p', { id: 'rollout-title' }, h('strong', {}, r.title), ' ', status));
    parts.push(h('ol', { class: 'steps', 'aria-labelledby': 'rollout-title' },
      r.steps.map((s) => h('li', {}, h('time', {}, clock(s.time)), describe(s)))));
  }
  if (conv) {
    parts.push(h('ul', { class: 'steps' }, Object.entries(conv.services).map(([s, d]) => h('li', {}, `${s}: ${d}`))));
  }
  box.replaceChildren(...parts);
}

function connect() {
  const after = state.events.length ? state.events[state.events.length - 1].id : 0;
  const es = new EventSource(`/v1/events/stream?after=${after}`);
  const status = $('#status');
  es.onopen = () => { status.dataset.state = 'live'; status.textContent = 'live'; };
  es.onmessage = (m) => {
    try { onEvent(JSON.parse(m.data)); } catch (e) { console.warn(e); }
  };
  es.onerror = () => {
    status.dataset.state = 'lost';
    status.textContent = 'reconnecting…';
    // EventSource retries by itself; Last-Event-ID resumes where it was.
  };
}

// ---------- data ----------

async function loadPs() {
  try {
    state.ps = await api('/v1/ps');
    $('#stack').textContent = state.ps.stack;
    document.title = `${state.ps.stack} · tug dashboard`;
    const rev = state.revisions.find((r) => r.id === state.ps.revision);
    if (rev) state.spec = rev.spec;
    renderTopology();
    renderReplicas();
    renderRollout();
    fillReplicaChoice();
  } catch (e) {
    toast(`Error: ${e.message}`);
  }
}

async function loadHistory() {
  try {
    state.revisions = await api('/v1/history?limit=50');
    const rev = state.revisions.find((r) => r.id === state.ps?.revision) || state.revisions[0];
    if (rev) state.spec = rev.spec;
    renderHistory();
    renderTopology();
  } catch (e) {
    toast(`Error: ${e.message}`);
  }
}

// ---------- history, diff, rollback ----------

const compare = { a: null, b: null };

function renderHistory() {
  const current = state.ps?.revision;
  const rows = state.revisions.map((r) => {
    const cls = r.outcome === 'succeeded' ? 'ok' : r.outcome === 'pending' ? 'warn' : 'bad';
    const pick = (side) => h('input', {
      type: 'radio', name: `cmp-${side}`, value: r.id, 'aria-label': `Compare ${side.toUpperCase()}: revision ${r.id}`,
      checked: compare[side] === r.id, onchange: () => { compare[side] = r.id; renderDiff(); },
    });
    return h('tr', { 'data-revision': r.id },
      h('th', { scope: 'row' }, `${r.id}`, r.id === current ? ' (current)' : ''),
      h('td', {}, when(r.created)),
      h('td', {}, badge(cls, r.outcome)),
      h('td', {}, r.message),
      h('td', {}, pick('a')),
      h('td', {}, pick('b')),
      h('td', {}, h('button', { type: 'button', onclick: () => askRollback(r), disabled: r.id === current, 'aria-label': `Roll back to revision ${r.id}` }, 'Roll back')));
  });
  $('#revisions tbody').replaceChildren(...rows);
  if (compare.a == null && state.revisions.length > 1) {
    compare.a = state.revisions[1].id;
    compare.b = state.revisions[0].id;
    $('#revisions tbody').querySelectorAll('input').forEach((i) => {
      i.checked = (i.name === 'cmp-a' && +i.value === compare.a) || (i.name === 'cmp-b' && +i.value === compare.b);
    });
    renderDiff();
  }
}

/** Lines of a revision as YAML-like text: what a person reads in a diff. */
function lines(value, indent = '') {
  if (value === null || typeof value !== 'object') return [`${indent}${JSON.stringify(value)}`];
  const out = [];
  const entries = Array.isArray(value) ? value.map((v, i) => [`- [${i}]`, v]) : Object.entries(value);
  for (const [k, v] of entries) {
    if (v !== null && typeof v === 'object' && Object.keys(v).length) {
      out.push(`${indent}${k}:`);
      out.push(...lines(v, `${indent}  `));
    } else {
      out.push(`${indent}${k}: ${JSON.stringify(v)}`);
    }
  }
  return out;
}

/** A line diff (longest common subsequence). */
function diff(a, b) {
  const n = a.length, m = b.length;
  const dp = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push([' ', a[i]]); i++; j++; } else if (dp[i + 1][j] >= dp[i][j + 1]) { out.push(['-', a[i++]]); } else { out.push(['+', b[j++]]); }
  }
  while (i < n) out.push(['-', a[i++]]);
  while (j < m) out.push(['+', b[j++]]);
  return out;
}

async function renderDiff() {
  const box = $('#diff');
  if (compare.a == null || compare.b == null) return;
  try {
    const [a, b] = await Promise.all([api(`/v1/history/${compare.a}`), api(`/v1/history/${compare.b}`)]);
    const view = (r) => ({ spec: r.spec, images: r.images });
    const d = diff(lines(view(a)), lines(view(b)));
    const changed = d.filter(([k]) => k !== ' ').length;
    const shown = d.filter((x, idx) => d.slice(Math.max(0, idx - 2), idx + 3).some(([k]) => k !== ' '));
    box.replaceChildren(
      h('p', {}, `Revision ${a.id} → revision ${b.id}: ${changed ? `${changed} changed lines` : 'no difference'}.`),
      changed ? h('div', { class: 'diff', tabindex: '0', role: 'region', 'aria-label': `Difference between revisions ${a.id} and ${b.id}` },
        shown.map(([k, t]) => h('div', { class: k === '+' ? 'add' : k === '-' ? 'del' : '' }, `${k} ${t}`))) : '');
  } catch (e) {
    box.replaceChildren(h('p', {}, `Error: ${e.message}`));
  }
}

function askRollback(rev) {
  const dlg = $('#confirm');
  $('#confirm-text').textContent = `Roll the stack back to revision ${rev.id} (${rev.message}, ${when(rev.created)})? Its replicas are replaced one by one, with health checks.`;
  dlg.returnValue = '';
  dlg.onclose = () => { if (dlg.returnValue === 'ok') rollback(rev.id); };
  dlg.showModal();
}

async function rollback(id) {
  state.rollout = { title: `Rollback to revision ${id}`, since: Date.now() / 1000, steps: [], outcome: null, pendingTitle: `Rollback to revision ${id}` };
  // The converge's first event opens a fresh rollout; keep this title.
  state.rollout.pendingTitle = state.rollout.title;
  location.hash = '#overview';
  renderRollout();
  try {
    const r = await api('/v1/rollback', { method: 'POST', body: JSON.stringify({ to: id }) });
    toast(`Rolled back: revision ${r.revision ?? '?'}${r.warning ? ` (${r.warning})` : ''}`);
    // The converge's last event closes the rollout; without the stream, this does.
    const open = state.rollout;
    setTimeout(() => { if (open && !open.outcome) { open.outcome = 'succeeded'; renderRollout(); } }, 3000);
  } catch (e) {
    if (state.rollout) state.rollout.outcome = 'failed';
    toast(`Rollback failed: ${e.message}`);
  }
  renderRollout();
  await loadHistory();
  await loadPs();
}

// ---------- logs ----------

let logAbort = null;

function fillReplicaChoice() {
  const sel = $('#logs-replica');
  const want = sel.value;
  const opts = (state.ps?.replicas || []).map((r) => h('option', { value: `${r.service}\u0000${r.replica ?? ''}`, selected: `${r.service}\u0000${r.replica ?? ''}` === want }, r.name));
  if (opts.length !== sel.options.length || [...sel.options].some((o, i) => o.textContent !== opts[i].textContent)) {
    sel.replaceChildren(...opts);
    if (want) sel.value = want;
  }
}

function openLogs(r) {
  fillReplicaChoice();
  $('#logs-replica').value = `${r.service}\u0000${r.replica ?? ''}`;
  location.hash = '#logs';
  streamLogs();
}

async function streamLogs() {
  if (logAbort) logAbort.abort();
  const pre = $('#log-lines');
  pre.replaceChildren();
  const v = $('#logs-replica').value;
  if (!v) return;
  const [service, replica] = v.split('\u0000');
  const ctl = new AbortController();
  logAbort = ctl;
  const follow = $('#logs-follow').checked;
  try {
    const r = await fetch(`/v1/logs?service=${encodeURIComponent(service)}&tail=300&follow=${follow}`, { signal: ctl.signal, credentials: 'same-origin' });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      const parts = buf.split('\n');
      buf = parts.pop();
      const frag = document.createDocumentFragment();
      for (const p of parts) {
        if (!p) continue;
        const l = JSON.parse(p);
        if (replica !== '' && String(l.replica) !== replica) continue;
        frag.append(h('span', { class: l.stderr ? 'err' : '' }, `${l.stderr ? '[stderr] ' : ''}${l.text}\n`));
      }
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(frag);
      while (pre.childNodes.length > 2000) pre.firstChild.remove();
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
  } catch (e) {
    if (e.name !== 'AbortError') pre.append(h('span', { class: 'err' }, `Error: ${e.message}\n`));
  }
}

// ---------- findings and pipelines ----------

async function loadFindings() {
  const box = $('#findings');
  try {
    const f = await api('/v1/findings');
    const rows = f.findings.map((x) => h('tr', {},
      h('td', {}, badge(['critical', 'high', 'error'].includes(x.severity) ? 'bad' : ['medium', 'warning'].includes(x.severity) ? 'warn' : 'none', x.severity)),
      h('td', {}, x.tool), h('td', {}, x.rule), h('td', {}, x.location), h('td', {}, x.message)));
    box.replaceChildren(
      h('p', {}, `Revision ${f.revision ?? '–'}: ${f.findings.length} findings.`),
      ...f.errors.map((e) => h('p', { class: 'muted' }, `Not checked: ${e}`)),
      f.findings.length ? h('table', {}, h('caption', { class: 'sr-only' }, 'Findings'),
        h('thead', {}, h('tr', {}, ['Severity', 'Check', 'Rule', 'Where', 'What'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)) : '');
  } catch (e) {
    box.replaceChildren(h('p', {}, `Error: ${e.message}`));
  }
}

async function loadPipelines() {
  const box = $('#pipelines');
  try {
    const runs = await api('/v1/pipelines?limit=50');
    if (!runs.length) {
      box.replaceChildren(h('p', { class: 'muted' }, 'No pipeline runs yet: `tug pipeline run NAME` starts one.'));
      return;
    }
    box.replaceChildren(h('table', {}, h('caption', { class: 'sr-only' }, 'Pipeline runs, newest first'),
      h('thead', {}, h('tr', {}, ['Run', 'Pipeline', 'Outcome', 'Started', ''].map((c) => h('th', { scope: 'col' }, c ? c : h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, runs.map((r) => h('tr', {},
        h('th', { scope: 'row' }, r.id), h('td', {}, r.pipeline),
        h('td', {}, badge(r.status === 'succeeded' ? 'ok' : r.status === 'running' ? 'warn' : 'bad', r.status)),
        h('td', {}, when(r.started)),
        h('td', {}, h('button', { type: 'button', onclick: () => showRun(r.id), 'aria-label': `Jobs of run ${r.id}` }, 'Jobs')))))));
  } catch (e) {
    box.replaceChildren(h('p', {}, `Error: ${e.message}`));
  }
}

async function showRun(id) {
  const box = $('#run');
  try {
    const r = await api(`/v1/pipelines/${id}`);
    box.replaceChildren(h('p', {}, `Run ${r.id} of ${r.pipeline}: `, badge(r.status === 'succeeded' ? 'ok' : r.status === 'running' ? 'warn' : 'bad', r.status)),
      ...r.jobs.map((j) => h('details', {}, h('summary', {}, `${j.name} `, badge(j.status === 'succeeded' ? 'ok' : j.status === 'skipped' ? 'none' : 'bad', j.status)),
        h('pre', { class: 'joblog', tabindex: '0', 'aria-label': `Log of job ${j.name}` }, j.log || '(no output)'))));
    box.querySelector('summary')?.focus();
  } catch (e) {
    box.replaceChildren(h('p', {}, `Error: ${e.message}`));
  }
}

// ---------- pages ----------

function route() {
  const r = location.hash.replace('#', '');
  return ['overview', 'history', 'logs', 'findings', 'pipelines'].includes(r) ? r : 'overview';
}

function show() {
  const page = route();
  for (const s of document.querySelectorAll('[data-page]')) s.hidden = s.dataset.page !== page;
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.getAttribute('href') === `#${page}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (page === 'findings') loadFindings();
  if (page === 'pipelines') loadPipelines();
  if (page === 'logs' && !logAbort) streamLogs();
  if (page !== 'logs' && logAbort) { logAbort.abort(); logAbort = null; }
}

window.addEventListener('hashchange', () => { show(); $('#main').focus(); });
$('#logs-replica').addEventListener('change', streamLogs);
$('#logs-follow').addEventListener('change', streamLogs);

async function start() {
  show();
  const [ps, revs, routes] = await Promise.all([
    api('/v1/ps').catch(() => null), api('/v1/history?limit=50').catch(() => []), api('/v1/routes').catch(() => null)]);
  state.ps = ps;
  state.revisions = revs;
  state.routes = routes;
  state.spec = (revs.find((r) => r.id === ps?.revision) || revs[0])?.spec || null;
  if (ps) { $('#stack').textContent = ps.stack; document.title = `${ps.stack} · tug dashboard`; }
  renderTopology();
  renderReplicas();
  renderHistory();
  renderRollout();
  fillReplicaChoice();
  document.body.dataset.ready = 'true';
  connect();
  sampleStats();
  // The agent samples every 5 s; reading more often shows nothing new.
  setInterval(sampleStats, 5000);
  setInterval(async () => { state.routes = await api('/v1/routes').catch(() => state.routes); }, 10000);
}

start();
