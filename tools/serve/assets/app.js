// jobmgr dashboard: a single page over the JSON API of `jobmgr serve`.
// Every node is built with createElement and text nodes: data never becomes
// markup. Routes live in the fragment (#/, #/jobs?..., #/job/ID, ...).
'use strict';

const STATUSES = ['new', 'queued', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'paused'];
const TYPES = ['FL', 'CL', 'RT', 'SE', 'UC', 'CO', 'BK', 'RS'];
const OVERVIEW_MS = 2000;
const LIST_MS = 3000;
const PAGE_SIZES = [25, 50, 100, 200, 500, 1000];
const DEFAULT_LIMIT = 50;
const SVG_NS = 'http://www.w3.org/2000/svg';
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

// Example parameters of the built-in types, for the create form.
const PARAM_EXAMPLES = {
  FL: { namespace_id: 'app', table_name: 'orders', table_type: 'User' },
  CL: { table_id: 'app:orders', table_type: 'User', operation: 'drop_table' },
  RT: { namespace_id: 'app', table_name: 'orders', table_type: 'User', retention_hours: 168 },
  SE: { namespace_id: 'app', table_name: 'clicks', table_type: 'Stream', ttl_seconds: 86400 },
  UC: { user_id: 'u1', username: 'alice', cascade: true },
  CO: { namespace_id: 'app', table_name: 'orders', table_type: 'Shared', target_file_size_mb: 64 },
  BK: { namespace_id: 'app', table_name: 'orders', table_type: 'Shared', backup_location: '/var/backups/jobmgr', compression: 'zstd' },
  RS: { backup_location: '/var/backups/jobmgr/app/orders/JOB_ID', target_namespace: 'app', target_table_name: 'orders_restored' },
};

const session = { read_only: false, authenticated: false, token_required_for_reads: false };

// ---- DOM helpers -------------------------------------------------------------

// Attribute names that must go through setAttribute (no matching property).
const ATTR_NAMES = new Set(['list', 'role', 'for']);

// h('a', {href, class, 'data-testid': ...}, ...children): properties and
// listeners only; strings and numbers become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs, false);
  append(el, children);
  return el;
}

// The same for SVG elements, whose attributes are all set with setAttribute.
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs, true);
  append(el, children);
  return el;
}

function setAttrs(el, attrs, svg) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (svg || k.includes('-') || ATTR_NAMES.has(k)) el.setAttribute(k, v === true ? '' : String(v));
    else el[k] = v;
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const $ = (id) => document.getElementById(id);

// Replaces el's children with build(data), unless el already shows this very
// data: a refresh that changed nothing keeps the reader's text selection.
const shown = new WeakMap();
function fill(el, data, build) {
  const text = JSON.stringify(data);
  if (shown.get(el) === text) return;
  shown.set(el, text);
  el.replaceChildren(...[build(data)].flat());
}

// ---- Formatting ----------------------------------------------------------------

const pad = (n) => String(n).padStart(2, '0');

function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const fmtClock = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

// 45s, 3m20s, 2h5m, 3d4h.
function fmtDur(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  let t = Math.max(0, Math.round(ms / 1000));
  if (t < 60) return `${t}s`;
  const d = Math.floor(t / 86400), hr = Math.floor((t % 86400) / 3600), m = Math.floor((t % 3600) / 60);
  t %= 60;
  if (d) return hr ? `${d}d${hr}h` : `${d}d`;
  if (hr) return m ? `${hr}h${m}m` : `${hr}h`;
  return t ? `${m}m${t}s` : `${m}m`;
}

function fmtRel(ms) {
  if (ms === null || ms === undefined) return '';
  const diff = ms - Date.now();
  return diff >= 0 ? `in ${fmtDur(diff)}` : `${fmtDur(-diff)} ago`;
}

// A time: local time, with the relative time as a tooltip.
function timeEl(ms) {
  return h('span', { class: 'nowrap', title: fmtRel(ms) }, fmtTime(ms));
}

// A compact time for table cells: the clock today, else the date and minute.
function shortTimeEl(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const full = fmtTime(ms);
  const text = d.toDateString() === new Date().toDateString() ? full.slice(11)
    : d.getFullYear() === new Date().getFullYear() ? full.slice(5, 16) : full.slice(0, 10);
  return h('span', { class: 'nowrap', title: `${full} (${fmtRel(ms)})` }, text);
}

const fmtJson = (v) => (v === null || v === undefined ? '—' : JSON.stringify(v, null, 2));
const pct = (p) => `${Math.round((Number(p) || 0) * 100)}%`;

// ISO-ish local time for <input type="datetime-local"> and back (local zone).
function toLocalInput(ms) {
  if (!ms && ms !== 0) return '';
  const d = new Date(Number(ms));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(v) {
  if (!v) return null;
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : null;
}

// ---- Small widgets -----------------------------------------------------------

const badge = (status) => h('span', { class: `badge s-${status}`, 'data-testid': 'status-badge' }, status);

const jobLink = (id) => h('a', { href: `#/job/${encodeURIComponent(id)}`, class: 'mono' }, id);

function progressEl(p) {
  return h('div', { class: 'progress' },
    h('progress', { max: 1, value: Math.min(1, Math.max(0, Number(p) || 0)) }),
    h('span', { class: 'pct' }, pct(p)));
}

function table(headers, rows, emptyText) {
  if (!rows.length) return h('p', { class: 'empty' }, emptyText || 'Nothing here.');
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { class: x.startsWith('#') ? 'num' : '' }, x.replace(/^#/, ''))))),
      h('tbody', {}, rows)));
}

const td = (content, cls, testid) => h('td', { class: cls || null, 'data-testid': testid }, content ?? '—');
const panel = (title, ...body) => h('section', { class: 'panel' }, h('h2', {}, title), body);
const widePanel = (title, ...body) => h('section', { class: 'panel wide' }, h('h2', {}, title), body);

function button(label, onClick, opts = {}) {
  return h('button', { type: 'button', class: opts.class || '', 'data-testid': opts.testid, onclick: onClick }, label);
}

// Whether this session may act (the server decides in the end).
const canAct = () => !session.read_only;

// ---- Banners -----------------------------------------------------------------

let bannerSource = null;

function showError(err, source = 'action') {
  const text = err instanceof ApiError && err.status
    ? `${err.message} (${err.code}, HTTP ${err.status})`
    : String(err.message || err);
  $('error-text').textContent = text;
  $('error-banner').hidden = false;
  bannerSource = source;
}

function clearError(source) {
  if (source && bannerSource !== source) return;
  $('error-banner').hidden = true;
  bannerSource = null;
}

let noticeTimer = 0;
function notice(...content) {
  const el = $('notice');
  el.replaceChildren(...content.map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

// "updated HH:MM:SS": when the data was taken, if the server says so.
function markUpdated(ms) {
  $('updated').textContent = `updated ${fmtClock(new Date(ms || Date.now()))}`;
}

// ---- API -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api('jobs?x=1') or api('jobs/ID/cancel', {method: 'POST', body}); resolves
// to the parsed JSON (null for 204), rejects with an ApiError.
async function api(path, { method = 'GET', body } = {}) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-CSRF-Token'] = CSRF;
    opts.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(`api/${path}`, opts);
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server: ${e.message}`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    if (res.ok) throw new ApiError(res.status, 'bad_response', 'the server sent a response that is not JSON');
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    if (res.status === 401) needSignIn();
    throw new ApiError(res.status, e.code || 'http_error', e.message || e.code || `HTTP ${res.status} ${res.statusText}`);
  }
  return data;
}

// Runs an action (a POST) and reports its error in the banner.
async function act(fn) {
  try {
    clearError();
    $('notice').hidden = true;
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  }
}

// ---- Session -------------------------------------------------------------------

async function loadSession() {
  try {
    Object.assign(session, await api('session'));
  } catch (e) {
    if (e.status !== 401) showError(e, 'load');
  }
  applySession();
}

function applySession() {
  document.body.classList.toggle('read-only', !!session.read_only);
  $('ro-badge').hidden = !session.read_only;
  $('signin').hidden = !!session.authenticated;
  $('signout').hidden = !session.authenticated;
}

// A 401: show the sign-in box (focused the first time only, so a refresh
// loop never steals the focus from another field).
function needSignIn() {
  const wasHidden = $('signin').hidden;
  session.authenticated = false;
  applySession();
  if (wasHidden) $('signin-token').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('signin-token');
  const ok = await act(async () => {
    await api('login', { method: 'POST', body: { token: input.value } });
    return true;
  });
  if (!ok) return;
  input.value = '';
  await loadSession();
  notice('Signed in.');
  render();
}

async function signOut() {
  await act(() => api('logout', { method: 'POST' }));
  await loadSession();
  render();
}

// ---- Live refresh ----------------------------------------------------------------

// One loop at a time: the current view's refresh, every `period` ms while
// the tab is visible. A new view (or visibility coming back) starts a new
// generation, and the old loop stops at its next step.
const live = { gen: 0, fn: null, period: 0, timer: 0 };

function setLive(fn, period) {
  live.fn = fn;
  live.period = period;
  restartLive();
}

function restartLive() {
  clearTimeout(live.timer);
  const gen = ++live.gen;
  if (live.fn) liveStep(gen);
}

async function liveStep(gen) {
  if (gen !== live.gen) return;
  if (document.visibilityState === 'visible') await refreshNow(live.fn);
  if (gen !== live.gen) return;
  live.timer = setTimeout(() => liveStep(gen), live.period);
}

async function refreshNow(fn) {
  try {
    const takenAt = await fn();
    clearError('load');
    markUpdated(takenAt);
  } catch (e) {
    showError(e, 'load');
  }
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') restartLive();
  else clearTimeout(live.timer);
});

// ---- Router ----------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  const [name, ...rest] = path.split('/');
  let id = '';
  try {
    id = decodeURIComponent(rest.join('/'));
  } catch {
    id = rest.join('/');
  }
  return { name: name || '', id, query };
}

let routeToken = 0;

// Builds the view of the current fragment; a stale async result checks
// `current(token)` before it touches the page.
function render() {
  const route = parseHash();
  const token = ++routeToken;
  const views = { '': viewOverview, jobs: viewJobs, job: viewJob, schedules: viewSchedules, pauses: viewPauses, new: viewNew };
  const view = views[route.name] || viewNotFound;
  for (const a of document.querySelectorAll('.nav a')) {
    const r = a.dataset.route;
    a.classList.toggle('active', r === route.name || (r === 'jobs' && route.name === 'job'));
  }
  clearError();
  setLive(null, 0);
  $('view').replaceChildren(view(route, token));
}

const current = (token) => token === routeToken;

function viewNotFound(route) {
  return h('div', {}, h('h1', {}, 'Not found'), h('p', {}, `No page “${route.name}”. `, h('a', { href: '#/' }, 'Overview')));
}

// ---- Overview --------------------------------------------------------------------

function viewOverview(route, token) {
  const root = h('div', { class: 'overview', 'data-testid': 'overview' }, h('p', { class: 'muted' }, 'Loading…'));
  setLive(async () => {
    const o = await api('overview');
    // Redrawn when the figures change, and every 10 s for the relative times.
    if (current(token)) fill(root, { ...o, taken_at_ms: Math.floor(Date.now() / 10000) }, overviewContent);
    return o.taken_at_ms;
  }, OVERVIEW_MS);
  return root;
}

function overviewContent(o) {
  const by = o.by_status || {};
  const cards = STATUSES.map((st) => h('a', {
    class: `card s-${st}${by[st] ? '' : ' zero'}`, href: `#/jobs?status=${st}`, 'data-testid': `card-${st}`,
  }, h('div', { class: 'label' }, st), h('div', { class: 'value', 'data-testid': `count-${st}` }, by[st] ?? 0)));
  const stat = (label, value, id) => h('div', { class: 'stat' },
    h('div', { class: 'label' }, label), h('div', { class: 'value', 'data-testid': id }, value));
  return [
    h('div', { class: 'cards' }, cards),
    h('div', { class: 'panel stats' },
      stat('Queue depth', o.queue_depth ?? 0, 'stat-queue-depth'),
      stat('Oldest due', o.queue_depth ? fmtDur(o.oldest_due_age_ms) : '—', 'stat-oldest-due'),
      stat('Running', o.running ?? 0, 'stat-running'),
      stat('Failed last hour', o.failed_last_hour ?? 0, 'stat-failed-last-hour')),
    h('div', { class: 'grid' },
      throughputPanel(o.throughput),
      runningPanel(o.running_jobs || []),
      typesPanel(o.types),
      schedulesPanel(o.schedules || []),
      pausesPanel(o.pauses || [])),
  ];
}

// The types as [{type, by_status}], also accepting {TYPE: {by_status}}.
function typeRows(types) {
  if (Array.isArray(types)) return types;
  return Object.entries(types || {}).map(([type, v]) => ({ type, by_status: v.by_status || v }));
}

function typesPanel(types) {
  const rows = typeRows(types).map((t) => {
    const by = t.by_status || {};
    const total = STATUSES.reduce((n, st) => n + (by[st] || 0), 0);
    return h('tr', { 'data-testid': 'type-row' },
      td(h('a', { href: `#/jobs?type=${encodeURIComponent(t.type)}` }, t.type)),
      STATUSES.map((st) => td(by[st]
        ? h('a', { href: `#/jobs?type=${encodeURIComponent(t.type)}&status=${st}` }, by[st])
        : '·', by[st] ? 'num' : 'num zero')),
      td(total, 'num'));
  });
  return widePanel('Jobs by type', table(['Type', ...STATUSES.map((x) => `#${x}`), '#total'], rows, 'No jobs yet.'));
}

function runningPanel(jobs) {
  const rows = jobs.map((j) => h('tr', { 'data-testid': 'running-job' },
    td(jobLink(j.id), 'nowrap'), td(j.type), td(progressEl(j.progress)),
    td(j.started_at_ms ? fmtDur(Date.now() - j.started_at_ms) : '—', 'nowrap'),
    td(j.message || '', 'msg')));
  return panel('Running', table(['Job', 'Type', 'Progress', 'For', 'Message'], rows, 'No job is running.'));
}

function schedulesPanel(list) {
  const rows = list.map((x) => h('tr', {},
    td(x.name), td(x.type),
    td(x.paused ? h('span', { class: 'badge s-paused' }, 'paused') : h('span', { title: fmtTime(x.next_fire_ms) }, fmtRel(x.next_fire_ms) || '—'), 'nowrap')));
  return panel(h('a', { href: '#/schedules' }, 'Schedules'), table(['Name', 'Type', 'Next fire'], rows, 'No schedules.'));
}

function pausesPanel(list) {
  const rows = list.map((p) => h('tr', { 'data-testid': 'pause-row' },
    td(p.scope), td(p.what ?? '—'), td(p.since_ms ? fmtRel(p.since_ms) : '—', 'nowrap')));
  return panel(h('a', { href: '#/pauses' }, 'Standing pauses'), table(['Scope', 'What', 'Since'], rows, 'Nothing is paused.'));
}

// Completed and failed per minute as grouped bars, oldest on the left.
function throughputPanel(tp) {
  const buckets = (tp && tp.buckets) || [];
  const W = 480, H = 190, L = 30, R = 6, T = 10, B = 20;
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.completed || 0, b.failed || 0)));
  const top = niceCeil(max);
  const n = Math.max(1, buckets.length);
  const slot = (W - L - R) / n;
  const bw = Math.max(1, (slot - 1) / 2);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Completed and failed jobs per minute, last hour', 'data-testid': 'throughput-chart' });
  for (const v of Number.isInteger(top / 2) ? [0, top / 2, top] : [0, top]) {
    svg.append(s('line', { class: 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: L - 5, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  buckets.forEach((b, i) => {
    const x = L + i * slot;
    const label = `${fmtClock(new Date(b.start_ms)).slice(0, 5)}: ${b.completed || 0} completed, ${b.failed || 0} failed`;
    for (const [k, dx] of [['completed', 0], ['failed', bw]]) {
      const v = b[k] || 0;
      if (v) svg.append(s('rect', { class: `bar-${k}`, x: x + dx, y: y(v), width: bw, height: y(0) - y(v) }, s('title', {}, label)));
    }
  });
  const ticks = [[0, '−60m'], [Math.floor(n / 2), '−30m'], [n, 'now']];
  for (const [i, text] of ticks) {
    svg.append(s('text', { class: 'axis', x: L + i * slot, y: H - 6, 'text-anchor': i === 0 ? 'start' : i === n ? 'end' : 'middle' }, text));
  }
  const sum = (k) => buckets.reduce((a, b) => a + (b[k] || 0), 0);
  return h('section', { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'Throughput, last hour'),
      h('div', { class: 'legend' },
        h('span', { class: 's-completed' }, h('span', { class: 'key' }), `completed ${sum('completed')}`),
        h('span', { class: 's-failed' }, h('span', { class: 'key' }), `failed ${sum('failed')}`))),
    svg);
}

// The smallest of 1, 2, 5 × 10^k at least v.
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

// ---- Job list ----------------------------------------------------------------------

const FILTER_KEYS = ['status', 'type', 'namespace', 'key', 'since', 'until', 'limit', 'newest'];
const pager = { filter: '', stack: [] };

function viewJobs(route, token) {
  const q = route.query;
  const filterKey = FILTER_KEYS.map((k) => `${k}=${q.get(k) || ''}`).join('&');
  const cursor = q.get('cursor') || '';
  if (pager.filter !== filterKey) Object.assign(pager, { filter: filterKey, stack: [] });
  const back = pager.stack.indexOf(cursor);
  if (back >= 0) pager.stack.length = back; // went back with the browser

  const results = h('div', { 'data-testid': 'job-results' }, h('p', { class: 'muted' }, 'Loading…'));
  setLive(async () => {
    const res = await api(`jobs?${apiQuery(q)}`);
    if (current(token)) fill(results, res, (r) => jobResults(r, q, cursor));
  }, LIST_MS);
  return h('div', {}, h('h1', {}, 'Jobs'), filterForm(q), results);
}

function apiQuery(q) {
  const out = new URLSearchParams();
  for (const k of [...FILTER_KEYS, 'cursor']) if (q.get(k)) out.set(k, q.get(k));
  return out.toString();
}

function filterForm(q) {
  const chosen = new Set((q.get('status') || '').split(',').filter(Boolean));
  const statusBoxes = STATUSES.map((st) => h('label', { class: `s-${st}` },
    h('input', { type: 'checkbox', name: 'status', value: st, checked: chosen.has(st), 'data-testid': `filter-status-${st}` }), st));
  const text = (name, label, extra = {}) => h('label', { class: 'field' }, h('span', {}, label),
    h('input', { name, value: q.get(name) || '', 'data-testid': `filter-${name}`, ...extra }));
  const when = (name, label) => h('label', { class: 'field' }, h('span', {}, label),
    h('input', { type: 'datetime-local', name, value: toLocalInput(q.get(name)), 'data-testid': `filter-${name}` }));
  const limit = Number(q.get('limit')) || DEFAULT_LIMIT;
  const sizes = PAGE_SIZES.includes(limit) ? PAGE_SIZES : [...PAGE_SIZES, limit].sort((a, b) => a - b);

  const form = h('form', { class: 'panel filters', 'data-testid': 'filter-form', onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/jobs?${filterQuery(form)}`;
  } },
  h('div', { class: 'field' }, h('span', {}, 'Status'), h('div', { class: 'checks' }, statusBoxes)),
  text('type', 'Type', { list: 'type-list', size: 6, placeholder: 'any' }),
  h('datalist', { id: 'type-list' }, TYPES.map((t) => h('option', { value: t }))),
  text('namespace', 'Namespace', { size: 12 }),
  text('key', 'Key', { size: 14 }),
  when('since', 'Created since'),
  when('until', 'Created until'),
  h('label', { class: 'field' }, h('span', {}, 'Page size'),
    h('select', { name: 'limit', 'data-testid': 'filter-limit' },
      sizes.map((n) => h('option', { value: String(n), selected: n === limit }, String(n))))),
  h('label', { class: 'field check' }, h('input', { type: 'checkbox', name: 'newest', checked: q.get('newest') === '1', 'data-testid': 'filter-newest' }), 'Newest first'),
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'filter-apply' }, 'Apply'),
    h('a', { href: '#/jobs', 'data-testid': 'filter-reset' }, 'Reset')));
  return form;
}

// The form's filters as a fragment query (times as ms since the epoch).
function filterQuery(form) {
  const f = new FormData(form);
  const out = new URLSearchParams();
  const statuses = f.getAll('status');
  if (statuses.length) out.set('status', statuses.join(','));
  for (const k of ['type', 'namespace', 'key']) {
    const v = String(f.get(k) || '').trim();
    if (v) out.set(k, v);
  }
  for (const k of ['since', 'until']) {
    const ms = fromLocalInput(f.get(k));
    if (ms !== null) out.set(k, String(ms));
  }
  if (Number(f.get('limit')) !== DEFAULT_LIMIT) out.set('limit', String(f.get('limit')));
  if (f.get('newest')) out.set('newest', '1');
  return out.toString();
}

function jobResults(res, q, cursor) {
  const jobs = res.jobs || [];
  const rows = jobs.map((j) => h('tr', { 'data-testid': 'job-row', 'data-id': j.id },
    td(jobLink(j.id), 'nowrap'),
    td(j.type, '', 'row-type'),
    td(badge(j.status), '', 'row-status'),
    td(j.namespace),
    td(j.resource),
    td(j.priority, 'num'),
    td(`${j.retry_count ?? 0}/${j.max_retries ?? 0}`, 'num'),
    td(j.status === 'running' ? progressEl(j.progress) : pct(j.progress), 'num'),
    td(shortTimeEl(j.created_at_ms)),
    td(shortTimeEl(j.finished_at_ms ?? j.run_at_ms)),
    td(h('span', { title: j.message || '' }, j.message || ''), 'msg')));
  const go = (c) => {
    const next = new URLSearchParams(q);
    if (c) next.set('cursor', c);
    else next.delete('cursor');
    location.hash = `#/jobs?${next.toString()}`;
  };
  const pagerEl = h('div', { class: 'pager' },
    h('button', { type: 'button', 'data-testid': 'page-prev', disabled: !cursor, onclick: () => go(pager.stack.pop() || '') },
      pager.stack.length || !cursor ? 'Previous page' : 'First page'),
    h('button', { type: 'button', 'data-testid': 'page-next', disabled: !res.next_cursor, onclick: () => {
      pager.stack.push(cursor);
      go(res.next_cursor);
    } }, 'Next page'),
    h('span', { class: 'muted', 'data-testid': 'job-count' }, `${jobs.length} job${jobs.length === 1 ? '' : 's'} on this page`));
  return [
    h('div', { class: 'panel' }, table(['Job', 'Type', 'Status', 'Namespace', 'Resource', '#Priority', '#Retries', '#Progress', 'Created', 'Finished / run at', 'Message'],
      rows, 'No job matches these filters.'), pagerEl),
  ];
}

// ---- Job page --------------------------------------------------------------------------

function viewJob(route, token) {
  const root = h('div', { 'data-testid': 'job-page' }, h('p', { class: 'muted' }, 'Loading…'));
  const show = (job) => { if (current(token)) fill(root, job, (j) => jobContent(j, show)); };
  setLive(async () => {
    try {
      show(await api(`jobs/${encodeURIComponent(route.id)}`));
    } catch (e) {
      if (e.status !== 404) throw e;
      setLive(null, 0);
      root.replaceChildren(h('h1', {}, 'No such job'), h('p', { 'data-testid': 'job-missing' }, e.message));
    }
  }, LIST_MS);
  return root;
}

// The actions that make sense for a job in this state.
function jobActions(j, show) {
  if (!canAct()) return [];
  const active = ['new', 'queued', 'running', 'retrying', 'paused'].includes(j.status);
  const run = (verb, done) => act(async () => {
    const job = await api(`jobs/${encodeURIComponent(j.id)}/${verb}`, { method: 'POST' });
    show(job);
    notice(`${done}: `, jobLink(j.id), ` is now ${job.status}.`);
  });
  return [
    active && !j.cancel_requested && button('Cancel', () => run('cancel', 'Cancel'), { class: 'danger', testid: 'btn-cancel' }),
    ['failed', 'cancelled'].includes(j.status) && button('Retry', () => run('retry', 'Retry'), { testid: 'btn-retry' }),
    ['new', 'queued', 'retrying', 'running'].includes(j.status) && !j.pause_requested && button('Pause', () => run('pause', 'Pause'), { testid: 'btn-pause' }),
    (j.status === 'paused' || j.pause_requested) && button('Resume', () => run('resume', 'Resume'), { testid: 'btn-resume' }),
  ].filter(Boolean);
}

function jobContent(j, show) {
  const field = (label, value, testid) => h('div', {}, h('dt', {}, label), h('dd', { 'data-testid': testid }, value ?? '—'));
  const duration = j.started_at_ms ? fmtDur((j.finished_at_ms || Date.now()) - j.started_at_ms) : null;
  const blockedBy = j.blocked_by && /^[A-Z]{2}-/.test(j.blocked_by) ? jobLink(j.blocked_by) : j.blocked_by;
  return [
    h('h1', {}, h('span', { class: 'mono', 'data-testid': 'job-id' }, j.id),
      h('span', { class: `badge s-${j.status}`, 'data-testid': 'job-status' }, j.status),
      j.cancel_requested && h('span', { class: 'badge badge-flag' }, 'cancel requested'),
      j.pause_requested && h('span', { class: 'badge badge-flag' }, 'pause requested')),
    h('div', { class: 'actions', 'data-testid': 'job-actions' }, jobActions(j, show)),
    h('div', { class: 'stack' },
      h('section', { class: 'panel' }, h('dl', { class: 'fields' },
        field('Type', j.type, 'job-type'),
        field('Namespace', j.namespace),
        field('Priority', j.priority),
        field('Progress', progressEl(j.progress)),
        field('Attempts', j.attempts, 'job-attempts'),
        field('Retries', `${j.retry_count ?? 0} of ${j.max_retries ?? 0}`, 'job-retries'),
        field('Resource', j.resource),
        field('Blocked by', blockedBy),
        field('Node', j.node_id),
        field('Idempotency key', j.idempotency_key),
        field('Schedule', j.schedule_id && h('a', { href: '#/schedules', class: 'mono' }, j.schedule_id)),
        field('Fire time', j.fire_time_ms && timeEl(j.fire_time_ms)),
        field('Created', timeEl(j.created_at_ms)),
        field('Updated', timeEl(j.updated_at_ms)),
        field('Run at', timeEl(j.run_at_ms)),
        field('Started', timeEl(j.started_at_ms)),
        field('Finished', timeEl(j.finished_at_ms)),
        field('Duration', duration),
        field('Lease until', timeEl(j.lease_until_ms)))),
      panel('Message', h('div', { class: 'message', 'data-testid': 'job-message' }, j.message ?? ''),
        j.message === null && h('span', { class: 'muted' }, 'No message.')),
      j.exception_trace && panel('Exception trace', h('pre', { 'data-testid': 'job-trace' }, j.exception_trace)),
      h('div', { class: 'grid' },
        panel('Params', h('pre', { 'data-testid': 'job-params' }, fmtJson(j.params))),
        panel('Result', h('pre', { 'data-testid': 'job-result' }, fmtJson(j.result))),
        panel('Checkpoint', h('pre', { 'data-testid': 'job-checkpoint' }, fmtJson(j.checkpoint))))),
  ];
}

// ---- Schedules and policies ----------------------------------------------------------

function viewSchedules(route, token) {
  const sched = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const pol = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const reload = async () => {
    const [a, b] = await Promise.all([api('schedules'), api('policies')]);
    if (!current(token)) return;
    fill(sched, a.schedules || [], (list) => schedulesTable(list, reload));
    fill(pol, b.policies || [], policiesTable);
  };
  setLive(reload, LIST_MS);
  return h('div', {}, h('h1', {}, 'Schedules'), h('section', { class: 'panel' }, sched),
    h('h1', { class: 'spaced' }, 'Table policies'), h('section', { class: 'panel' }, pol));
}

function trigger(x) {
  if (x.cron) return `cron ${x.cron}${x.tz ? ` (${x.tz})` : ''}`;
  if (x.interval || x.interval_ms) return `every ${x.interval || fmtDur(x.interval_ms)}`;
  return '—';
}

function schedulesTable(list, reload) {
  const key = (x) => encodeURIComponent(x.id || x.name);
  const post = (x, verb) => act(async () => {
    const res = await api(`schedules/${key(x)}/${verb}`, { method: 'POST' });
    if (verb === 'run' && res && res.id) notice(`${x.name} ran now: `, jobLink(res.id));
    else notice(`${x.name}: ${verb === 'pause' ? 'paused' : 'resumed'}.`);
    await refreshNow(reload);
  });
  const rows = list.map((x) => h('tr', { 'data-testid': 'schedule-row', 'data-name': x.name },
    td(x.name), td(x.type), td(trigger(x), 'mono'),
    td(x.next_fire_ms ? h('span', { title: fmtTime(x.next_fire_ms) }, fmtRel(x.next_fire_ms)) : '—', 'nowrap'),
    td(shortTimeEl(x.last_fire_ms)),
    td(x.last_job_id ? jobLink(x.last_job_id) : '—'),
    td(x.paused ? h('span', { class: 'badge s-paused' }, 'paused') : 'no'),
    td(x.consecutive_failures ?? 0, 'num'),
    canAct() && td(h('div', { class: 'actions' },
      button('Run now', () => post(x, 'run'), { class: 'small', testid: 'btn-run-now' }),
      x.paused
        ? button('Resume', () => post(x, 'resume'), { class: 'small', testid: 'btn-schedule-resume' })
        : button('Pause', () => post(x, 'pause'), { class: 'small', testid: 'btn-schedule-pause' })))));
  const heads = ['Name', 'Type', 'Trigger', 'Next fire', 'Last fire', 'Last job', 'Paused', '#Failures'];
  return table(canAct() ? [...heads, 'Actions'] : heads, rows, 'No schedules.');
}

function policyTarget(p) {
  if (p.table) return `${p.namespace ?? '*'}.${p.table}`;
  const what = p.table_type ? `all ${p.table_type} tables` : 'all tables';
  return p.namespace ? `${what} in ${p.namespace}` : what;
}

function policyRule(p) {
  const parts = [];
  if (p.rows) parts.push(`rows>=${p.rows}`);
  if (p.max_age || p.max_age_ms) parts.push(`age>=${p.max_age || fmtDur(p.max_age_ms)}`);
  if (p.segments) parts.push(`segments>=${p.segments}`);
  if (p.small_files) parts.push(`small files>=${p.small_files}${p.small_bytes ? ` (<${p.small_bytes} B)` : ''}`);
  if (p.every || p.every_ms) parts.push(`every ${p.every || fmtDur(p.every_ms)}`);
  if (p.retention_hours) parts.push(`retention ${p.retention_hours}h`);
  return parts.join(' or ') || '—';
}

function policiesTable(list) {
  const rows = list.map((p) => h('tr', { 'data-testid': 'policy-row' },
    td(p.name), td(p.kind), td(p.job_type), td(policyTarget(p)), td(policyRule(p), 'mono'),
    td(p.priority, 'num'), td(p.paused ? h('span', { class: 'badge s-paused' }, 'paused') : 'no')));
  return table(['Name', 'Kind', 'Job type', 'Target', 'Rule', '#Priority', 'Paused'], rows, 'No table policies.');
}

// ---- Pauses ----------------------------------------------------------------------------

function viewPauses(route, token) {
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const showPauses = (pauses) => { if (current(token)) fill(list, pauses, (p) => pausesTable(p, change)); };
  const change = (verb, body) => act(async () => {
    const res = await api(verb === 'pause' ? 'pauses' : 'pauses/resume', { method: 'POST', body });
    showPauses(res.pauses || []);
    notice(`${verb === 'pause' ? 'Paused' : 'Resumed'} ${body.scope}${body.what ? ` ${body.what}` : ''}.`);
    return true;
  });
  setLive(async () => showPauses((await api('pauses')).pauses || []), LIST_MS);
  return h('div', {}, h('h1', {}, 'Standing pauses'),
    h('p', { class: 'muted' }, 'While a pause stands, no process claims the jobs it covers; running jobs go on.'),
    h('section', { class: 'panel' }, list),
    canAct() && pauseForm(change));
}

function pausesTable(pauses, change) {
  const rows = pauses.map((p) => h('tr', { 'data-testid': 'pause-row' },
    td(p.scope), td(p.what ?? '—'), td(shortTimeEl(p.since_ms)),
    canAct() && td(button('Resume', () => change('resume', { scope: p.scope, what: p.what ?? null }),
      { class: 'small', testid: 'btn-pause-resume' }))));
  const heads = ['Scope', 'What', 'Since'];
  return table(canAct() ? [...heads, 'Actions'] : heads, rows, 'Nothing is paused.');
}

function pauseForm(change) {
  const scope = h('select', { name: 'scope', 'data-testid': 'pause-scope' },
    ['all', 'type', 'resource'].map((x) => h('option', { value: x }, x)));
  const what = h('input', { name: 'what', 'data-testid': 'pause-what', placeholder: 'FL or app.orders', disabled: true });
  scope.addEventListener('change', () => { what.disabled = scope.value === 'all'; });
  const form = h('form', { class: 'panel filters spaced', 'data-testid': 'pause-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = { scope: scope.value, what: scope.value === 'all' ? null : what.value.trim() };
    if (await change('pause', body)) what.value = '';
  } },
  h('label', { class: 'field' }, h('span', {}, 'Pause'), scope),
  h('label', { class: 'field' }, h('span', {}, 'Type or resource'), what),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'btn-pause-submit' }, 'Pause')));
  return form;
}

// ---- Create form -------------------------------------------------------------------------

function viewNew() {
  if (!canAct()) return h('div', {}, h('h1', {}, 'New job'), h('p', {}, 'This dashboard is read-only.'));
  const err = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'form-error' });
  const type = h('select', { name: 'type', required: true, 'data-testid': 'new-type' },
    TYPES.map((t) => h('option', { value: t }, t)));
  const params = h('textarea', { name: 'params', spellcheck: false, 'data-testid': 'new-params' });
  let example = '';
  const fillExample = () => {
    if (params.value.trim() === '' || params.value === example) {
      example = JSON.stringify(PARAM_EXAMPLES[type.value] || {}, null, 2);
      params.value = example;
    }
  };
  type.addEventListener('change', fillExample);
  fillExample();
  const input = (name, label, extra = {}) => h('label', { class: 'field' }, h('span', {}, label),
    h('input', { name, 'data-testid': `new-${name.replace('_', '-')}`, ...extra }));

  const form = h('form', { class: 'panel', 'data-testid': 'new-form', onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    let body;
    try {
      body = newJobBody(new FormData(form));
    } catch (e) {
      err.textContent = e.message;
      return;
    }
    try {
      const res = await api('jobs', { method: 'POST', body });
      notice(res.created === false ? 'An active job already holds that key: ' : 'Created ', jobLink(res.id));
      location.hash = `#/job/${encodeURIComponent(res.id)}`;
    } catch (e) {
      err.textContent = e.message;
      if (e.status !== 400) showError(e);
    }
  } },
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, 'Type'), type),
    input('namespace', 'Namespace'),
    input('key', 'Idempotency key'),
    input('priority', 'Priority', { type: 'number', step: 1, placeholder: '0' }),
    input('max_retries', 'Max retries', { type: 'number', min: 0, max: 1000, step: 1, placeholder: 'default' }),
    input('run_at', 'Run at', { type: 'datetime-local' }),
    input('resource', 'Resource', { placeholder: 'derived from params' }),
    h('label', { class: 'field wide' }, h('span', {}, 'Params (JSON object)'), params)),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'new-submit' }, 'Create job'), err));
  return h('div', {}, h('h1', {}, 'New job'), form);
}

// The POST /api/jobs body from the form; throws with a message the user reads.
function newJobBody(f) {
  let params;
  try {
    params = JSON.parse(String(f.get('params') || '{}'));
  } catch (e) {
    throw new Error(`Params are not valid JSON: ${e.message}`);
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new Error('Params must be a JSON object.');
  const body = { type: f.get('type'), params };
  for (const k of ['namespace', 'key', 'resource']) {
    const v = String(f.get(k) || '').trim();
    if (v) body[k] = v;
  }
  for (const k of ['priority', 'max_retries']) {
    const v = String(f.get(k) || '').trim();
    if (v === '') continue;
    if (!/^-?\d+$/.test(v)) throw new Error(`${k.replace('_', ' ')} must be a whole number.`);
    body[k] = Number(v);
  }
  const runAt = fromLocalInput(f.get('run_at'));
  if (runAt !== null) body.run_at_ms = runAt;
  return body;
}

// ---- Start -----------------------------------------------------------------------------

async function start() {
  $('signin').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('error-close').addEventListener('click', () => clearError());
  window.addEventListener('hashchange', render);
  await loadSession();
  render();
}

start();
