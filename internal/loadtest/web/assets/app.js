// Loadtest web UI: plain JavaScript, no build step, no dependencies. It talks to the loadtest API
// (API.md, "Loadtest" and "Loadtest additions") with the admin token kept in localStorage, and
// draws its charts as SVG.
'use strict';

const API = 'api/v1';
const TOKEN_KEY = 'loadtest.adminToken';
const ACTIVE = new Set(['preparing', 'running']);
const FINAL = new Set(['completed', 'stopped', 'aborted', 'failed']);
// Error codes that are a business rule's correct answer rather than a fault (as the service
// counts them in `rejected`).
const REJECTIONS = new Set(['insufficient_funds', 'currency_mismatch', 'same_account', 'balance_limit']);
// A run whose error rate (rejections aside) is above this fails even without an error_rate
// threshold: a green badge must mean a clean run.
const MAX_ERROR_RATE = 0.01;
const LIVE_MS = 1000; // detail refresh while a run is active
const IDLE_MS = 2000; // detail refresh while it is verifying or its data is being deleted
const HISTOGRAM_EVERY = 5; // polls between two reads of the latency distribution of a live run
const LIST_ACTIVE_MS = 2000;
const LIST_IDLE_MS = 5000;
const PAGE_SIZE = 50;
// A run claims only the idle workers heard of this recently (the service's WorkerLostAfter); one
// unheard of for longer is listed until the service forgets it, a minute later.
const WORKER_FRESH_MS = 5000;
// A load worker's states (GET /workers), each with what it means and the status badge tone it
// borrows: a lost worker is shown as a failure.
const WORKER_STATES = {
  idle: {tone: 'idle', title: 'Waiting for a run'},
  assigned: {tone: 'preparing', title: 'Claimed by a run that is preparing'},
  running: {tone: 'running', title: 'Sending its share of the run'},
  settling: {tone: 'preparing', title: 'Resending what got no definite answer'},
  done: {tone: 'completed', title: 'Reported its share\'s outcome'},
  lost: {tone: 'failed', title: 'Stopped reporting mid-run: its share\'s unsent requests are counted as not sent'},
};

const state = {
  token: localStorage.getItem(TOKEN_KEY) || '',
  unauthorized: false,
  runs: [], // newest first: the first page, then any older pages loaded
  nextCursor: null, // of the last page loaded; null when there is none older
  olderLoaded: false,
  picked: [], // ids ticked for comparison, at most two; the first is the base
  view: null, // {kind: 'run', id} | {kind: 'compare', a, b} | null
  gen: 0, // bumped on every view change; a poll loop of an older view stops
  listTimer: 0,
  workers: null, // the fleet by name (GET /workers); null until read
  fleet: null, // 'ok' once the fleet was read, 'none' when the service takes no workers
  workersTimer: 0,
  skew: 0, // this browser's clock minus the service's, from the Date of its last answer
  charts: new Map(), // chart box -> last chart options, redrawn on resize
};

// ---------- small helpers ----------

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nf0 = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});
const nf1 = new Intl.NumberFormat('en-US', {maximumFractionDigits: 1});
const nf2 = new Intl.NumberFormat('en-US', {maximumFractionDigits: 2});
const nf3 = new Intl.NumberFormat('en-US', {maximumFractionDigits: 3});
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

function fmtInt(v) { return isNum(v) ? nf0.format(v) : '—'; }
function fmtRate(v) { return isNum(v) ? (v >= 100 ? nf0 : nf1).format(v) : '—'; }
function fmtPct(v) { return isNum(v) ? nf1.format(v * 100) + ' %' : '—'; }

// fmtMs shows a latency. It is always in milliseconds, with thousands separators, so figures side
// by side compare at a glance (never "6,996 ms" next to "11.7 s").
function fmtMs(v) {
  if (!isNum(v)) return '—';
  const a = Math.abs(v);
  return (a >= 100 ? nf0 : a >= 10 ? nf1 : a >= 1 ? nf2 : nf3).format(v) + ' ms';
}

function fmtSecs(s) {
  if (!isNum(s)) return '—';
  s = Math.max(0, Math.round(s));
  if (s < 120) return s + ' s';
  const m = Math.floor(s / 60);
  return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
}

// parseTime reads an RFC 3339 time (any fraction of a second) into ms, or null when unset.
function parseTime(t) {
  if (!t || typeof t !== 'string') return null;
  const ms = Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
  if (!Number.isFinite(ms) || ms < Date.UTC(1971, 0, 1)) return null; // Go's zero time
  return ms;
}

const clock = (d) => d.toLocaleTimeString('en-GB', {hour12: false});

// fmtTime is a time of day, with the date when withDate or when it is not today.
function fmtTime(t, withDate) {
  const ms = typeof t === 'number' ? t : parseTime(t);
  if (ms == null) return '—';
  const d = new Date(ms);
  if (!withDate && new Date().toDateString() === d.toDateString()) return clock(d);
  return d.toLocaleDateString('en-CA') + ' ' + clock(d);
}

// fmtWhen is a run's start as the list shows it: the time alone for today, the day and month this
// year ("3 Dec 14:03"), the full date before.
function fmtWhen(t) {
  const ms = typeof t === 'number' ? t : parseTime(t);
  if (ms == null) return '—';
  const d = new Date(ms);
  const now = new Date();
  if (now.toDateString() === d.toDateString()) return clock(d);
  const hm = d.toLocaleTimeString('en-GB', {hour12: false, hour: '2-digit', minute: '2-digit'});
  if (now.getFullYear() === d.getFullYear()) return d.toLocaleDateString('en-GB', {day: 'numeric', month: 'short'}) + ' ' + hm;
  return d.toLocaleDateString('en-CA') + ' ' + hm;
}

// shortId is the tail of a run id: the service's ids are UUIDv7, whose head is the time.
const shortId = (id) => String(id || '').slice(-8);

// plural is a count and its noun: "1 worker", "3 workers".
const plural = (n, noun) => fmtInt(n) + ' ' + noun + (n === 1 ? '' : 's');

// serverNow is the service's time by this browser's clock, so a time the service gave is compared
// with its own clock.
const serverNow = () => Date.now() - state.skew;

// fmtAgo is how long ago the service's time t was: "just now", "12 s ago", "3 min 05 s ago".
function fmtAgo(t) {
  const ms = parseTime(t);
  if (ms == null) return '—';
  const s = (serverNow() - ms) / 1000;
  return s < 2 ? 'just now' : fmtSecs(s) + ' ago';
}

// andList joins words as a sentence does: "a", "a and b", "a, b and c".
const andList = (xs) => (xs.length < 2 ? xs.join('') : xs.slice(0, -1).join(', ') + ' and ' + xs[xs.length - 1]);

const runTitle = (run) => (run && run.name) || 'Run ' + shortId(run && run.id);

function humanize(key) {
  const s = String(key).replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || 'HTTP ' + status);
    this.status = status;
    this.problem = problem || {};
  }
}

const runPath = (id, tail) => '/runs/' + encodeURIComponent(id) + (tail || '');

// request sends one API request with the token and returns the response when it is 2xx; other
// answers become an ApiError with the problem the service sent.
async function request(method, path, body) {
  const headers = {Accept: 'application/json, application/problem+json'};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const init = {method, headers, cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    // A seed is a 64-bit integer, beyond a JavaScript number's precision: it is kept as digits.
    init.body = JSON.stringify(body).replace(/"seed":"(\d+)"/, '"seed":$1');
  }
  let resp;
  try {
    resp = await fetch(API + path, init);
  } catch (e) {
    showBanner('network', 'The loadtest service cannot be reached (' + e.message + '). Retrying…');
    throw new ApiError(0, {title: 'Network error', detail: 'The loadtest service cannot be reached.'});
  }
  clearBanner('network');
  if (resp.ok) return resp;
  const text = await resp.text();
  const data = parseJSON(text);
  if (resp.status === 401) {
    unauthorized();
    throw new ApiError(401, data);
  }
  throw new ApiError(resp.status, data || {title: resp.statusText, detail: text.slice(0, 300)});
}

function parseJSON(text) {
  if (!text) return null;
  try {
    return JSON.parse(text.replace(/"seed":\s*(\d{16,})/g, '"seed":"$1"'));
  } catch {
    return null;
  }
}

async function api(method, path, body) {
  const resp = await request(method, path, body);
  return parseJSON(await resp.text());
}

const listOf = (d) => (d && d.data) || [];

// ---------- banner and token ----------

function showBanner(kind, msg, tone) {
  const b = $('banner');
  b.dataset.kind = kind;
  b.className = 'banner ' + (tone || 'error');
  b.textContent = msg;
  b.hidden = false;
}

function clearBanner(kind) {
  const b = $('banner');
  if (!b.hidden && (!kind || b.dataset.kind === kind)) b.hidden = true;
}

function unauthorized() {
  if (state.unauthorized) return;
  state.unauthorized = true;
  showBanner('auth', state.token
    ? 'The admin token was refused (401 Unauthorized). Enter the right token to continue.'
    : 'The API needs the admin token (401 Unauthorized). Enter it to continue.');
  openTokenPanel();
  updateTokenLabel();
}

function openTokenPanel() {
  $('token-panel').hidden = false;
  $('token-cancel').hidden = !state.token;
  const input = $('token-input');
  input.value = '';
  input.focus();
}

function updateTokenLabel() {
  $('token-label').textContent = !state.token ? 'No admin token'
    : state.unauthorized ? 'Admin token refused' : 'Admin token set';
  $('token-label').className = state.unauthorized || !state.token ? 'warn' : '';
  $('token-change').textContent = state.token ? 'Change token' : 'Enter token';
}

function saveToken(tok) {
  state.token = tok.trim();
  localStorage.setItem(TOKEN_KEY, state.token);
  state.unauthorized = false;
  clearBanner('auth');
  $('token-panel').hidden = true;
  updateTokenLabel();
  refreshList();
  refreshWorkers();
  route();
}

// ---------- confirm dialog ----------

function confirmDialog(title, text, okLabel) {
  const dlg = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  dlg.showModal();
  $('confirm-cancel').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), {once: true});
  });
}

// ---------- what a run came to ----------

// settled says nothing more changes by itself: the run ended and was verified (phase "done").
function settled(run) {
  if (run.phase) return run.phase === 'done';
  return FINAL.has(run.status) && (run.verification != null || run.status === 'failed');
}

const cleanupRunning = (run) => !!(run.cleanup && run.cleanup.status === 'running');

// busy says the run still changes: it runs, is verified, or its data is being deleted.
const busy = (run) => !settled(run) || cleanupRunning(run);

// verdict is true when every verification check passed, false when one failed, null while
// there is none.
function verdict(v) {
  if (v == null || typeof v !== 'object') return null;
  if (typeof v.ok === 'boolean') return v.ok;
  return null;
}

const METRICS = {
  p50_ms: {label: 'p50 latency', unit: 'ms', bound: 'max'},
  p90_ms: {label: 'p90 latency', unit: 'ms', bound: 'max'},
  p99_ms: {label: 'p99 latency', unit: 'ms', bound: 'max'},
  error_rate: {label: 'error rate', unit: 'share', bound: 'max'},
  achieved_ratio: {label: 'achieved / scheduled', unit: 'share', bound: 'min'},
};

// fmtMetric shows a threshold metric's value in its unit: ms, or a share as a percentage.
function fmtMetric(metric, v) {
  const m = METRICS[metric];
  if (!m) return isNum(v) ? nf3.format(v) : '—';
  return m.unit === 'ms' ? fmtMs(v) : fmtPct(v);
}

// thresholdText is a threshold as a person reads it: "p99 latency ≤ 50 ms over 10 s windows".
function thresholdText(t) {
  const m = METRICS[t.metric] || {label: t.metric};
  const bound = isNum(t.max) ? '≤ ' + fmtMetric(t.metric, t.max) : isNum(t.min) ? '≥ ' + fmtMetric(t.metric, t.min) : '';
  return m.label + ' ' + bound;
}

const windowText = (t) => (t.window_s ? 'every ' + nf0.format(t.window_s) + ' s window' : 'whole run');

// outcome judges a run as the list and the detail show it. Pass means it completed, every
// threshold held, the verification found nothing wrong and few requests failed; anything less
// is a fail (or "aborted" when a threshold ended it), so green always means a clean run.
function outcome(run) {
  if (!settled(run)) return {key: 'pending', label: 'pending', reasons: [ACTIVE.has(run.status) ? 'the run is ' + run.status : 'verifying']};
  if (run.status === 'aborted') return {key: 'aborted', label: 'aborted', reasons: [run.abort_reason || 'a threshold with abort broke']};
  const reasons = [];
  if (run.status === 'failed') reasons.push('the run failed' + (run.error ? ': ' + run.error : ''));
  for (const t of run.thresholds || []) {
    if (t.passed === false) reasons.push('threshold ' + thresholdText(t) + ' broken (observed ' + fmtMetric(t.metric, t.observed) + ')');
  }
  const v = verdict(run.verification);
  if (v === false) reasons.push('verification failed' + (run.verification.problems && run.verification.problems.length ? ': ' + run.verification.problems.join('; ') : ''));
  else if (v == null && run.status !== 'failed') reasons.push('not verified' + (run.error ? ': ' + run.error : ''));
  if (isNum(run.error_rate) && run.error_rate > MAX_ERROR_RATE) {
    reasons.push('error rate ' + fmtPct(run.error_rate) + ' is over ' + fmtPct(MAX_ERROR_RATE));
  }
  // A lost worker's share never went out: the load asked for was not the load sent.
  for (const w of run.workers || []) {
    if (w.state === 'lost') reasons.push('worker ' + w.name + ' was lost: ' + fmtInt(w.not_sent || 0) + ' of its requests were not sent');
  }
  if (reasons.length) return {key: 'fail', label: 'fail', reasons};
  if (run.status === 'stopped') return {key: 'none', label: 'no verdict', reasons: ['stopped before the end: nothing failed, but the load did not run its course']};
  const n = (run.thresholds || []).length;
  return {key: 'pass', label: 'pass', reasons: ['completed' + (n ? ', ' + n + ' threshold' + (n > 1 ? 's' : '') + ' held' : '') + ', verification passed']};
}

function statusBadge(status) {
  return h('span', {class: 'status status-' + status, text: status || 'unknown'});
}

function resultBadge(run) {
  const o = outcome(run);
  return h('span', {class: 'result result-' + o.key, title: o.reasons.join('\n'), dataset: {result: o.key}}, o.label);
}

// dataState is what became of a run's test data: kept, being deleted (with the step), deleted or
// a deletion that failed (repeating it resumes).
function dataState(run) {
  const c = run.cleanup;
  if (!c) return {key: 'kept', text: 'kept', title: 'The run\'s users, accounts and transactions are still in the processor.'};
  if (c.status === 'running') return {key: 'deleting', text: 'deleting… ' + (c.step || ''), title: 'Deleting since ' + fmtTime(c.started_at) + (c.step ? ': ' + c.step : '')};
  if (c.status === 'failed') return {key: 'failed', text: 'deletion failed', title: c.error || 'The deletion failed; repeat it to resume.'};
  return {key: 'deleted', text: 'deleted', title: 'Deleted' + (parseTime(c.at) ? ' at ' + fmtTime(c.at, true) : '') + ': ' + cleanupText(c)};
}

function cleanupText(c) {
  return fmtInt(c.users) + ' users, ' + fmtInt(c.accounts) + ' accounts, ' + fmtInt(c.transactions) + ' transactions' +
    (isNum(c.activities) ? ', ' + fmtInt(c.activities) + ' activity items' : '') +
    (isNum(c.notifications) ? ', ' + fmtInt(c.notifications) + ' notifications' : '') +
    (c.analytics === true ? ' and the analytics rows' : '');
}

// runSeconds is how long the running phase lasted, or has lasted so far.
function runSeconds(run) {
  const a = parseTime(run.started_at);
  if (a == null) return null;
  const b = parseTime(run.ended_at) ?? (ACTIVE.has(run.status) ? Date.now() : null);
  return b == null ? null : (b - a) / 1000;
}

// ---------- run list ----------

async function refreshList() {
  clearTimeout(state.listTimer);
  if (state.token && !state.unauthorized) {
    try {
      const page = await api('GET', '/runs?limit=' + PAGE_SIZE);
      mergeFirstPage(listOf(page), page && page.next_cursor);
      renderList();
      $('runs-updated').textContent = 'updated ' + fmtTime(Date.now());
    } catch (e) {
      if (e.status && e.status !== 401) showBanner('list', 'Listing runs failed: ' + e.message);
    }
  }
  state.listTimer = setTimeout(refreshList, state.runs.some(busy) ? LIST_ACTIVE_MS : LIST_IDLE_MS);
}

// mergeFirstPage puts the newest page in place. Older pages a user loaded stay, under it.
function mergeFirstPage(runs, next) {
  if (!state.olderLoaded) {
    state.runs = runs;
    state.nextCursor = next || null;
    return;
  }
  const ids = new Set(runs.map((r) => r.id));
  state.runs = runs.concat(state.runs.filter((r) => !ids.has(r.id)));
}

async function loadOlder() {
  if (!state.nextCursor) return;
  const btn = $('runs-more');
  btn.disabled = true;
  try {
    const page = await api('GET', '/runs?limit=' + PAGE_SIZE + '&cursor=' + encodeURIComponent(state.nextCursor));
    const known = new Set(state.runs.map((r) => r.id));
    state.runs = state.runs.concat(listOf(page).filter((r) => !known.has(r.id)));
    state.nextCursor = (page && page.next_cursor) || null;
    state.olderLoaded = true;
    renderList();
  } catch (e) {
    if (e.status !== 401) showBanner('list', 'Loading older runs failed: ' + e.message);
  }
  btn.disabled = false;
}

function upsertRun(run) {
  const i = state.runs.findIndex((r) => r.id === run.id);
  if (i >= 0) state.runs[i] = run;
  else state.runs.unshift(run);
  renderList();
}

// rows keeps one table row per run, made once: updates change its cells in place, so the
// checkbox and the link a user (or a test) is clicking never vanish under the pointer.
const rows = new Map(); // run id -> {tr, box, link, cells, sig}

function newRow(run) {
  const box = h('input', {type: 'checkbox', class: 'pick', 'aria-label': 'Compare ' + runTitle(run),
    onchange: (e) => pick(run.id, e.target.checked)});
  const link = h('a', {href: '#/runs/' + run.id, class: 'run-link', title: run.id});
  const cells = [...Array(8)].map(() => h('td', {}));
  return {tr: h('tr', {dataset: {id: run.id}}, h('td', {}, box), cells), box, link, cells, sig: ''};
}

function fillRow(row, run) {
  const lat = run.latency_ms || {};
  const data = dataState(run);
  const o = outcome(run);
  const sig = JSON.stringify([run.name, run.status, run.phase, run.started_at, run.ended_at, run.achieved_rate, run.scheduled_rate,
    lat.p99, o, data, ACTIVE.has(run.status) ? Math.round(runSeconds(run)) : 0]);
  if (sig === row.sig) return;
  row.sig = sig;
  const [name, started, dur, status, result, rate, p99, dataCell] = row.cells;
  row.link.replaceChildren(run.name ? h('span', {class: 'run-name', text: run.name}) : '', h('code', {text: shortId(run.id)}));
  name.className = 'name-cell';
  name.replaceChildren(row.link);
  const at = run.started_at || run.created_at;
  started.replaceChildren(h('time', {datetime: at, title: fmtTime(at, true), text: fmtWhen(at)}));
  dur.className = 'num';
  dur.textContent = fmtSecs(runSeconds(run));
  status.replaceChildren(statusBadge(run.status));
  result.replaceChildren(resultBadge(run));
  rate.className = 'num';
  rate.title = 'scheduled ' + fmtRate(run.scheduled_rate) + '/s';
  rate.replaceChildren(h('strong', {class: run.behind ? 'warn-text' : null, text: fmtRate(run.achieved_rate)}),
    h('span', {class: 'arrow', text: ' of ' + fmtRate(run.scheduled_rate || run.target_rate)}));
  p99.className = 'num';
  p99.textContent = fmtMs(lat.p99);
  dataCell.className = 'data-cell';
  dataCell.replaceChildren(h('span', {class: 'data-state data-' + data.key, title: data.title, dataset: {state: data.key}, text: data.text}));
}

function renderList() {
  const body = $('runs-body');
  const current = state.view && state.view.kind === 'run' ? state.view.id : null;
  const inCompare = state.view && state.view.kind === 'compare' ? [state.view.a, state.view.b] : [];
  state.picked = state.picked.filter((id) => state.runs.some((r) => r.id === id));
  const order = state.runs.map((run) => {
    let row = rows.get(run.id);
    if (!row) rows.set(run.id, (row = newRow(run)));
    row.box.checked = state.picked.includes(run.id);
    row.tr.classList.toggle('selected', run.id === current || inCompare.includes(run.id));
    if (run.id === current) row.link.setAttribute('aria-current', 'true');
    else row.link.removeAttribute('aria-current');
    fillRow(row, run);
    return row.tr;
  });
  for (const id of rows.keys()) if (!state.runs.some((r) => r.id === id)) rows.delete(id);
  // Insert and move only what changed place (a new run goes on top; the others stay put).
  order.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  while (body.children.length > order.length) body.lastElementChild.remove();
  $('runs-empty').hidden = state.runs.length > 0;
  $('runs-more').hidden = !state.nextCursor;
  $('runs-count').textContent = state.runs.length ? state.runs.length + ' run' + (state.runs.length > 1 ? 's' : '') + (state.nextCursor ? ' shown, older ones not loaded' : '') : '';
  const btn = $('compare-btn');
  btn.disabled = state.picked.length !== 2;
  btn.textContent = 'Compare selected (' + state.picked.length + '/2)';
  updateStartButton();
}

function pick(id, on) {
  state.picked = state.picked.filter((x) => x !== id);
  if (on) {
    state.picked.push(id);
    if (state.picked.length > 2) state.picked.shift(); // ticking a third drops the oldest pick
  }
  renderList();
}

// updateStartButton keeps the form from starting a run while another is in progress: the
// service takes one at a time (and answers 409), so the button says so before it is pressed.
function updateStartButton() {
  const btn = $('start-run');
  const running = state.runs.find((r) => !settled(r));
  if (btn.dataset.submitting) return;
  btn.disabled = !!running;
  const hint = $('start-hint');
  hint.hidden = !running;
  hint.textContent = running ? runTitle(running) + ' is ' + (ACTIVE.has(running.status) ? running.status : 'being verified') + ': one run at a time.' : '';
}

// ---------- load workers ----------

// refreshWorkers reads the fleet (GET /workers) for the Workers card and the form's hint, every
// two seconds while a run or a worker is busy, every five otherwise.
async function refreshWorkers() {
  clearTimeout(state.workersTimer);
  if (state.token && !state.unauthorized) {
    try {
      const resp = await request('GET', '/workers');
      // The Date header is whole seconds: the skew is known to a second, which the freshness
      // check allows for.
      const date = Date.parse(resp.headers.get('Date') || '');
      state.skew = Number.isFinite(date) ? Date.now() - date - 500 : 0;
      const d = parseJSON(await resp.text());
      state.workers = (d && Array.isArray(d.workers)) ? d.workers : [];
      state.fleet = 'ok';
      clearBanner('workers');
      $('workers-updated').textContent = 'updated ' + fmtTime(Date.now());
    } catch (e) {
      if (e.status === 404) { // a service without a fleet sends every run itself
        state.workers = [];
        state.fleet = 'none';
      } else if (e.status && e.status !== 401) {
        showBanner('workers', 'Listing the workers failed: ' + e.message);
      }
    }
  }
  renderWorkers();
  const active = (state.workers || []).some((w) => w.state !== 'idle') || state.runs.some(busy);
  state.workersTimer = setTimeout(refreshWorkers, active ? LIST_ACTIVE_MS : LIST_IDLE_MS);
}

// fresh says the service heard of worker w lately enough for a run to claim it.
const fresh = (w) => serverNow() - (parseTime(w.seen_at) ?? 0) <= WORKER_FRESH_MS + 1000;

// idleWorkers counts the workers a run could claim now.
const idleWorkers = () => (state.workers || []).filter((w) => w.state === 'idle' && fresh(w)).length;

// serviceURL is this service's address, as a worker's LOADTEST_URL.
const serviceURL = () => new URL('.', location.href).href.replace(/\/$/, '');

// workerRows keeps one row per worker, updated in place (as the runs list does).
const workerRows = new Map(); // worker id -> {tr, link, cells, sig}

function newWorkerRow(w) {
  const link = h('a', {class: 'run-link'});
  const cells = [...Array(6)].map(() => h('td', {}));
  return {tr: h('tr', {dataset: {id: w.id}}, cells), link, cells, sig: ''};
}

function fillWorkerRow(row, w) {
  const seen = fmtAgo(w.seen_at);
  const stale = !fresh(w);
  const sig = JSON.stringify([w.name, w.state, w.run_id, w.share, w.sent, seen, stale]);
  if (sig === row.sig) return;
  row.sig = sig;
  const [name, st, run, share, sent, seenCell] = row.cells;
  row.tr.dataset.name = w.name;
  row.tr.dataset.state = w.state;
  name.className = 'worker-name';
  name.title = w.name + ' (joined ' + fmtTime(w.joined_at, true) + ')';
  name.textContent = w.name;
  st.replaceChildren(workerBadge(w.state));
  if (w.run_id) {
    row.link.href = '#/runs/' + w.run_id;
    row.link.title = w.run_id;
    row.link.replaceChildren(h('code', {text: shortId(w.run_id)}));
    run.replaceChildren(row.link);
  } else {
    run.replaceChildren(h('span', {class: 'arrow', text: '—'}));
  }
  share.textContent = w.share || '—';
  sent.className = 'num';
  // An idle worker keeps its last run's counts: they are that run's, not its own.
  sent.textContent = w.run_id ? fmtInt(w.sent) : '—';
  row.tr.dataset.stale = String(stale);
  seenCell.className = 'num' + (stale ? ' warn-text' : '');
  seenCell.title = fmtTime(w.seen_at, true) + (stale && w.state === 'idle'
    ? ': unheard of for over ' + WORKER_FRESH_MS / 1000 + ' s, so no run can claim it; the service forgets it a minute after its last word' : '');
  seenCell.textContent = seen;
}

function workerBadge(st) {
  const s = WORKER_STATES[st] || {tone: 'unknown', title: ''};
  return h('span', {class: 'status status-' + s.tone + ' worker-state', title: s.title || null, dataset: {state: st}}, st || 'unknown');
}

function renderWorkers() {
  const list = state.workers || [];
  const body = $('workers-body');
  const order = list.map((w) => {
    let row = workerRows.get(w.id);
    if (!row) workerRows.set(w.id, (row = newWorkerRow(w)));
    fillWorkerRow(row, w);
    return row.tr;
  });
  for (const id of [...workerRows.keys()]) if (!list.some((w) => w.id === id)) workerRows.delete(id);
  order.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  while (body.children.length > order.length) body.lastElementChild.remove();
  $('workers-wrap').hidden = !list.length;
  const empty = $('workers-empty');
  empty.hidden = list.length > 0;
  const key = [state.fleet, !!state.token].join();
  if (!list.length && empty.dataset.key !== key) {
    empty.dataset.key = key;
    empty.replaceChildren(...(state.fleet === 'none' ? ['This service takes no load workers: it sends every run itself.']
      : state.fleet !== 'ok' ? [state.token ? 'Reading the workers…' : 'Enter the admin token to list the workers.']
        : ['No workers. Start one on any machine that reaches this service: ',
          h('code', {class: 'command', text: 'LOADTEST_URL=' + serviceURL() + ' TXN_ADMIN_TOKEN=… loadtest worker'}),
          '. A run asking for workers then sends from them, each its share.']));
  }
  const idle = idleWorkers();
  $('workers-count').textContent = list.length ? idle + ' idle of ' + list.length : '';
  updateWorkersHint();
}

// updateWorkersHint says under the form's Workers field how many are idle now, and warns when
// the field asks for more: the service refuses such a run (409).
function updateWorkersHint() {
  const p = $('h-workers');
  const want = Number($('f-workers').value) || 0;
  const list = state.workers;
  const idle = idleWorkers();
  const key = JSON.stringify([state.fleet, list ? list.length : null, idle, want]);
  if (p.dataset.key === key) return;
  p.dataset.key = key;
  p.dataset.idle = list ? String(idle) : '';
  let nodes;
  if (state.fleet === 'none') nodes = ['This service takes no workers: it sends the load itself.'];
  else if (state.fleet !== 'ok') nodes = ['0: this service sends the load itself.'];
  else if (!list.length) nodes = ['No workers: start ', h('code', {text: 'loadtest worker'}), ' on any machine to add some.'];
  else if (!idle) nodes = ['No idle workers: ' + (list.length === 1 ? 'the one listed is' : 'the ' + list.length + ' listed are') + ' taken by a run or unheard of.'];
  else nodes = [plural(idle, 'idle worker') + (idle < list.length ? ' (of ' + list.length + ')' : '') + ': runs with workers send from them, each its share.'];
  const short = want > 0 && (state.fleet === 'none' || (state.fleet === 'ok' && want > idle));
  if (short && state.fleet === 'none') nodes.push(' A run asking for workers is refused.');
  else if (short) nodes.push(' A run asking for ' + plural(want, 'worker') + ' is refused until ' + (want === 1 ? 'one is' : want + ' are') + ' idle.');
  p.className = 'hint' + (short ? ' warn-text' : '');
  p.replaceChildren(...nodes);
}

// ---------- charts (SVG) ----------

const SVGNS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

// ticks spans [min, max] with about n steps of 1, 2, 2.5 or 5 times a power of ten.
function ticks(min, max, n) {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const out = [];
  for (let v = lo; v <= hi + step / 2; v += step) out.push(+v.toPrecision(12));
  return {lo, hi: Math.max(hi, lo + step), step, values: out};
}

// axisFormat formats a value axis' labels: thousands separators, and as many decimals as the
// step needs (0.25 keeps two, so no label is rounded to a neighbour's).
function axisFormat(step) {
  let d = 0;
  while (d < 4 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6) d++;
  const f = new Intl.NumberFormat('en-US', {minimumFractionDigits: 0, maximumFractionDigits: d});
  return (v) => f.format(v);
}

// The time axis: seconds since the run started, as m:ss once it is long.
const fmtAxisSecs = (v) => (v < 600 ? nf0.format(v) : Math.floor(v / 60) + ':' + String(Math.round(v % 60)).padStart(2, '0'));

function nearest(points, x) {
  let best = null;
  for (const p of points) if (best == null || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
  return best;
}

// linearX is the default x axis: seconds since the start, at least to opts.xMin (the scheduled
// end), and always to the last point, so a run that ran late shows all of it.
function linearX(opts, xMax, width) {
  const end = Math.max(xMax, opts.xMin || 0, 1);
  // Whole seconds: a 2-second run gets 0, 1, 2, not 0, 0.5, 1 rounded to 0, 1, 1.
  const t = ticks(0, end, Math.min(Math.max(3, Math.floor(width / 70)), Math.ceil(end)));
  return {lo: t.lo, hi: t.hi, ticks: t.values.map((v) => ({v, label: fmtAxisSecs(v)})),
    title: xMax >= 600 ? 'time since start (min:s)' : 'time since start (s)', at: (v) => fmtSecs(v)};
}

// lineChart draws series of [x, y] points into box (a <figure> or a .subchart, holding a .plot
// and maybe a .legend), and records what it drew in the box's data attributes, which the
// browser test reads: data-points (x positions), data-xmax (the axis' end) and data-series.
// opts: {series: [{key, label, cls, dashed?, points}], yTitle, xMin?, xAxis?(opts, xMax, width),
// markers?: [{x, label}], height?, yFormat?, tipFormat?, emptyText?, ariaLabel}. y may be null
// for a gap.
function lineChart(box, opts) {
  state.charts.set(box, opts);
  const plot = box.querySelector('.plot');
  const W = Math.max(300, Math.round(plot.clientWidth || 600));
  const H = opts.height || 230;
  let xMax = 0; let yMax = 0; let n = 0;
  for (const s of opts.series) {
    n = Math.max(n, s.points.length);
    for (const [x, y] of s.points) {
      if (x > xMax) xMax = x;
      if (isNum(y) && y > yMax) yMax = y;
    }
  }
  // Counts (opts.integer) get whole steps: a chart of 0 to 2 requests shows 0, 1, 2.
  const yTop = Math.max(yMax > 0 ? yMax * 1.08 : opts.emptyMaxY || 1, opts.integer ? 4 : 0);
  const yt = ticks(0, yTop, opts.height && opts.height < 150 ? 2 : 4);
  const yFmt = opts.yFormat || axisFormat(yt.step);
  const tipFmt = opts.tipFormat || yFmt;
  // The left margin fits the longest value label, so "12,500" is never clipped.
  const m = {l: 14 + 6.6 * Math.max(...yt.values.map((v) => yFmt(v).length)), r: 14, t: 22, b: 40};
  const xs = (opts.xAxis || linearX)(opts, xMax, W - m.l - m.r);
  const X = (x) => m.l + ((x - xs.lo) / (xs.hi - xs.lo)) * (W - m.l - m.r);
  const Y = (y) => H - m.b - ((y - yt.lo) / (yt.hi - yt.lo)) * (H - m.t - m.b);

  const root = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': opts.ariaLabel || opts.yTitle});
  const grid = svg('g', {class: 'grid'});
  const labels = svg('g', {class: 'axis-labels'});
  for (const v of yt.values) {
    grid.append(svg('line', {x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v)}));
    labels.append(svg('text', {x: m.l - 7, y: Y(v) + 4, 'text-anchor': 'end'}, yFmt(v)));
  }
  for (const t of xs.ticks) {
    grid.append(svg('line', {class: 'xtick', x1: X(t.v), x2: X(t.v), y1: H - m.b, y2: H - m.b + 4}));
    labels.append(svg('text', {x: X(t.v), y: H - m.b + 16, 'text-anchor': 'middle'}, t.label));
  }
  grid.append(svg('line', {class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b}));
  labels.append(svg('text', {class: 'axis-title', x: 2, y: 11, 'text-anchor': 'start'}, opts.yTitle || ''));
  labels.append(svg('text', {class: 'axis-title', x: W - m.r, y: H - 4, 'text-anchor': 'end'}, xs.title));
  root.append(grid, labels);
  for (const mk of opts.markers || []) {
    if (!isNum(mk.x) || mk.x < xs.lo || mk.x > xs.hi) continue;
    // The label goes left of the line, or right of it near the left edge, clear of the y title.
    const left = X(mk.x) - 6.2 * mk.label.length - 4 > m.l + 6.6 * (opts.yTitle || '').length;
    root.append(svg('g', {class: 'marker'},
      svg('line', {x1: X(mk.x), x2: X(mk.x), y1: m.t - 6, y2: H - m.b}),
      svg('text', {x: X(mk.x) + (left ? -4 : 4), y: m.t - 8, 'text-anchor': left ? 'end' : 'start'}, mk.label)));
  }

  const lines = svg('g', {class: 'series'});
  // Dashed references (targets) go on top, so they show where a solid line covers them.
  for (const s of [...opts.series.filter((x) => !x.dashed), ...opts.series.filter((x) => x.dashed)]) {
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!isNum(y)) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + X(x).toFixed(1) + ' ' + Y(y).toFixed(1);
      pen = true;
    }
    const cls = 'line ' + s.cls + (s.dashed ? ' dashed' : '') + (s.thin ? ' thin' : '');
    if (d) lines.append(svg('path', {d, class: cls, 'data-key': s.key}));
    if (!s.dashed && !s.thin && s.points.length <= 60) {
      for (const [x, y] of s.points) if (isNum(y)) lines.append(svg('circle', {cx: X(x).toFixed(1), cy: Y(y).toFixed(1), r: 2.2, class: 'dot ' + s.cls}));
    }
  }
  root.append(lines);
  if (n === 0) {
    root.append(svg('text', {x: (m.l + W - m.r) / 2, y: (H - m.b + m.t) / 2, class: 'empty-text', 'text-anchor': 'middle'}, opts.emptyText || 'Waiting for data…'));
  }
  const tip = hover(root, opts, xs, tipFmt, {W, H, m, X});
  plot.replaceChildren(root, tip);
  const legend = box.querySelector(':scope > figcaption .legend');
  if (legend) {
    legend.replaceChildren(...opts.series.map((s) => h('li', {}, h('span', {class: 'swatch ' + s.cls + (s.dashed ? ' dashed' : ''), 'aria-hidden': 'true'}), s.label)));
  }
  box.dataset.points = String(n);
  box.dataset.xmax = String(xs.hi);
  box.dataset.series = opts.series.map((s) => s.key).join(',');
}

// hover adds a cursor line and a tooltip with every series' value at the nearest x.
function hover(root, opts, xs, fmt, g) {
  const {W, H, m, X} = g;
  const cursor = svg('line', {class: 'cursor', y1: m.t, y2: H - m.b, x1: m.l, x2: m.l, visibility: 'hidden'});
  const hit = svg('rect', {x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: 'hit'});
  root.append(cursor, hit);
  const tip = h('div', {class: 'tooltip', hidden: true});
  hit.addEventListener('pointermove', (e) => {
    const r = root.getBoundingClientRect();
    const px = ((e.clientX - r.left) * W) / r.width;
    const xv = xs.lo + ((px - m.l) / (W - m.l - m.r)) * (xs.hi - xs.lo);
    const lines = [];
    let at = null;
    for (const s of opts.series) {
      const p = nearest(s.points, xv);
      if (!p) continue;
      if (at == null) at = p[0];
      lines.push(h('div', {}, h('span', {class: 'swatch ' + s.cls + (s.dashed ? ' dashed' : '')}), s.label + ': ', h('strong', {text: isNum(p[1]) ? fmt(p[1]) : '—'})));
    }
    if (at == null) return;
    cursor.setAttribute('x1', X(at)); cursor.setAttribute('x2', X(at)); cursor.setAttribute('visibility', 'visible');
    tip.replaceChildren(h('div', {class: 'tip-title', text: xs.at(at)}), ...lines);
    tip.hidden = false;
    const left = (X(at) / W) * r.width;
    tip.style.left = Math.min(Math.max(0, left + 12), r.width - 200) + 'px';
  });
  hit.addEventListener('pointerleave', () => { tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); });
  return tip;
}

function chartFigure(id, title, sub) {
  return h('figure', {class: 'chart-fig', id, dataset: {points: '0'}},
    h('figcaption', {}, h('span', {class: 'chart-title', text: title}), h('ul', {class: 'legend'})),
    h('div', {class: 'plot'}),
    sub || null);
}

// subChart is a small chart under another one, sharing its time axis (in-flight requests).
function subChart(id, title) {
  return h('div', {class: 'subchart', id, dataset: {points: '0'}}, h('p', {class: 'subchart-title', text: title}), h('div', {class: 'plot'}));
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const [box, opts] of state.charts) {
      if (box.isConnected) lineChart(box, opts);
      else state.charts.delete(box);
    }
  }, 150);
});

// nines is where a percentile goes on a "nines" axis: 90 is 1, 99 is 2, 99.9 is 3. The tail,
// where latency problems live, gets as much room as the bulk of the requests.
const nines = (p) => -Math.log10(1 - Math.min(p, 99.9999) / 100);

function ninesLabel(k) {
  if (k === 0) return '0';
  return (100 - 10 ** (2 - k)).toFixed(Math.max(0, k - 2));
}

// ninesAxis is the distribution chart's x axis: whole nines up to the last finite percentile,
// then one step more for p100 (the maximum).
function ninesAxis(maxNines) {
  return () => {
    const top = Math.max(2, Math.ceil(maxNines - 1e-9));
    const t = [];
    for (let k = 0; k <= top; k++) t.push({v: k, label: ninesLabel(k)});
    t.push({v: top + 1, label: 'max'});
    return {lo: 0, hi: top + 1, ticks: t, title: 'percentile', at: (v) => (v > top ? 'max' : 'p' + nf3.format(100 - 100 * 10 ** -v))};
  };
}

// ---------- series from a run and its points ----------

// perSecond turns a point's count into a rate: the last second of a run may be partial, and its
// rate (sent over the part of the second that passed) says how long that part was.
function perSecond(p, count) {
  if (!isNum(count)) return null;
  const length = p.sent > 0 && p.rate > 0 ? Math.min(1, p.sent / p.rate) : 1;
  return count / length;
}

// answered says a second had answers, so latencies; a second without any (the tail of a
// stopped run) is a gap in the latency lines, not a zero.
const hasAnswers = (p) => (p.ok == null && p.failed == null) || (p.ok || 0) + (p.failed || 0) > 0;

// seriesOf turns timeseries points into chart inputs. A point's x is the end of its second since
// the run started, so a 20-second run's last point is at 20, its scheduled end.
function seriesOf(run, points) {
  const t0 = parseTime(run.started_at) ?? (points.length ? parseTime(points[0].t) : null) ?? 0;
  const xs = points.map((p, i) => {
    const t = parseTime(p.t);
    return (t == null ? i : Math.round((t - t0) / 100) / 10) + 1;
  });
  const col = (f) => points.map((p, i) => [xs[i], f(p)]);
  const lat = (k) => col((p) => (hasAnswers(p) ? p[k] : null));
  return {
    sent: col((p) => (isNum(p.rate) ? p.rate : p.sent)),
    answered: col((p) => perSecond(p, p.answered)),
    target: col((p) => (isNum(p.target) ? p.target : run.target_rate)),
    inFlight: col((p) => p.in_flight),
    p50: lat('p50_ms'), p90: lat('p90_ms'), p95: lat('p95_ms'), p99: lat('p99_ms'), max: lat('max_ms'),
    errors: errorSeries(points, xs),
    end: scheduledEnd(run),
  };
}

// scheduledEnd is when the schedule ends, in seconds since the start.
function scheduledEnd(run) {
  const cfg = run.config || {};
  if (Array.isArray(cfg.stages) && cfg.stages.length) return cfg.stages.reduce((a, s) => a + (s.duration_s || 0), 0);
  return isNum(cfg.duration_s) ? cfg.duration_s : null;
}

const ERROR_LINES = 6; // codes drawn one by one; the rarer ones are summed as "other"

// errorSeries is one line per error code, failures per second, the most frequent codes first.
function errorSeries(points, xs) {
  const totals = new Map();
  for (const p of points) for (const [c, n] of Object.entries(p.errors || {})) totals.set(c, (totals.get(c) || 0) + n);
  const codes = [...totals.entries()].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([c]) => c);
  const shown = codes.slice(0, codes.length > ERROR_LINES ? ERROR_LINES - 1 : ERROR_LINES);
  const rest = codes.slice(shown.length);
  const out = shown.map((c, i) => ({key: c, label: c + (REJECTIONS.has(c) ? ' (rule)' : ''), cls: 'c-e' + i,
    points: points.map((p, j) => [xs[j], (p.errors || {})[c] || 0])}));
  if (rest.length) {
    out.push({key: 'other', label: 'other (' + rest.length + ' codes)', cls: 'c-e5',
      points: points.map((p, j) => [xs[j], rest.reduce((a, c) => a + ((p.errors || {})[c] || 0), 0)])});
  }
  return out;
}

// ---------- routing ----------

function route() {
  const m = location.hash.match(/^#\/(runs|compare)\/([^/]+)(?:\/([^/]+))?/);
  const view = !m ? null : m[1] === 'runs' ? {kind: 'run', id: decodeURIComponent(m[2])}
    : m[3] ? {kind: 'compare', a: decodeURIComponent(m[2]), b: decodeURIComponent(m[3])} : null;
  const gen = ++state.gen;
  state.view = view;
  state.charts.clear();
  $('detail').hidden = true;
  $('compare').hidden = true;
  renderList();
  if (!view) {
    showPlaceholder();
    return;
  }
  if (!state.token) return;
  if (view.kind === 'run') pollRun(gen, view.id);
  else pollCompare(gen, view.a, view.b);
}

function showPlaceholder() {
  const d = $('detail');
  d.replaceChildren(h('h2', {id: 'detail-title', text: 'No run selected'}),
    h('p', {class: 'empty', text: 'Pick a run in the list to see its live charts, thresholds, errors, summary and verification — or start a new one. Tick two runs to compare them.'}));
  d.hidden = false;
}

// ---------- one run ----------

// pollRun follows a run: every second while it runs, every two while it is verified or its data
// is deleted, then it stops. The timeseries is read while points still come, the latency
// distribution every few polls while it runs and once at the end.
async function pollRun(gen, id) {
  const view = {id, gen, run: null, points: [], percentiles: [], seen: [], els: null, polls: 0, finalData: false};
  const d = $('detail');
  d.replaceChildren(h('h2', {id: 'detail-title'}, 'Run ', h('code', {text: shortId(id)})), h('p', {class: 'empty', text: 'Loading…'}));
  delete d.dataset.status; // the previous run's, until this one is read
  delete d.dataset.phase;
  d.hidden = false;
  followRun(view);
}

async function followRun(view) {
  if (view.following) return;
  view.following = true;
  const d = $('detail');
  while (view.gen === state.gen) {
    const began = Date.now();
    try {
      const run = await api('GET', runPath(view.id));
      if (view.gen !== state.gen) break;
      clearBanner('detail');
      await readSeries(view, run);
      if (view.gen !== state.gen) break;
      noteStatus(view, run);
      view.run = run;
      upsertRun(run);
      renderRun(view);
      if (!busy(run) && !view.deleting && view.finalData) break;
    } catch (e) {
      if (view.gen !== state.gen) break;
      if (e.status === 404) {
        d.replaceChildren(h('h2', {id: 'detail-title', text: 'Run not found'}), h('p', {class: 'empty'}, 'There is no run ', h('code', {text: view.id}), '.'));
        break;
      }
      if (e.status === 401) break; // the token panel is open; saving a token restarts the view
      if (e.status) showBanner('detail', 'Reading the run failed: ' + e.message);
    }
    const active = view.run && ACTIVE.has(view.run.status);
    await sleep(Math.max(100, (active ? LIVE_MS : IDLE_MS) - (Date.now() - began)));
  }
  view.following = false;
}

// readSeries reads the timeseries and the distribution while they still change, and once
// more when the run is done (finalData then says nothing more will come).
async function readSeries(view, run) {
  if (view.finalData) return;
  const done = settled(run);
  const wantHist = done || view.polls % HISTOGRAM_EVERY === 0;
  view.polls++;
  const [ts, hist] = await Promise.all([
    api('GET', runPath(view.id, '/timeseries')),
    wantHist && run.status !== 'preparing' ? api('GET', runPath(view.id, '/histogram')) : null]);
  view.points = (ts && ts.points) || [];
  if (hist) view.percentiles = hist.percentiles || [];
  view.finalData = done;
}

// stageOf is the status, and while the run is being verified, that too.
function stageOf(run) {
  return run.status + (FINAL.has(run.status) && !settled(run) ? ', verifying' : '');
}

// noteStatus records each change of stage seen while watching, so transitions stay visible.
function noteStatus(view, run) {
  const stage = stageOf(run);
  const last = view.seen[view.seen.length - 1];
  if (!last || last.stage !== stage) {
    view.seen.push({stage, at: Date.now()});
    if (last) announce(runTitle(run) + ' is now ' + stage + '.');
  }
}

function announce(msg) {
  const live = $('detail').querySelector('.live-region');
  if (live) live.textContent = msg;
}

// buildRun makes the detail's skeleton, once per run shown; renderRun fills it on every poll.
function buildRun(view) {
  const run = view.run;
  const e = (view.els = {});
  e.title = h('h2', {id: 'detail-title'});
  e.status = h('span', {class: 'status'});
  e.result = h('span', {});
  e.stop = h('button', {type: 'button', class: 'danger', id: 'stop-run', onclick: () => stopRun(view)}, 'Stop run');
  e.del = h('button', {type: 'button', class: 'secondary', id: 'delete-data', onclick: () => deleteData(view)}, 'Delete test data');
  e.again = h('button', {type: 'button', class: 'secondary', onclick: () => fillForm(view.run.config || {}, view.run.name)}, 'Copy setup to form');
  e.live = h('span', {class: 'live'});
  e.phase = h('span', {class: 'phase', hidden: true, text: 'verifying…'});
  e.message = h('p', {class: 'message', role: 'status', hidden: true});
  e.cleanup = h('p', {class: 'message', id: 'cleanup-status', role: 'status', hidden: true});
  e.outcome = h('div', {class: 'outcome', id: 'outcome'});
  e.failure = h('p', {class: 'failure', role: 'alert', hidden: true});
  e.abort = h('p', {class: 'failure', id: 'abort-reason', role: 'alert', hidden: true});
  e.behind = h('p', {class: 'behind', id: 'behind-banner', role: 'status', hidden: true});
  e.steps = h('ol', {class: 'steps', 'aria-label': 'Status'});
  e.history = h('ul', {class: 'history', 'aria-label': 'Status changes seen'});
  e.progress = h('div', {class: 'progress', hidden: true});
  e.rate = rateControl(view);
  e.kpis = h('dl', {class: 'kpis'});
  e.inflight = subChart('chart-inflight', 'In flight: requests sent and not yet answered, at the end of each second');
  e.tp = chartFigure('chart-throughput', 'Throughput', e.inflight);
  e.lat = chartFigure('chart-latency', 'Latency over time');
  e.errChart = chartFigure('chart-errors', 'Errors by code over time');
  e.dist = chartFigure('chart-distribution', 'Latency distribution');
  e.thresholds = h('div', {});
  e.workers = h('div', {});
  e.workersPanel = h('section', {class: 'panel wide', id: 'run-workers', 'aria-labelledby': 'wrk-title', hidden: true},
    h('h3', {id: 'wrk-title', text: 'Workers'}), e.workers);
  e.errors = h('div', {});
  e.summary = h('div', {});
  e.verification = h('div', {});
  e.config = h('div', {});
  e.extra = h('div', {});
  const dl = (id, label, fn) => h('button', {type: 'button', class: 'secondary small', id, onclick: (ev) => download(view, ev.currentTarget, fn)}, label);
  $('detail').replaceChildren(
    h('div', {class: 'detail-head'},
      e.title, e.status, e.result, e.phase, e.live,
      h('div', {class: 'actions'}, e.again, e.stop, e.del)),
    h('div', {class: 'downloads'}, h('span', {class: 'hint', text: 'Download:'}),
      dl('dl-json', 'JSON (run + timeseries)', saveJSON), dl('dl-csv', 'CSV (timeseries)', saveCSV), dl('dl-report', 'HTML report', saveReport)),
    h('p', {class: 'sr-only live-region', 'aria-live': 'polite'}),
    e.message, e.cleanup, e.failure, e.abort, e.behind, e.outcome,
    h('div', {class: 'status-row'}, e.steps, e.history),
    e.progress, e.rate,
    e.kpis,
    h('div', {class: 'charts'}, e.tp, e.lat, e.errChart, e.dist),
    h('section', {class: 'panel wide', 'aria-labelledby': 'thr-title'}, h('h3', {id: 'thr-title', text: 'Thresholds'}), e.thresholds),
    e.workersPanel,
    h('div', {class: 'panels'},
      h('section', {class: 'panel summary', 'aria-labelledby': 'sum-title'}, h('h3', {id: 'sum-title', text: 'Summary'}), e.summary),
      h('div', {class: 'stack'},
        h('section', {class: 'panel', 'aria-labelledby': 'ver-title'}, h('h3', {id: 'ver-title', text: 'Verification'}), e.verification),
        h('section', {class: 'panel', 'aria-labelledby': 'err-title'}, h('h3', {id: 'err-title', text: 'Errors'}), e.errors))),
    e.extra,
    h('details', {class: 'config'}, h('summary', {text: 'Configuration'}), e.config));
  e.title.replaceChildren(run.name ? h('span', {class: 'run-name', text: run.name}) : 'Run', ' ', h('code', {text: shortId(run.id), title: run.id}));
}

function renderRun(view) {
  const run = view.run;
  if (!view.els) buildRun(view);
  const e = view.els;
  const d = $('detail');
  const active = ACTIVE.has(run.status);
  e.status.className = 'status status-' + run.status;
  e.status.textContent = run.status;
  e.result.replaceChildren(resultBadge(run));
  e.phase.hidden = !(FINAL.has(run.status) && !settled(run));
  e.stop.disabled = !active;
  e.live.className = 'live' + (active ? ' on' : '');
  e.live.textContent = active ? 'live · ' + fmtTime(Date.now()) : 'updated ' + fmtTime(Date.now());
  d.dataset.status = run.status;
  d.dataset.phase = run.phase || '';
  if (FINAL.has(run.status) && view.stopFlash) {
    view.stopFlash = false;
    e.message.hidden = true;
  }
  renderBanners(e, run);
  renderCleanup(view);
  renderOutcome(e.outcome, run);
  renderSteps(e.steps, run);
  e.history.replaceChildren(...view.seen.map((s, i) => h('li', {},
    h('time', {text: fmtTime(s.at)}), ' ', i === 0 ? 'seen ' : view.seen[i - 1].stage + ' → ', h('strong', {text: s.stage}))));
  renderProgress(e.progress, run);
  renderRateControl(view);
  renderKpis(e.kpis, run);
  renderCharts(view);
  e.thresholds.replaceChildren(thresholdsTable(run));
  const workers = runWorkers(run);
  e.workersPanel.hidden = !workers.length;
  e.workers.replaceChildren(...(workers.length ? [runWorkersTable(workers), lostNote(run, workers)].filter(Boolean) : []));
  e.summary.replaceChildren(summaryTable(run));
  e.errors.replaceChildren(errorsTable(run));
  e.verification.replaceChildren(verificationView(run));
  e.extra.replaceChildren(groupsTable(run) || '');
  e.config.replaceChildren(configList(run.config || {}));
}

// renderBanners shows why a run ended early or fell short: its error, the threshold that aborted
// it, and, only when the service says it is behind, its explanation of why.
function renderBanners(e, run) {
  e.failure.hidden = !(run.status === 'failed' && run.error);
  e.failure.textContent = run.error ? 'The run failed: ' + run.error : '';
  e.abort.hidden = !(run.status === 'aborted');
  e.abort.textContent = 'Aborted: ' + (run.abort_reason || 'a threshold with abort broke.');
  e.behind.hidden = run.behind !== true;
  // The service's explanation names a lost worker's unsent share when there is one.
  const detail = run.behind_detail || 'the generator sent under 99 % of the scheduled rate, so the load was lighter than asked.';
  e.behind.replaceChildren(h('strong', {text: 'Behind schedule: '}), detail);
}

function renderOutcome(box, run) {
  const o = outcome(run);
  box.hidden = o.key === 'aborted'; // the abort banner above says it, with the reason
  box.className = 'outcome outcome-' + o.key;
  box.dataset.result = o.key;
  const head = {pass: '✓ Pass', fail: '✗ Fail', aborted: '✗ Aborted', pending: '… Not judged yet', none: '– No verdict'}[o.key];
  box.replaceChildren(h('strong', {text: head}), o.reasons.length === 1 ? ': ' + o.reasons[0]
    : h('ul', {}, o.reasons.map((r) => h('li', {text: r}))));
}

function renderCharts(view) {
  const run = view.run;
  const e = view.els;
  const s = seriesOf(run, view.points);
  const markers = s.end ? [{x: s.end, label: 'scheduled end'}] : [];
  const empty = run.status === 'preparing' ? 'Preparing users and accounts…' : 'No points yet';
  // Every chart spans the schedule and every point, so they line up, also past a late end.
  const lastX = s.sent.length ? s.sent[s.sent.length - 1][0] : 0;
  const common = {xMin: Math.max(s.end || 10, lastX), markers, emptyText: empty};
  const last = view.points[view.points.length - 1];
  lineChart(e.tp, {...common, yTitle: 'requests/s', tipFormat: (v) => fmtRate(v) + '/s', emptyMaxY: run.target_rate, series: [
    {key: 'target', label: 'target/s', cls: 'c-target', dashed: true, points: s.target},
    {key: 'sent', label: 'sent/s', cls: 'c-sent', points: s.sent},
    // Thinner on top of sent/s, so both show where they coincide (a run that keeps up).
    {key: 'answered', label: 'answered/s', cls: 'c-answered', thin: true, points: s.answered}],
  ariaLabel: 'Throughput over ' + view.points.length + ' seconds' + (last ? ', last ' + fmtRate(last.rate) + ' sent per second against a target of ' + fmtRate(last.target) : '')});
  e.tp.dataset.lastTarget = last && isNum(last.target) ? String(last.target) : '';
  lineChart(e.inflight, {...common, markers: [], height: 120, yTitle: 'requests', emptyText: '', integer: true,
    series: [{key: 'in_flight', label: 'in flight', cls: 'c-inflight', points: s.inFlight}], ariaLabel: 'Requests in flight per second'});
  lineChart(e.lat, {...common, yTitle: 'ms', tipFormat: fmtMs, series: [
    {key: 'p50', label: 'p50', cls: 'c-p50', points: s.p50},
    {key: 'p90', label: 'p90', cls: 'c-p90', points: s.p90},
    {key: 'p95', label: 'p95', cls: 'c-p95', points: s.p95},
    {key: 'p99', label: 'p99', cls: 'c-p99', points: s.p99},
    {key: 'max', label: 'max', cls: 'c-max', thin: true, points: s.max}],
  ariaLabel: 'Latency per second' + (last ? ', last p50 ' + fmtMs(last.p50_ms) + ', p99 ' + fmtMs(last.p99_ms) : '')});
  lineChart(e.errChart, {...common, yTitle: 'failures/s', integer: true, series: s.errors,
    emptyText: view.points.length ? 'No errors' : empty, ariaLabel: 'Failures per second by error code'});
  renderDistribution(view);
}

// renderDistribution draws the whole run's latency by percentile, on a nines axis.
function renderDistribution(view) {
  const ps = (view.percentiles || []).filter((p) => isNum(p.p) && isNum(p.ms));
  const finite = ps.filter((p) => p.p < 100);
  const top = finite.length ? nines(finite[finite.length - 1].p) : 3;
  const axis = ninesAxis(top);
  const end = Math.max(2, Math.ceil(top - 1e-9)) + 1;
  lineChart(view.els.dist, {yTitle: 'ms', xAxis: axis, tipFormat: fmtMs,
    series: [{key: 'latency', label: 'latency at percentile', cls: 'c-p99', points: ps.map((p) => [p.p >= 100 ? end : nines(p.p), p.ms])}],
    emptyText: view.run.status === 'preparing' ? 'Preparing users and accounts…' : 'No answers yet',
    ariaLabel: 'Latency distribution of the whole run, by percentile'});
  view.els.dist.dataset.xticks = axis().ticks.map((t) => t.label).join(',');
}

function renderSteps(ol, run) {
  const st = run.status;
  const v = run.verification;
  const verifying = !settled(run) && FINAL.has(st);
  const steps = [
    {name: 'preparing', at: run.created_at},
    {name: 'running', at: run.started_at},
    {name: FINAL.has(st) ? st : 'completed', at: run.ended_at},
    {name: v ? (verdict(v) === false ? 'checks failed' : 'verified') : verifying ? 'verifying' : st === 'failed' ? 'not verified' : 'verified', at: v && v.checked_at},
  ];
  const idx = st === 'preparing' ? 0 : st === 'running' ? 1 : verifying ? 3 : 4;
  ol.replaceChildren(...steps.map((s, i) => {
    let cls = i < idx ? 'done' : i === idx ? 'current' : 'todo';
    if (i === 2 && (st === 'failed' || st === 'aborted')) cls = 'bad';
    if (i === 2 && st === 'stopped') cls = 'stopped';
    if (i === 3 && v && verdict(v) === false) cls = 'bad';
    if (i === 3 && !v && settled(run)) cls = 'skipped';
    return h('li', {class: 'step ' + cls, 'aria-current': i === idx ? 'step' : null},
      h('span', {class: 'step-name', text: s.name}),
      h('span', {class: 'step-time', text: parseTime(s.at) ? fmtTime(s.at) : i === idx ? 'now' : '—'}));
  }));
}

// renderProgress shows how far preparation got: the service sends {step, users, users_total,
// accounts, accounts_total, deposits, deposits_total, fraction}.
function renderProgress(box, run) {
  const p = run.progress;
  if (run.status !== 'preparing' || !p || typeof p !== 'object') {
    box.hidden = true;
    return;
  }
  const bar = (id, label, done, total) => h('div', {class: 'progress-item'},
    h('label', {for: id}, label, h('strong', {text: total === 1 ? fmtPct(done) : fmtInt(done) + ' of ' + fmtInt(total)})),
    h('progress', {id, max: Math.max(1, total), value: Math.min(done, total)}));
  const items = ['users', 'accounts', 'deposits'].filter((k) => isNum(p[k + '_total']) && p[k + '_total'] > 0);
  box.replaceChildren(
    h('h3', {}, 'Preparing', p.step ? h('span', {class: 'hint', text: ' — step: ' + p.step}) : null),
    isNum(p.fraction) ? bar('progress-overall', 'Overall: ', p.fraction, 1) : '',
    h('div', {class: 'progress-items'}, items.map((k) => bar('progress-' + k, humanize(k) + ' created: ', p[k] || 0, p[k + '_total']))));
  box.hidden = false;
}

function renderKpis(dl, run) {
  const lat = run.latency_ms || {};
  const secs = runSeconds(run);
  const end = scheduledEnd(run);
  const kpi = (label, value, sub, cls) => h('div', {class: 'kpi ' + (cls || '')}, h('dt', {text: label}), h('dd', {}, value, sub ? h('span', {class: 'sub', text: sub}) : null));
  const rejected = isNum(run.rejected) ? run.rejected : null;
  // The achieved rate is set against the scheduled rate, which a ramp or stages lower below the
  // target: a healthy ramp reaches it.
  const sched = isNum(run.scheduled_rate) && run.scheduled_rate > 0 ? run.scheduled_rate : null;
  dl.replaceChildren(
    kpi('Sent', fmtInt(run.sent), ACTIVE.has(run.status) && isNum(run.in_flight) ? fmtInt(run.in_flight) + ' in flight' : isNum(run.scheduled) ? 'of ' + fmtInt(run.scheduled) + ' scheduled' : null),
    kpi('OK', fmtInt(run.ok), run.sent ? fmtPct(run.ok / run.sent) : null, 'good'),
    kpi('Failed', fmtInt(run.failed), rejected != null ? fmtInt(rejected) + ' rejected by rules' : run.sent ? fmtPct(run.failed / run.sent) : null,
      run.failed - (rejected || 0) > 0 ? 'bad' : run.failed > 0 ? 'warn' : ''),
    kpi('Achieved rate', fmtRate(run.achieved_rate) + '/s', sched ? 'of ' + fmtRate(sched) + '/s scheduled' : 'target ' + fmtRate(run.target_rate) + '/s', run.behind ? 'warn' : ''),
    kpi('p99 latency', fmtMs(lat.p99), 'p50 ' + fmtMs(lat.p50)),
    kpi('Elapsed', fmtSecs(secs), end ? 'of ' + fmtSecs(end) + ' scheduled' : null, end && secs > end + 1 ? 'warn' : ''));
}

// rateControl changes a running run's rate (PATCH): the schedule continues at the new rate from
// that moment, and the target line of the chart follows.
function rateControl(view) {
  const input = h('input', {id: 'rate-input', type: 'number', min: '0', step: 'any', inputmode: 'decimal', 'aria-describedby': 'rate-error'});
  const btn = h('button', {type: 'submit', id: 'rate-apply'}, 'Set rate');
  const err = h('p', {class: 'field-error', id: 'rate-error', 'aria-live': 'polite'});
  const now = h('span', {class: 'hint', id: 'rate-now'});
  const form = h('form', {class: 'rate-form', id: 'rate-form', hidden: true, onsubmit: (ev) => { ev.preventDefault(); setRate(view, input, btn, err); }},
    h('label', {for: 'rate-input', text: 'Change the rate'}), input, h('span', {class: 'unit', text: 'requests/s'}), btn,
    now, err);
  view.rateEls = {form, input, btn, err, now};
  return form;
}

function renderRateControl(view) {
  const {form, input, now} = view.rateEls;
  const running = view.run.status === 'running';
  form.hidden = !running;
  input.placeholder = fmtRate(view.run.target_rate);
  now.textContent = 'target now ' + fmtRate(view.run.target_rate) + '/s';
}

async function setRate(view, input, btn, err) {
  err.textContent = '';
  input.removeAttribute('aria-invalid');
  const rate = Number(input.value);
  if (input.value.trim() === '' || !Number.isFinite(rate)) {
    err.textContent = 'Enter a number of requests per second.';
    input.setAttribute('aria-invalid', 'true');
    return;
  }
  btn.disabled = true;
  try {
    const run = await api('PATCH', runPath(view.id), {rate});
    view.run = run;
    upsertRun(run);
    input.value = '';
    flash(view, 'Rate set to ' + fmtRate(run.target_rate) + '/s from now on.', 'success');
    renderRun(view);
  } catch (e) {
    if (e.status === 400) {
      err.textContent = ((e.problem.errors || [])[0] || {}).message || e.message;
      input.setAttribute('aria-invalid', 'true');
    } else if (e.status !== 401) {
      flash(view, 'Changing the rate failed: ' + e.message, 'error');
    }
  }
  btn.disabled = false;
}

function kvTable(rows, caption) {
  return h('table', {class: 'kv'}, caption ? h('caption', {class: 'sr-only', text: caption}) : null,
    h('tbody', {}, rows.filter(Boolean).map(([k, v, cls]) => h('tr', {class: cls || null}, h('th', {scope: 'row', text: k}), h('td', {class: 'num'}, v)))));
}

// thresholdsTable lists the run's thresholds with what was observed so far and whether each
// held: windowed ones are judged live, whole-run ones at the end.
function thresholdsTable(run) {
  const ts = run.thresholds || [];
  if (!ts.length) return h('p', {class: 'empty', text: 'No thresholds: the run is judged on its verification and error rate.'});
  const mark = (p) => (p === true ? h('span', {class: 'mark ok', text: '✓ held'}) : p === false ? h('span', {class: 'mark bad', text: '✗ broken'})
    : h('span', {class: 'mark pending', text: '… not judged yet'}));
  return h('table', {class: 'errors thresholds-table', id: 'thresholds-table'},
    h('caption', {class: 'sr-only', text: 'Thresholds, with what was observed'}),
    h('thead', {}, h('tr', {}, ['Threshold', 'Judged on', 'Observed', 'Result'].map((t, i) => h('th', {scope: 'col', class: i === 2 ? 'num' : null, text: t})))),
    h('tbody', {}, ts.map((t, i) => h('tr', {class: t.passed === false ? 'bad' : null, dataset: {index: String(i), passed: String(t.passed ?? null)}},
      h('td', {}, thresholdText(t), t.abort ? h('span', {class: 'kind error', text: ' aborts'}) : null),
      h('td', {text: windowText(t) + (t.window_s ? ' (worst)' : '')}),
      h('td', {class: 'num observed', text: isNum(t.observed) ? fmtMetric(t.metric, t.observed) : '—'}),
      h('td', {}, mark(t.passed))))));
}

// runWorkers are the load workers that sent a run, in share order; none when the service did.
const runWorkers = (run) => (Array.isArray(run.workers) ? run.workers : []);

// runWorkersTable is each worker's share of the run and what it did with it.
function runWorkersTable(workers) {
  const cols = [
    ['Worker'], ['Share', 'Its part of the schedule: requests i, i + n, i + 2n… of n parts'], ['State'],
    ['Scheduled', 'Requests in its share', 1], ['Sent', '', 1], ['OK', '', 1], ['Failed', '', 1],
    ['Late', 'Sent later than scheduled', 1], ['In flight', 'Sent and not yet answered', 1],
    ['Not sent', 'Of a lost worker\'s share, as far as its last report tells', 1], ['Lost at']];
  const lost = (w) => w.state === 'lost';
  return h('div', {class: 'table-wrap'}, h('table', {class: 'errors run-workers', id: 'run-workers-table'},
    h('caption', {class: 'sr-only', text: 'The load workers that sent the run, in share order'}),
    h('thead', {}, h('tr', {}, cols.map(([t, title, num]) => h('th', {scope: 'col', class: num ? 'num' : null, title: title || null, text: t})))),
    h('tbody', {}, workers.map((w) => h('tr', {class: lost(w) ? 'lost' : null, dataset: {name: w.name, state: w.state, share: w.share || ''}},
      h('td', {class: 'worker-name', title: w.id, text: w.name}),
      h('td', {text: w.share || '—'}),
      h('td', {}, workerBadge(w.state)),
      h('td', {class: 'num', text: fmtInt(w.scheduled)}),
      h('td', {class: 'num', text: fmtInt(w.sent)}),
      h('td', {class: 'num', text: fmtInt(w.ok)}),
      h('td', {class: 'num' + (w.failed > 0 ? ' warn-text' : ''), text: fmtInt(w.failed)}),
      h('td', {class: 'num', text: fmtInt(w.late)}),
      h('td', {class: 'num', text: fmtInt(w.in_flight)}),
      h('td', {class: 'num' + (lost(w) && w.not_sent > 0 ? ' bad-text' : ''), text: lost(w) ? fmtInt(w.not_sent || 0) : '—'}),
      h('td', {class: 'num', title: lost(w) ? fmtTime(w.lost_at, true) : null, text: lost(w) ? fmtTime(w.lost_at) : '—'}))))));
}

// lostNote says what became of the shares of the workers lost mid-run: their unsent requests
// count as not sent, and those they may have sent are resent with their idempotency keys (at
// the run's verification), which tells whether the processor had applied them.
function lostNote(run, workers) {
  const lost = workers.filter((w) => w.state === 'lost');
  if (!lost.length) return null;
  const one = lost.length === 1;
  const notSent = lost.reduce((a, w) => a + (w.not_sent || 0), 0);
  const v = run.verification && typeof run.verification === 'object' ? run.verification : null;
  const resent = v ? v.lost_worker_requests || 0 : null;
  const they = one ? 'it' : 'they';
  const names = lost.map((w) => h('strong', {text: w.name}));
  const who = one ? [names[0], ' was lost at ' + fmtTime(lost[0].lost_at)]
    : [names.flatMap((n, i) => (i === 0 ? [n] : [i === names.length - 1 ? ' and ' : ', ', n])),
      ' were lost at ' + andList(lost.map((w) => fmtTime(w.lost_at)))];
  return h('p', {class: 'lost-note', id: 'lost-note', role: 'note', dataset: {lost: String(lost.length)}},
    who, ': ', one ? 'its share\'s ' : 'their shares\' ',
    plural(notSent, 'unsent request') + (notSent === 1 ? ' is' : ' are') + ' counted as not sent; ',
    resent == null ? 'the requests ' + they + ' may have sent are resent with their keys, when the run is verified, to learn what they did.'
      : plural(resent, 'request') + ' ' + they + ' may have sent ' + (resent === 1 ? 'was' : 'were') + ' resent with their keys to learn what they did.');
}

function summaryTable(run) {
  const lat = run.latency_ms || {};
  const lag = run.send_lag_ms || {};
  const late = isNum(run.late) ? run.late : null;
  const workers = runWorkers(run);
  const lost = workers.filter((w) => w.state === 'lost');
  return h('div', {},
    h('p', {class: 'hint', text: FINAL.has(run.status) ? 'Final figures for the run.' : 'So far; final when the run ends.'}),
    h('div', {class: 'summary-grid'},
      kvTable([
        ['Target rate' + (ACTIVE.has(run.status) ? ' (now)' : ''), fmtRate(run.target_rate) + '/s'],
        isNum(run.scheduled_rate) ? ['Scheduled rate', fmtRate(run.scheduled_rate) + '/s'] : null,
        ['Achieved rate', fmtRate(run.achieved_rate) + '/s', run.behind ? 'warn' : null],
        ['Running time', fmtSecs(runSeconds(run))],
        workers.length ? ['Sent by', plural(workers.length, 'worker')] : null,
        lost.length ? ['Workers lost', fmtInt(lost.length), 'warn'] : null,
        ['Sent', fmtInt(run.sent)],
        lost.length ? ['Not sent (lost)', fmtInt(lost.reduce((a, w) => a + (w.not_sent || 0), 0)), 'warn'] : null,
        ['OK', fmtInt(run.ok)],
        ['Failed', fmtInt(run.failed), run.failed > (run.rejected || 0) ? 'bad' : null],
        isNum(run.rejected) ? ['Rejected by rules', fmtInt(run.rejected)] : null,
        isNum(run.error_rate) ? ['Error rate', fmtPct(run.error_rate), run.error_rate > MAX_ERROR_RATE ? 'bad' : run.error_rate > 0 ? 'warn' : null] : null,
        late != null ? ['Late sends', fmtInt(late) + (run.sent ? ' (' + fmtPct(late / run.sent) + ')' : ''), late > 0 ? 'warn' : null] : null,
        run.log_dropped > 0 ? ['Request log records lost', fmtInt(run.log_dropped), 'warn'] : null,
      ], 'Rates and counts'),
      kvTable([
        ['Latency p50', fmtMs(lat.p50)],
        ['Latency p90', fmtMs(lat.p90)],
        ['Latency p99', fmtMs(lat.p99)],
        ['Latency p99.9', fmtMs(lat.p999)],
        ['Latency max', fmtMs(lat.max)],
        isNum(lag.p99) ? ['Send lag p99', fmtMs(lag.p99)] : null,
        isNum(lag.max) ? ['Send lag max', fmtMs(lag.max)] : null,
      ], 'Latency, from each request\'s scheduled send time')));
}

function errorsTable(run) {
  const entries = Object.entries(run.errors || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return h('p', {class: 'empty ok-text', text: run.sent ? 'No errors.' : 'No requests yet.'});
  return h('table', {class: 'errors', id: 'errors-table'},
    h('caption', {class: 'sr-only', text: 'Failures by error code'}),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Code'}), h('th', {scope: 'col', class: 'num', text: 'Count'}), h('th', {scope: 'col', class: 'num', text: 'Of sent'}))),
    h('tbody', {}, entries.map(([code, n]) => h('tr', {},
      h('td', {}, h('code', {text: code}), ' ', REJECTIONS.has(code) ? h('span', {class: 'kind rejection', text: 'rule'}) : null),
      h('td', {class: 'num', text: fmtInt(n)}),
      h('td', {class: 'num', text: run.sent ? fmtPct(n / run.sent) : '—'})))));
}

// verificationView lists the checks the service made once the run was over, each ✓ or ✗.
function verificationView(run) {
  const v = run.verification;
  if (v == null || typeof v !== 'object') {
    const text = ACTIVE.has(run.status) ? 'Checked when the run ends.' : settled(run) ? 'Not verified.' : 'Verifying…';
    return h('p', {class: 'empty', text});
  }
  // Rows the analytics should hold: runs recorded before holds existed give only accepted.
  const expected = v.expected_in_analytics || v.accepted;
  const holds = v.holds && typeof v.holds === 'object' ? v.holds : null;
  const checks = [
    {key: 'balanced', ok: v.balanced, name: 'Processor reconciliation balanced', detail: 'every currency'},
    {key: 'balances_match', ok: v.balances_match, name: 'Run\'s balances add up', detail: 'expected ' + fmtInt(v.expected_balance_total) + ', found ' + fmtInt(v.actual_balance_total)},
    {key: 'events_in_analytics', ok: v.events_in_analytics == null ? null : v.events_in_analytics === expected,
      name: holds ? 'Every transaction and hold event in analytics' : 'Every transaction in analytics',
      detail: v.events_in_analytics == null ? 'not checked' : fmtInt(v.events_in_analytics) + ' of ' + fmtInt(expected) + (isNum(v.analytics_wait_ms) ? ' after ' + fmtMs(v.analytics_wait_ms) : '')},
    {key: 'unresolved', ok: v.unresolved === 0, name: 'Every request resolved', detail: fmtInt(v.ambiguous) + ' ambiguous, ' + fmtInt(v.unresolved) + ' unresolved'},
  ];
  if (holds) {
    checks.push({key: 'holds', ok: holds.pending === 0 && holds.held === 0, name: 'Every hold captured or voided',
      detail: fmtInt(holds.created) + ' created: ' + fmtInt(holds.captured) + ' captured (' + fmtInt(holds.captured_amount) + ' moved), ' +
        fmtInt(holds.voided) + ' voided, ' + fmtInt(holds.expired) + ' expired, ' + fmtInt(holds.pending) + ' left pending (' + fmtInt(holds.held) + ' reserved)'});
  }
  const overall = verdict(v);
  const mark = (ok) => (ok === true ? h('span', {class: 'mark ok', text: '✓'}, h('span', {class: 'sr-only', text: 'passed:'}))
    : ok === false ? h('span', {class: 'mark bad', text: '✗'}, h('span', {class: 'sr-only', text: 'failed:'}))
      : h('span', {class: 'mark info', text: '·'}));
  return h('div', {},
    overall == null ? null : h('p', {class: 'verdict ' + (overall ? 'ok' : 'bad')}, overall ? '✓ All checks passed' : '✗ Some checks failed'),
    h('ul', {class: 'checks', id: 'verification-checks'},
      checks.map((c) => h('li', {class: c.ok === false ? 'failed' : null, dataset: {check: c.key, ok: String(c.ok)}},
        mark(c.ok), h('span', {class: 'check-name', text: c.name}), h('span', {class: 'check-detail', text: c.detail || ''})))),
    isNum(v.accepted) ? h('p', {class: 'hint', text: fmtInt(v.accepted) + ' transactions accepted (seed deposits included)' +
      (parseTime(v.checked_at) ? ', checked at ' + fmtTime(v.checked_at) : '') + '.'}) : null,
    isNum(v.lost_worker_requests) || runWorkers(run).some((w) => w.state === 'lost')
      ? h('p', {class: 'hint', id: 'lost-worker-requests', dataset: {count: String(v.lost_worker_requests || 0)}},
        h('strong', {text: plural(v.lost_worker_requests || 0, 'request')}), ' a lost worker may have sent ' + ((v.lost_worker_requests || 0) === 1 ? 'was' : 'were') +
        ' resent with their idempotency keys to learn what they did.') : null,
    Array.isArray(v.problems) && v.problems.length ? h('ul', {class: 'problems'}, v.problems.map((t) => h('li', {text: t}))) : null);
}

function groupsTable(run) {
  const groups = run.by_op;
  if (!Array.isArray(groups) || !groups.length) return null;
  return h('details', {class: 'config'}, h('summary', {text: 'Latency by operation and outcome'}),
    h('div', {class: 'table-wrap'}, h('table', {class: 'errors by-op'},
      h('thead', {}, h('tr', {}, ['Operation', 'Outcome', 'Count', 'p50', 'p90', 'p99', 'max'].map((t, i) => h('th', {scope: 'col', class: i > 1 ? 'num' : null, text: t})))),
      h('tbody', {}, groups.map((g) => {
        const l = g.latency_ms || {};
        return h('tr', {},
          h('td', {text: g.op}), h('td', {}, h('code', {text: g.outcome})), h('td', {class: 'num', text: fmtInt(g.count)}),
          h('td', {class: 'num', text: fmtMs(l.p50)}), h('td', {class: 'num', text: fmtMs(l.p90)}), h('td', {class: 'num', text: fmtMs(l.p99)}),
          h('td', {class: 'num', text: fmtMs(l.max)}));
      })))));
}

// shapeText is a run's load shape in words: its stages, or its rate, duration and ramp-up.
function shapeText(cfg) {
  if (Array.isArray(cfg.stages) && cfg.stages.length) {
    return cfg.stages.map((s) => fmtRate(s.rate) + '/s over ' + nf1.format(s.duration_s) + ' s').join(', then ');
  }
  return fmtRate(cfg.rate) + '/s for ' + fmtSecs(cfg.duration_s) + (cfg.ramp_up_s ? ', ramp-up ' + fmtSecs(cfg.ramp_up_s) : '');
}

function configList(cfg) {
  const rows = [];
  for (const [k, v] of Object.entries(cfg)) {
    if (k === 'thresholds' || k === 'stages' || k === 'name') continue;
    if (cfg.stages && cfg.stages.length && (k === 'rate' || k === 'duration_s' || k === 'ramp_up_s')) continue;
    rows.push([humanize(k), v && typeof v === 'object' ? Object.entries(v).map(([a, b]) => a + ' ' + b).join(', ') : isNum(v) ? nf2.format(v) : String(v)]);
  }
  rows.splice(2, 0, ['Load shape', shapeText(cfg)]);
  return kvTable(rows, 'Configuration');
}

function flash(view, msg, tone) {
  const m = view.els && view.els.message;
  if (!m) return;
  m.className = 'message ' + (tone || 'info');
  m.textContent = msg;
  m.hidden = false;
}

async function stopRun(view) {
  const id = view.run.id;
  if (!(await confirmDialog('Stop this run?', runTitle(view.run) + ' stops sending now and ends as stopped. Its results so far are kept.', 'Stop run'))) return;
  view.els.stop.disabled = true;
  try {
    await api('POST', runPath(id, '/stop'));
    flash(view, 'Stop requested: the run ends as stopped.', 'info');
    view.stopFlash = true;
  } catch (e) {
    flash(view, 'Stopping failed: ' + e.message, 'error');
    view.els.stop.disabled = false;
  }
}

// ---------- deleting a run's test data ----------

// renderCleanup shows the deletion from the run's own record (run.cleanup), which the service
// keeps up to date as its job goes: so a reloaded page, or another tab, shows it too.
function renderCleanup(view) {
  const run = view.run;
  const e = view.els;
  const c = run.cleanup;
  const box = e.cleanup;
  // While the request is out the job runs, even before its first step is on the record.
  const running = cleanupRunning(run) || !!view.deleting;
  e.del.disabled = !settled(run) || running;
  e.del.textContent = c && c.status === 'failed' ? 'Retry deletion' : c && c.status === 'done' ? 'Delete test data again' : 'Delete test data';
  if (!c && !view.deleting) {
    box.hidden = true;
    box.dataset.status = '';
    return;
  }
  box.hidden = false;
  if (running) {
    box.className = 'message info';
    box.dataset.status = 'running';
    box.replaceChildren(h('span', {class: 'spinner', 'aria-hidden': 'true'}), 'Deleting the test data… ',
      h('strong', {text: (c && c.status === 'running' && c.step) || 'starting'}),
      c && parseTime(c.started_at) ? h('span', {class: 'hint', text: ' (since ' + fmtTime(c.started_at) + ')'}) : '');
  } else if (c.status === 'failed') {
    box.className = 'message error';
    box.dataset.status = 'failed';
    box.textContent = 'Deleting the test data failed: ' + (c.error || 'unknown error') + '. Retry to resume where it stopped.';
  } else {
    box.className = 'message success';
    box.dataset.status = 'done';
    box.textContent = 'Test data deleted' + (parseTime(c.at) ? ' at ' + fmtTime(c.at, true) : '') + ': ' + cleanupText(c) + '.';
  }
}

// deleteData starts the deletion job. The request waits for the job, but the page does not
// depend on it: it follows the job through the run's record (as a reloaded page would).
async function deleteData(view) {
  const id = view.run.id;
  if (!(await confirmDialog('Delete this run\'s test data?', 'The users, accounts and transactions that ' + runTitle(view.run) +
    ' created in the processor, and their read models, are deleted for good. The run\'s results stay.', 'Delete data'))) return;
  view.deleting = true;
  renderRun(view);
  followRun(view);
  let failure = null;
  try {
    await api('DELETE', runPath(id, '/data'));
  } catch (e) {
    failure = e;
  }
  try {
    view.run = await api('GET', runPath(id));
    upsertRun(view.run);
  } catch { /* the poll loop reports it */ }
  // A failed job is recorded on the run and shown from there; a refusal before any job began
  // (or a lost connection) is not, so it is shown here.
  const recorded = view.run.cleanup && view.run.cleanup.status === 'failed';
  if (failure && failure.status !== 401 && !recorded) flash(view, 'Deleting the data failed: ' + failure.message, 'error');
  view.deleting = false;
  if (view.gen === state.gen && view.run) renderRun(view);
}

// ---------- downloads ----------

// download runs one of the savers with its button disabled, and reports a failure.
async function download(view, btn, saver) {
  btn.disabled = true;
  try {
    await saver(view);
  } catch (e) {
    if (e.status !== 401) flash(view, 'The download failed: ' + e.message, 'error');
  }
  btn.disabled = false;
}

// saveBlob hands a file to the browser: the API needs the bearer token, which a plain link
// cannot send, so the page fetches the data itself and saves it from a blob URL.
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', {href: url, download: filename, hidden: true});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function saveJSON(view) {
  const [run, ts] = await Promise.all([api('GET', runPath(view.id)), api('GET', runPath(view.id, '/timeseries'))]);
  // The seed was read as digits (see parseJSON); it goes out as the number it is.
  const text = JSON.stringify({run, timeseries: (ts && ts.points) || []}, null, 2).replace(/"seed": "(\d+)"/, '"seed": $1');
  saveBlob(new Blob([text + '\n'], {type: 'application/json'}), 'loadtest-' + view.id + '.json');
}

const CSV_COLUMNS = ['t', 'sent', 'answered', 'in_flight', 'ok', 'failed', 'rate', 'target', 'p50_ms', 'p90_ms', 'p95_ms', 'p99_ms', 'max_ms', 'late'];

// csvOf is the timeseries as CSV: one row per second, one column per field and per error code.
function csvOf(points) {
  const codes = [...new Set(points.flatMap((p) => Object.keys(p.errors || {})))].sort();
  const cell = (v) => (v == null ? '' : /[",\n]/.test(String(v)) ? '"' + String(v).replace(/"/g, '""') + '"' : String(v));
  const head = ['second', ...CSV_COLUMNS, ...codes.map((c) => 'errors.' + c)];
  const lines = points.map((p, i) => [i, ...CSV_COLUMNS.map((k) => p[k]), ...codes.map((c) => (p.errors || {})[c] || 0)].map(cell).join(','));
  return [head.map(cell).join(','), ...lines].join('\r\n') + '\r\n';
}

async function saveCSV(view) {
  const ts = await api('GET', runPath(view.id, '/timeseries'));
  saveBlob(new Blob([csvOf((ts && ts.points) || [])], {type: 'text/csv'}), 'loadtest-' + view.id + '-timeseries.csv');
}

async function saveReport(view) {
  const resp = await request('GET', runPath(view.id, '/report?download=1'));
  const m = /filename="?([^";]+)"?/.exec(resp.headers.get('Content-Disposition') || '');
  saveBlob(await resp.blob(), m ? m[1] : 'loadtest-' + view.id + '.html');
}

// ---------- comparison ----------

// pollCompare shows run b against run a (the base), with the service's comparison
// (GET /runs/{b}/compare/{a}), until both runs are done.
async function pollCompare(gen, a, b) {
  const box = $('compare');
  box.replaceChildren(h('h2', {id: 'compare-title', text: 'Comparing…'}));
  box.hidden = false;
  const views = {els: null};
  while (gen === state.gen) {
    const began = Date.now();
    try {
      const [ra, ta, rb, tb, cmp] = await Promise.all([
        api('GET', runPath(a)), api('GET', runPath(a, '/timeseries')),
        api('GET', runPath(b)), api('GET', runPath(b, '/timeseries')),
        api('GET', runPath(b, '/compare/' + encodeURIComponent(a)))]);
      if (gen !== state.gen) return;
      renderCompare(views, [ra, rb], [(ta && ta.points) || [], (tb && tb.points) || []], cmp || {metrics: []});
      if (settled(ra) && settled(rb)) return;
    } catch (e) {
      if (gen !== state.gen) return;
      if (e.status === 404) {
        box.replaceChildren(h('h2', {id: 'compare-title', text: 'Run not found'}), h('p', {class: 'empty', text: 'One of the two runs does not exist any more.'}));
        return;
      }
      if (e.status === 401) return;
    }
    await sleep(Math.max(100, LIVE_MS * 2 - (Date.now() - began)));
  }
}

// How each metric of the service's comparison reads; better is the direction that is good.
const COMPARE_METRICS = {
  achieved_rate: {label: 'Achieved rate', fmt: (v) => fmtRate(v) + '/s'},
  achieved_ratio: {label: 'Achieved / scheduled', fmt: fmtPct},
  p50_ms: {label: 'Latency p50', fmt: fmtMs},
  p90_ms: {label: 'Latency p90', fmt: fmtMs},
  p99_ms: {label: 'Latency p99', fmt: fmtMs},
  max_ms: {label: 'Latency max', fmt: fmtMs},
  error_rate: {label: 'Error rate', fmt: fmtPct},
};

// A change under this share is noise between two runs, shown but not coloured.
const NOISE = 0.01;

// judgeMetric says how to colour run B's figure: worse, better or neither. The service says
// which way is worse; a change within the noise is neither, and an achieved/scheduled ratio of
// 99 % or more is a run that kept up, never a shortfall (a healthy ramp reaches it). Achieved
// rates of runs scheduled differently (a ramp against a constant rate) are not judged at all:
// the ramp asked for less, and achieved / scheduled says whether each kept up.
function judgeMetric(m, ra, rb) {
  const change = isNum(m.change) ? m.change : m.run === m.base ? 0 : Infinity;
  if (Math.abs(change) < NOISE) return '';
  if (m.name === 'achieved_rate' && !sameSchedule(ra, rb)) return '';
  if (m.name === 'achieved_ratio' && m.run >= 0.99 && m.base >= 0.99) return '';
  if (m.name === 'error_rate' && Math.abs(m.run - m.base) < 0.0005) return '';
  return m.worse ? 'worse' : 'better';
}

// sameSchedule says two runs asked for the same rate on average, within the noise.
function sameSchedule(ra, rb) {
  const a = ra.scheduled_rate; const b = rb.scheduled_rate;
  return isNum(a) && isNum(b) && Math.abs(a - b) <= NOISE * Math.max(a, b);
}

// The setup and outcome of both runs, side by side; rows that differ are highlighted.
const SETUP_ROWS = [
  {label: 'Name', get: (r) => r.name || '—'},
  {label: 'Started', get: (r) => fmtTime(r.started_at || r.created_at, true), noDiff: true},
  {label: 'Status', get: (r) => r.status},
  {label: 'Result', get: (r) => outcome(r).label},
  {label: 'Users', get: (r) => fmtInt((r.config || {}).users)},
  {label: 'Accounts per user', get: (r) => fmtInt((r.config || {}).accounts_per_user)},
  {label: 'Load shape', get: (r) => shapeText(r.config || {})},
  {label: 'Thresholds', get: (r) => (r.thresholds || []).map(thresholdText).join('; ') || '—'},
  {label: 'Mix', get: (r) => Object.entries((r.config || {}).mix || {}).map(([k, v]) => k + ' ' + v).join(' · ')},
  {label: 'Connections', get: (r) => fmtInt((r.config || {}).connections)},
  {label: 'Workers', get: (r) => ((r.config || {}).workers ? fmtInt(r.config.workers) : 'none (the service sent)')},
  {label: 'Sent', get: (r) => fmtInt(r.sent)},
  {label: 'Failed', get: (r) => fmtInt(r.failed)},
  {label: 'Verification', get: (r) => (verdict(r.verification) === true ? '✓ passed' : verdict(r.verification) === false ? '✗ failed' : '—')},
];

function renderCompare(views, runs, points, cmp) {
  const box = $('compare');
  const [ra, rb] = runs;
  if (!views.els) {
    views.els = {
      metrics: h('div', {class: 'table-wrap'}),
      setup: h('div', {class: 'table-wrap'}),
      tp: chartFigure('compare-throughput', 'Throughput, sent per second'),
      lat: chartFigure('compare-latency', 'Latency p50 and p99'),
    };
    const name = (tag, r) => [h('span', {class: 'tag ' + tag.toLowerCase(), text: tag}), r.name ? r.name + ' ' : '', h('code', {text: shortId(r.id)})];
    box.replaceChildren(
      h('div', {class: 'detail-head'},
        h('h2', {id: 'compare-title'}, 'Compare ', name('B', rb), ' with ', name('A', ra), ' (base)'),
        h('div', {class: 'actions'},
          h('a', {class: 'button secondary', href: '#/compare/' + rb.id + '/' + ra.id, text: 'Swap A and B'}),
          h('a', {class: 'button secondary', href: '#/', text: 'Close comparison'}))),
      h('p', {class: 'hint', text: 'B is measured against the base A: green where B did better, red where it did worse (changes under 1 % are noise and left plain; achieved rates of runs scheduled differently are compared through achieved / scheduled). Time is seconds since each run started.'}),
      h('div', {class: 'charts'}, views.els.tp, views.els.lat),
      h('section', {class: 'panel wide', 'aria-labelledby': 'cmp-res'}, h('h3', {id: 'cmp-res', text: 'Results'}), views.els.metrics),
      h('section', {class: 'panel wide', 'aria-labelledby': 'cmp-setup'}, h('h3', {id: 'cmp-setup', text: 'Setup and outcome'}), views.els.setup));
  }
  const head = (tag, r, cls) => h('th', {scope: 'col', class: (cls || 'num') + ' run-head'}, h('span', {class: 'tag ' + tag.toLowerCase(), text: tag}), h('a', {href: '#/runs/' + r.id}, h('code', {text: shortId(r.id)})));
  views.els.metrics.replaceChildren(h('table', {class: 'compare-table', id: 'compare-metrics'},
    h('caption', {class: 'sr-only', text: 'Run B against the base run A, as the service compares them'}),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Metric'}), head('A', ra), head('B', rb), h('th', {scope: 'col', class: 'num', text: 'Change'}))),
    h('tbody', {}, (cmp.metrics || []).map((m) => {
      const spec = COMPARE_METRICS[m.name] || {label: humanize(m.name), fmt: (v) => nf3.format(v)};
      const cls = judgeMetric(m, ra, rb);
      const apart = m.name === 'achieved_rate' && !sameSchedule(ra, rb);
      return h('tr', {dataset: {metric: m.name, judged: cls || 'same'}},
        h('th', {scope: 'row', text: spec.label}),
        h('td', {class: 'num', text: spec.fmt(m.base)}),
        h('td', {class: 'num ' + cls, text: spec.fmt(m.run)}),
        h('td', {class: 'num delta ' + cls, title: apart ? 'The runs were scheduled at different rates: compare achieved / scheduled.' : null},
          isNum(m.change) ? (m.change > 0 ? '+' : m.change < 0 ? '−' : '±') + nf1.format(Math.abs(m.change) * 100) + ' %' : '—',
          apart ? h('span', {class: 'hint', text: ' other schedule'}) : null));
    }))));
  views.els.setup.replaceChildren(h('table', {class: 'compare-table', id: 'compare-setup'},
    h('caption', {class: 'sr-only', text: 'Setup and outcome of run A and run B'}),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Setup'}), head('A', ra, 'setup-val'), head('B', rb, 'setup-val'))),
    h('tbody', {}, SETUP_ROWS.map((row) => {
      const a = row.get(ra); const b = row.get(rb);
      const differ = !row.noDiff && a !== b;
      return h('tr', {class: differ ? 'diff' : null}, h('th', {scope: 'row', text: row.label}),
        h('td', {class: 'setup-val' + (differ ? ' changed' : ''), text: a}), h('td', {class: 'setup-val' + (differ ? ' changed' : ''), text: b}));
    }))));

  const sa = seriesOf(ra, points[0]);
  const sb = seriesOf(rb, points[1]);
  const xMin = Math.max(sa.end || 0, sb.end || 0, 10);
  lineChart(views.els.tp, {xMin, yTitle: 'requests/s', tipFormat: (v) => fmtRate(v) + '/s', series: [
    {key: 'a-target', label: 'A target/s', cls: 'c-a', dashed: true, points: sa.target},
    {key: 'b-target', label: 'B target/s', cls: 'c-b', dashed: true, points: sb.target},
    {key: 'a-sent', label: 'A sent/s', cls: 'c-a', points: sa.sent},
    {key: 'b-sent', label: 'B sent/s', cls: 'c-b', points: sb.sent}],
  ariaLabel: 'Throughput of run A (' + points[0].length + ' seconds) and run B (' + points[1].length + ' seconds)'});
  lineChart(views.els.lat, {xMin, yTitle: 'ms', tipFormat: fmtMs, series: [
    {key: 'a-p50', label: 'A p50', cls: 'c-a', dashed: true, points: sa.p50},
    {key: 'b-p50', label: 'B p50', cls: 'c-b', dashed: true, points: sb.p50},
    {key: 'a-p99', label: 'A p99', cls: 'c-a', points: sa.p99},
    {key: 'b-p99', label: 'B p99', cls: 'c-b', points: sb.p99}],
  ariaLabel: 'Latency percentiles of run A and run B'});
}

// ---------- new run form ----------

const shapeIsStages = () => $('shape-stages').checked;

// readForm is the run the form describes, as POST /runs takes it. Fields left empty are left
// out: the API then applies its default, or says the field is required.
function readForm(form) {
  const body = {};
  const mix = {};
  const stages = shapeIsStages();
  for (const el of form.elements) {
    if (!el.name || el.tagName !== 'INPUT' || 'local' in el.dataset) continue;
    if (stages && ['rate', 'duration_s', 'ramp_up_s'].includes(el.name)) continue; // stages replace them
    const raw = el.value.trim();
    if (raw === '') continue;
    if (el.name === 'workers' && Number(raw) === 0) continue; // none: the service sends the load
    let v = raw;
    if (el.name === 'seed' && /^\d+$/.test(raw)) {
      v = raw; // sent as digits, see request()
    } else if (el.type === 'number') {
      const n = Number(raw);
      v = Number.isFinite(n) ? n : raw;
    } else if (el.name === 'currency') {
      v = raw.toUpperCase();
    }
    if (el.name.startsWith('mix.')) mix[el.name.slice(4)] = v;
    else body[el.name] = v;
  }
  if (Object.keys(mix).length) body.mix = mix;
  if (stages) body.stages = [...$('stage-rows').children].map(readStage);
  const thresholds = [...$('threshold-rows').children].map(readThreshold);
  if (thresholds.length) body.thresholds = thresholds;
  return body;
}

const num = (input) => (input.value.trim() === '' ? undefined : Number(input.value));
const part = (row, name) => row.querySelector('[data-part="' + name + '"]');

function readStage(row) {
  return {duration_s: num(part(row, 'duration_s')), rate: num(part(row, 'rate'))};
}

// readThreshold reads a threshold row: its value is the metric's max, or for achieved_ratio its
// min, as the API takes them.
function readThreshold(row) {
  const metric = part(row, 'metric').value;
  const t = {metric};
  const v = num(part(row, 'value'));
  if (v !== undefined) t[(METRICS[metric] || {}).bound || 'max'] = v;
  const w = num(part(row, 'window_s'));
  if (w !== undefined) t.window_s = w;
  t.abort = part(row, 'abort').checked;
  return t;
}

// A stage row: duration and rate, with its own error line.
function stageRow(stage) {
  const row = h('li', {class: 'row stage-row'});
  const field = (name, label, attrs) => h('div', {class: 'field'}, h('label', {text: label}), h('input', {type: 'number', step: 'any', min: '0', 'data-part': name, ...attrs}));
  row.append(
    field('duration_s', 'Duration (s)', {inputmode: 'decimal', value: stage && stage.duration_s}),
    field('rate', 'Rate (req/s)', {inputmode: 'decimal', value: stage && stage.rate}),
    removeButton(row, 'stage'),
    h('p', {class: 'field-error row-error', 'aria-live': 'polite'}));
  return row;
}

// A threshold row: the metric, its bound (max, or min for achieved_ratio, in the metric's unit),
// an optional window and whether breaking it aborts the run.
function thresholdRow(t) {
  const row = h('li', {class: 'row threshold-row'});
  const metric = h('select', {'data-part': 'metric'}, Object.entries(METRICS).map(([k, m]) => h('option', {value: k, title: k, text: m.label})));
  const valueLabel = h('label', {});
  const value = h('input', {type: 'number', step: 'any', min: '0', inputmode: 'decimal', 'data-part': 'value'});
  const setLabel = () => {
    const m = METRICS[metric.value];
    valueLabel.textContent = (m.bound === 'min' ? 'Min' : 'Max') + (m.unit === 'ms' ? ' (ms)' : ' (0–1)');
    value.placeholder = m.unit === 'ms' ? '500' : m.bound === 'min' ? '0.99' : '0.01';
  };
  metric.addEventListener('change', setLabel);
  if (t) {
    metric.value = t.metric in METRICS ? t.metric : 'p99_ms';
    const v = isNum(t.max) ? t.max : t.min;
    if (isNum(v)) value.value = String(v);
  } else {
    metric.value = 'p99_ms';
  }
  setLabel();
  const windowInput = h('input', {type: 'number', step: '1', min: '1', inputmode: 'numeric', 'data-part': 'window_s', placeholder: 'whole run', value: t && t.window_s ? t.window_s : null});
  const abort = h('input', {type: 'checkbox', 'data-part': 'abort', checked: !!(t && t.abort)});
  row.append(
    h('div', {class: 'field metric'}, h('label', {text: 'Metric'}), metric),
    h('div', {class: 'field'}, valueLabel, value),
    h('div', {class: 'field'}, h('label', {text: 'Window (s)'}), windowInput),
    h('label', {class: 'check'}, abort, 'Abort'),
    removeButton(row, 'threshold'),
    h('p', {class: 'field-error row-error', 'aria-live': 'polite'}));
  return row;
}

function removeButton(row, what) {
  return h('button', {type: 'button', class: 'icon remove', 'aria-label': 'Remove this ' + what, title: 'Remove this ' + what,
    onclick: () => { row.remove(); labelRows(); }}, '×');
}

// labelRows ties every row's labels to its inputs and numbers the rows as the API does
// (stages[0], thresholds[0]), which is how its errors name them.
function labelRows() {
  for (const [list, kind] of [[$('stage-rows'), 'stages'], [$('threshold-rows'), 'thresholds']]) {
    [...list.children].forEach((row, i) => {
      row.dataset.index = String(i);
      const err = row.querySelector('.row-error');
      err.id = 'e-' + kind + '-' + i;
      for (const f of row.querySelectorAll('.field')) {
        const input = f.querySelector('[data-part]');
        input.id = 'f-' + kind + '-' + i + '-' + input.dataset.part;
        input.setAttribute('aria-describedby', err.id);
        f.querySelector('label').htmlFor = input.id;
      }
    });
  }
  $('thresholds-empty').hidden = $('threshold-rows').children.length > 0;
}

function addStage(stage) {
  $('stage-rows').append(stageRow(stage));
  labelRows();
}

function addThreshold(t) {
  $('threshold-rows').append(thresholdRow(t));
  labelRows();
}

// setShape shows the stages editor or the rate, duration and ramp-up fields; a first stage row is
// offered when there is none.
function setShape(stages) {
  document.querySelector('input[name="shape"][value="' + (stages ? 'stages' : 'constant') + '"]').checked = true;
  $('constant-fields').hidden = stages;
  $('stage-editor').hidden = !stages;
  if (stages && !$('stage-rows').children.length) addStage({duration_s: 10, rate: Number($('f-rate').value) || 100});
}

function clearFormErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
  $('form-errors').hidden = true;
  $('form-errors').replaceChildren();
}

// fieldTarget finds where an error of the API's field goes: a row's input for
// "thresholds[0].max" or "stages[1].rate", else the field's own input and message (or its
// nearest named parent's, e.g. "mix" for "mix.hold").
function fieldTarget(field) {
  const m = /^(stages|thresholds)\[(\d+)\]\.(\w+)$/.exec(field);
  if (m) {
    const row = $(m[1] === 'stages' ? 'stage-rows' : 'threshold-rows').children[+m[2]];
    if (row) {
      const name = m[3] === 'max' || m[3] === 'min' ? 'value' : m[3];
      return {input: part(row, name), error: row.querySelector('.row-error'), wrap: row, label: ''};
    }
    field = m[1];
  }
  let name = field;
  while (name && !$('e-' + name)) name = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
  if (!name) return null;
  return {input: $('f-' + name), error: $('e-' + name), wrap: document.querySelector('#run-form [data-field="' + name + '"]'), label: name !== field ? field : ''};
}

// showFormErrors puts each of the problem's errors[] next to its field; a field the form does
// not have (or a problem without errors[]) is shown above the buttons.
function showFormErrors(form, problem, status) {
  const loose = [];
  let first = null;
  for (const err of problem.errors || []) {
    const field = String(err.field || '');
    const target = fieldTarget(field);
    if (!target) {
      loose.push((field ? field + ': ' : '') + err.message);
      continue;
    }
    const p = target.error;
    p.textContent = (p.textContent ? p.textContent + ' ' : '') + (target.label ? target.label + ' ' : '') + err.message;
    if (target.wrap) target.wrap.classList.add('invalid');
    const details = p.closest('details');
    if (details) details.open = true;
    if (target.input) {
      target.input.setAttribute('aria-invalid', 'true');
      first = first || target.input;
    }
  }
  if (!(problem.errors || []).length) loose.push((problem.title || 'Error ' + status) + (problem.detail ? ': ' + problem.detail : ''));
  if (loose.length) {
    const box = $('form-errors');
    box.replaceChildren(h('strong', {text: status === 400 ? 'The run was not started:' : 'The run was not started (' + status + '):'}), h('ul', {}, loose.map((t) => h('li', {text: t}))));
    box.hidden = false;
  }
  if (first) first.focus();
}

// checkRows marks stage fields left empty: an empty rate would otherwise go out as nothing, and
// a stage's rate of 0 is valid, so the API could not tell the mistake.
function checkRows() {
  let first = null;
  if (!shapeIsStages()) return null;
  for (const row of $('stage-rows').children) {
    for (const name of ['duration_s', 'rate']) {
      const input = part(row, name);
      if (input.value.trim() !== '') continue;
      input.setAttribute('aria-invalid', 'true');
      row.classList.add('invalid');
      row.querySelector('.row-error').textContent = 'Give every stage a duration and a rate.';
      first = first || input;
    }
  }
  if (!$('stage-rows').children.length) {
    $('e-stages').textContent = 'Add at least one stage, or choose "Rate and ramp-up".';
    first = first || $('add-stage');
  }
  return first;
}

function updateMixSum(form) {
  const names = ['mix.transfer', 'mix.deposit', 'mix.withdrawal', 'mix.read', 'mix.hold'];
  const vals = names.map((n) => Number(form.elements[n].value || 0));
  const sum = vals.reduce((a, b) => a + b, 0);
  const p = $('mix-sum');
  p.textContent = 'Sum: ' + nf2.format(sum) + (Math.abs(sum - 1) > 1e-9 ? ' — shares must add up to 1' : '');
  p.className = 'hint' + (Math.abs(sum - 1) > 1e-9 ? ' warn-text' : '');
}

async function submitRun(e) {
  e.preventDefault();
  const form = e.target;
  clearFormErrors(form);
  if (!state.token) {
    openTokenPanel();
    return;
  }
  const missing = checkRows();
  if (missing) {
    missing.focus();
    return;
  }
  const btn = $('start-run');
  btn.disabled = true;
  btn.dataset.submitting = '1';
  btn.textContent = 'Starting…';
  try {
    const run = await api('POST', '/runs', readForm(form));
    upsertRun(run);
    location.hash = '#/runs/' + run.id;
    refreshList();
  } catch (err) {
    if (err.status !== 401) showFormErrors(form, err.problem || {}, err.status);
    if (err.status === 409) refreshWorkers(); // e.g. fewer idle workers than asked: show how many
  } finally {
    delete btn.dataset.submitting;
    btn.textContent = 'Start run';
    updateStartButton();
  }
}

// fillForm puts a run's configuration into the form, to run it again or a variant of it.
function fillForm(cfg, name) {
  const form = $('run-form');
  clearFormErrors(form);
  for (const el of form.elements) {
    if (!el.name || el.tagName !== 'INPUT' || 'local' in el.dataset) continue;
    const v = el.name.startsWith('mix.') ? cfg.mix && cfg.mix[el.name.slice(4)] : cfg[el.name];
    if (v != null) el.value = String(v);
  }
  $('f-name').value = name || cfg.name || '';
  $('f-workers').value = cfg.workers ? String(cfg.workers) : ''; // absent: the service sent it
  updateWorkersHint();
  $('stage-rows').replaceChildren();
  for (const s of cfg.stages || []) addStage(s);
  setShape(!!(cfg.stages && cfg.stages.length));
  $('threshold-rows').replaceChildren();
  for (const t of cfg.thresholds || []) addThreshold(t);
  labelRows();
  updateMixSum(form);
  $('advanced').open = ['max_amount', 'skew', 'connections', 'seed', 'workers'].some((k) => cfg[k] != null);
  form.scrollIntoView({behavior: 'smooth', block: 'start'});
  $('f-users').focus({preventScroll: true});
}

// ---------- start ----------

function init() {
  const form = $('run-form');
  form.addEventListener('submit', submitRun);
  form.addEventListener('input', (e) => {
    if (e.target.name && e.target.name.startsWith('mix.')) updateMixSum(form);
    if (e.target.name === 'workers') updateWorkersHint();
  });
  form.addEventListener('change', (e) => {
    if (e.target.name === 'shape') setShape(e.target.value === 'stages');
  });
  form.addEventListener('reset', () => setTimeout(() => {
    clearFormErrors(form);
    $('stage-rows').replaceChildren();
    $('threshold-rows').replaceChildren();
    setShape(false);
    labelRows();
    updateMixSum(form);
    updateWorkersHint();
  }));
  $('add-stage').addEventListener('click', () => addStage());
  $('add-threshold').addEventListener('click', () => addThreshold());
  updateMixSum(form);
  labelRows();

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token-input').value.trim();
    if (v) saveToken(v);
  });
  $('token-cancel').addEventListener('click', () => { $('token-panel').hidden = true; });
  $('token-change').addEventListener('click', openTokenPanel);
  $('refresh-btn').addEventListener('click', () => refreshList());
  $('runs-more').addEventListener('click', loadOlder);
  $('compare-btn').addEventListener('click', () => {
    if (state.picked.length === 2) location.hash = '#/compare/' + state.picked[0] + '/' + state.picked[1];
  });
  window.addEventListener('hashchange', route);

  updateTokenLabel();
  if (!state.token) {
    showBanner('auth', 'Enter the admin token to use the loadtest API.', 'info');
    openTokenPanel();
  }
  refreshList();
  refreshWorkers();
  route();
}

init();
