// Loadtest web UI: plain JavaScript, no build step, no dependencies. It talks to the loadtest API
// (API.md, "Loadtest") with the admin token kept in localStorage, and draws its charts as SVG.
'use strict';

const API = 'api/v1';
const TOKEN_KEY = 'loadtest.adminToken';
const ACTIVE = new Set(['preparing', 'running']);
const FINAL = new Set(['completed', 'stopped', 'failed']);
// Error codes that are a business rule's correct answer rather than a fault (as the service
// counts them in `rejected`).
const REJECTIONS = new Set(['insufficient_funds', 'currency_mismatch', 'same_account', 'balance_limit']);
const LIVE_MS = 1000; // detail refresh while a run is active
const LIST_ACTIVE_MS = 2000;
const LIST_IDLE_MS = 5000;

const state = {
  token: localStorage.getItem(TOKEN_KEY) || '',
  unauthorized: false,
  runs: [], // newest first
  picked: [], // ids ticked for comparison, at most two
  view: null, // {kind: 'run', id} | {kind: 'compare', a, b} | null
  gen: 0, // bumped on every view change; a poll loop of an older view stops
  listTimer: 0,
  charts: new Map(), // figure element -> last chart options, redrawn on resize
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
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

function fmtInt(v) { return isNum(v) ? nf0.format(v) : '—'; }
function fmtRate(v) { return isNum(v) ? (v >= 100 ? nf0 : nf1).format(v) : '—'; }
function fmtPct(v) { return isNum(v) ? nf1.format(v * 100) + ' %' : '—'; }

function fmtMs(v) {
  if (!isNum(v)) return '—';
  if (v >= 10000) return nf1.format(v / 1000) + ' s';
  if (v >= 100) return nf0.format(v) + ' ms';
  if (v >= 10) return nf1.format(v) + ' ms';
  return nf2.format(v) + ' ms';
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

function fmtTime(t, withDate) {
  const ms = typeof t === 'number' ? t : parseTime(t);
  if (ms == null) return '—';
  const d = new Date(ms);
  const time = d.toLocaleTimeString('en-GB', {hour12: false});
  const today = new Date().toDateString() === d.toDateString();
  if (today && !withDate) return time;
  return d.toLocaleDateString('en-CA') + ' ' + time;
}

// shortId is the tail of a run id: the service's ids are UUIDv7, whose head is the time.
const shortId = (id) => String(id || '').slice(-8);

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

async function api(method, path, body) {
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
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text.replace(/"seed":\s*(\d{16,})/g, '"seed":"$1"')); } catch { data = null; }
  }
  if (resp.status === 401) {
    unauthorized();
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data || {title: resp.statusText, detail: text.slice(0, 300)});
  return data;
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

// ---------- run list ----------

// settled says nothing more changes by itself: the run ended and was verified (phase "done").
function settled(run) {
  if (run.phase) return run.phase === 'done';
  return FINAL.has(run.status) && (run.verification != null || run.status === 'failed');
}

// verdict is true when every check passed, false when one failed, null while there is none.
function verdict(v) {
  if (v == null || typeof v !== 'object') return null;
  if (typeof v.ok === 'boolean') return v.ok;
  if (typeof v.passed === 'boolean') return v.passed;
  let any = false;
  for (const c of Object.values(v)) {
    const r = checkOf(c);
    if (r === false) return false;
    if (r === true) any = true;
  }
  return any ? true : null;
}

// checkOf is a check's outcome: booleans, and objects with ok/passed; null for plain figures.
function checkOf(c) {
  if (typeof c === 'boolean') return c;
  if (c && typeof c === 'object' && !Array.isArray(c)) {
    if (typeof c.ok === 'boolean') return c.ok;
    if (typeof c.passed === 'boolean') return c.passed;
  }
  return null;
}

function statusBadge(status) {
  return h('span', {class: 'status status-' + status, text: status || 'unknown'});
}

function verdictMark(run) {
  const v = verdict(run.verification);
  if (v === true) return h('span', {class: 'mark ok', title: 'verification passed'}, '✓', h('span', {class: 'sr-only', text: ' passed'}));
  if (v === false) return h('span', {class: 'mark bad', title: 'verification failed'}, '✗', h('span', {class: 'sr-only', text: ' failed'}));
  if (!settled(run)) return h('span', {class: 'mark pending', title: 'not verified yet'}, '…', h('span', {class: 'sr-only', text: ' not verified yet'}));
  return h('span', {class: 'mark none', text: '—'});
}

async function refreshList() {
  clearTimeout(state.listTimer);
  if (state.token && !state.unauthorized) {
    try {
      const runs = listOf(await api('GET', '/runs'));
      runs.sort((a, b) => (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0));
      state.runs = runs;
      renderList();
      $('runs-updated').textContent = 'updated ' + fmtTime(Date.now());
    } catch (e) {
      if (e.status && e.status !== 401) showBanner('list', 'Listing runs failed: ' + e.message);
    }
  }
  const active = state.runs.some((r) => !settled(r));
  state.listTimer = setTimeout(refreshList, active ? LIST_ACTIVE_MS : LIST_IDLE_MS);
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

function renderList() {
  const body = $('runs-body');
  const current = state.view && state.view.kind === 'run' ? state.view.id : null;
  const inCompare = state.view && state.view.kind === 'compare' ? [state.view.a, state.view.b] : [];
  state.picked = state.picked.filter((id) => state.runs.some((r) => r.id === id));
  const order = state.runs.map((run) => {
    let row = rows.get(run.id);
    if (!row) {
      const box = h('input', {type: 'checkbox', class: 'pick', 'aria-label': 'Compare run ' + shortId(run.id),
        onchange: (e) => pick(run.id, e.target.checked)});
      const link = h('a', {href: '#/runs/' + run.id, class: 'run-link', title: run.id}, h('code', {text: shortId(run.id)}));
      const cells = [...Array(6)].map(() => h('td', {}));
      row = {tr: h('tr', {dataset: {id: run.id}}, h('td', {}, box), h('td', {}, link), cells), box, link, cells, sig: ''};
      rows.set(run.id, row);
    }
    row.box.checked = state.picked.includes(run.id);
    row.tr.classList.toggle('selected', run.id === current || inCompare.includes(run.id));
    if (run.id === current) row.link.setAttribute('aria-current', 'true');
    else row.link.removeAttribute('aria-current');
    const lat = run.latency_ms || {};
    const sig = JSON.stringify([run.status, run.started_at, run.target_rate, run.achieved_rate, lat.p99, run.ok, run.failed,
      verdict(run.verification), settled(run)]);
    if (sig !== row.sig) {
      row.sig = sig;
      const [status, started, rate, p99, counts, verified] = row.cells;
      status.replaceChildren(statusBadge(run.status));
      started.textContent = fmtTime(run.started_at || run.created_at);
      rate.className = 'num';
      rate.replaceChildren(fmtRate(run.target_rate), h('span', {class: 'arrow', text: ' → '}), h('strong', {text: fmtRate(run.achieved_rate)}));
      p99.className = 'num';
      p99.textContent = fmtMs(lat.p99);
      counts.className = 'num';
      counts.replaceChildren(fmtInt(run.ok), ' / ', h('span', {class: run.failed > 0 ? 'bad-text' : null, text: fmtInt(run.failed)}));
      verified.className = 'center';
      verified.replaceChildren(verdictMark(run));
    }
    return row.tr;
  });
  for (const id of rows.keys()) if (!state.runs.some((r) => r.id === id)) rows.delete(id);
  // Insert and move only what changed place (a new run goes on top; the others stay put).
  order.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  while (body.children.length > order.length) body.lastElementChild.remove();
  $('runs-empty').hidden = state.runs.length > 0;
  const btn = $('compare-btn');
  btn.disabled = state.picked.length !== 2;
  btn.textContent = 'Compare selected (' + state.picked.length + '/2)';
}

function pick(id, on) {
  state.picked = state.picked.filter((x) => x !== id);
  if (on) {
    state.picked.push(id);
    if (state.picked.length > 2) state.picked.shift(); // ticking a third drops the oldest pick
  }
  renderList();
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
  return {lo, hi: Math.max(hi, lo + step), values: out};
}

const fmtAxisSecs = (v) => (v < 120 ? v + 's' : Math.floor(v / 60) + ':' + String(Math.round(v % 60)).padStart(2, '0'));

function nearest(points, x) {
  let best = null;
  for (const p of points) if (best == null || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
  return best;
}

// lineChart draws series of [x, y] points (x in seconds) into a <figure> holding a .legend and a
// .plot, and records in the figure's data-points how many x positions it drew. Each series is
// {label, cls, dashed?, points}; y may be null for a gap.
function lineChart(fig, opts) {
  state.charts.set(fig, opts);
  const plot = fig.querySelector('.plot');
  const W = Math.max(300, Math.round(plot.clientWidth || 600));
  const H = opts.height || 230;
  const m = {l: 58, r: 16, t: 12, b: 28};
  let xMax = 0; let yMax = 0; let n = 0;
  for (const s of opts.series) {
    n = Math.max(n, s.points.length);
    for (const [x, y] of s.points) {
      if (x > xMax) xMax = x;
      if (isNum(y) && y > yMax) yMax = y;
    }
  }
  const xt = ticks(0, Math.max(xMax, opts.minX || 10), Math.max(3, Math.floor((W - m.l - m.r) / 70)));
  const yt = ticks(0, yMax > 0 ? yMax * 1.08 : opts.emptyMaxY || 1, 4);
  const X = (x) => m.l + ((x - xt.lo) / (xt.hi - xt.lo)) * (W - m.l - m.r);
  const Y = (y) => H - m.b - ((y - yt.lo) / (yt.hi - yt.lo)) * (H - m.t - m.b);
  const yFmt = opts.yFormat || ((v) => nf1.format(v));

  const root = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': opts.ariaLabel || opts.title});
  const grid = svg('g', {class: 'grid'});
  const labels = svg('g', {class: 'axis-labels'});
  for (const v of yt.values) {
    grid.append(svg('line', {x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v)}));
    labels.append(svg('text', {x: m.l - 8, y: Y(v) + 4, 'text-anchor': 'end'}, yFmt(v)));
  }
  for (const v of xt.values) {
    grid.append(svg('line', {class: 'xtick', x1: X(v), x2: X(v), y1: H - m.b, y2: H - m.b + 4}));
    labels.append(svg('text', {x: X(v), y: H - m.b + 17, 'text-anchor': 'middle'}, fmtAxisSecs(v)));
  }
  grid.append(svg('line', {class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b}));
  root.append(grid, labels);

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
    const cls = 'line ' + s.cls + (s.dashed ? ' dashed' : '');
    if (d) lines.append(svg('path', {d, class: cls}));
    if (!s.dashed && s.points.length <= 90) {
      for (const [x, y] of s.points) if (isNum(y)) lines.append(svg('circle', {cx: X(x).toFixed(1), cy: Y(y).toFixed(1), r: 2.2, class: 'dot ' + s.cls}));
    }
  }
  root.append(lines);
  if (n === 0) {
    root.append(svg('text', {x: (m.l + W - m.r) / 2, y: (H - m.b + m.t) / 2, class: 'empty-text', 'text-anchor': 'middle'}, opts.emptyText || 'Waiting for data…'));
  }

  // Hover: a cursor line and the values of every series at the nearest second.
  const cursor = svg('line', {class: 'cursor', y1: m.t, y2: H - m.b, x1: m.l, x2: m.l, visibility: 'hidden'});
  const hit = svg('rect', {x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: 'hit'});
  root.append(cursor, hit);
  const tip = h('div', {class: 'tooltip', hidden: true});
  hit.addEventListener('pointermove', (e) => {
    const r = root.getBoundingClientRect();
    const px = ((e.clientX - r.left) * W) / r.width;
    const xv = xt.lo + ((px - m.l) / (W - m.l - m.r)) * (xt.hi - xt.lo);
    const rows = [];
    let at = null;
    for (const s of opts.series) {
      const p = nearest(s.points, xv);
      if (!p) continue;
      if (at == null) at = p[0];
      rows.push(h('div', {}, h('span', {class: 'swatch ' + s.cls + (s.dashed ? ' dashed' : '')}), s.label + ': ', h('strong', {text: isNum(p[1]) ? yFmt(p[1]) : '—'})));
    }
    if (at == null) return;
    cursor.setAttribute('x1', X(at)); cursor.setAttribute('x2', X(at)); cursor.setAttribute('visibility', 'visible');
    tip.replaceChildren(h('div', {class: 'tip-title', text: fmtAxisSecs(Math.round(at * 10) / 10)}), ...rows);
    tip.hidden = false;
    const left = (X(at) / W) * r.width;
    tip.style.left = Math.min(Math.max(0, left + 12), r.width - 190) + 'px';
  });
  hit.addEventListener('pointerleave', () => { tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); });

  plot.replaceChildren(root, tip);
  const legend = fig.querySelector('.legend');
  if (legend) {
    legend.replaceChildren(...opts.series.map((s) => h('li', {}, h('span', {class: 'swatch ' + s.cls + (s.dashed ? ' dashed' : ''), 'aria-hidden': 'true'}), s.label)));
  }
  fig.dataset.points = String(n);
}

function chartFigure(id, title) {
  return h('figure', {class: 'chart-fig', id, dataset: {points: '0'}},
    h('figcaption', {}, h('span', {class: 'chart-title', text: title}), h('ul', {class: 'legend'})),
    h('div', {class: 'plot'}));
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const [fig, opts] of state.charts) {
      if (fig.isConnected) lineChart(fig, opts);
      else state.charts.delete(fig);
    }
  }, 150);
});

// ---------- series from a run and its points ----------

// scheduledRate is the rate the schedule asks for over [a, b) seconds of the running phase: a
// linear ramp from 0 over ramp_up_s, then the configured rate, until duration_s.
function scheduledRate(cfg, a, b) {
  const rate = cfg.rate; const ramp = cfg.ramp_up_s || 0; const dur = cfg.duration_s || Infinity;
  if (!isNum(rate)) return null;
  b = Math.min(b, dur);
  if (!(b > a)) return null;
  const expected = (t) => (t <= 0 ? 0 : t < ramp ? (rate * t * t) / (2 * ramp) : rate * (t - ramp / 2));
  return (expected(b) - expected(a)) / (b - a);
}

// answered says a second had answers, so latencies; a second without any (the tail of a
// stopped run) is a gap in the latency lines, not a zero.
const answered = (p) => (p.ok == null && p.failed == null) || (p.ok || 0) + (p.failed || 0) > 0;

// seriesOf turns timeseries points into chart inputs: x is seconds since the run started.
function seriesOf(run, points) {
  const cfg = run.config || {};
  const t0 = parseTime(run.started_at) ?? (points.length ? parseTime(points[0].t) : null) ?? 0;
  const xs = points.map((p) => Math.max(0, Math.round(((parseTime(p.t) ?? t0) - t0) / 100) / 10));
  const col = (f) => points.map((p, i) => [xs[i], f(p, xs[i])]);
  return {
    achieved: col((p) => (isNum(p.rate) ? p.rate : p.sent)),
    failed: col((p) => p.failed),
    target: col((p, x) => scheduledRate(cfg, x, x + 1) ?? run.target_rate),
    p50: col((p) => (answered(p) ? p.p50_ms : null)),
    p99: col((p) => (answered(p) ? p.p99_ms : null)),
    anyFailed: points.some((p) => p.failed > 0),
    minX: isNum(cfg.duration_s) ? cfg.duration_s : 10,
  };
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
    h('p', {class: 'empty', text: 'Pick a run in the list to see its live charts, errors, summary and verification — or start a new one. Tick two runs to compare them side by side.'}));
  d.hidden = false;
}

// ---------- one run ----------

async function pollRun(gen, id) {
  const view = {id, run: null, points: [], seen: [], els: null};
  const d = $('detail');
  d.replaceChildren(h('h2', {id: 'detail-title'}, 'Run ', h('code', {text: shortId(id)})), h('p', {class: 'empty', text: 'Loading…'}));
  d.hidden = false;
  while (gen === state.gen) {
    const began = Date.now();
    let done = false;
    try {
      const [run, ts] = await Promise.all([api('GET', '/runs/' + encodeURIComponent(id)), api('GET', '/runs/' + encodeURIComponent(id) + '/timeseries')]);
      if (gen !== state.gen) return;
      view.points = (ts && ts.points) || [];
      noteStatus(view, run);
      view.run = run;
      upsertRun(run);
      renderRun(view);
      // Keep polling while the run is active, then until its verification is in.
      done = settled(run);
    } catch (e) {
      if (gen !== state.gen) return;
      if (e.status === 404) {
        d.replaceChildren(h('h2', {id: 'detail-title', text: 'Run not found'}), h('p', {class: 'empty'}, 'There is no run ', h('code', {text: id}), '.'));
        return;
      }
      if (e.status === 401) return; // the token panel is open; saving a token restarts the view
      if (e.status) showBanner('detail', 'Reading the run failed: ' + e.message);
    }
    if (done) return;
    const active = view.run && ACTIVE.has(view.run.status);
    await sleep(Math.max(100, (active ? LIVE_MS : 2000) - (Date.now() - began)));
  }
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
    if (last) announce('Run ' + shortId(run.id) + ' is now ' + stage + '.');
  }
}

function announce(msg) {
  const live = $('detail').querySelector('.live-region');
  if (live) live.textContent = msg;
}

// renderRun builds the detail's skeleton once per run, then fills its parts on every poll.
function renderRun(view) {
  const run = view.run;
  const d = $('detail');
  if (!view.els) {
    const e = (view.els = {});
    e.status = h('span', {class: 'status'});
    e.stop = h('button', {type: 'button', class: 'danger', id: 'stop-run', onclick: () => stopRun(view)}, 'Stop run');
    e.del = h('button', {type: 'button', class: 'secondary', id: 'delete-data', onclick: () => deleteData(view)}, 'Delete test data');
    e.again = h('button', {type: 'button', class: 'secondary', onclick: () => fillForm(view.run.config || {})}, 'Copy setup to form');
    e.live = h('span', {class: 'live'});
    e.phase = h('span', {class: 'phase', hidden: true, text: 'verifying…'});
    e.behind = h('p', {class: 'behind', role: 'status', hidden: true});
    e.message = h('p', {class: 'message', role: 'status', hidden: true});
    e.steps = h('ol', {class: 'steps', 'aria-label': 'Status'});
    e.history = h('ul', {class: 'history', 'aria-label': 'Status changes seen'});
    e.progress = h('div', {class: 'progress', hidden: true});
    e.failure = h('p', {class: 'failure', role: 'alert', hidden: true});
    e.kpis = h('dl', {class: 'kpis'});
    e.tp = chartFigure('chart-throughput', 'Throughput (requests per second)');
    e.lat = chartFigure('chart-latency', 'Latency percentiles (ms)');
    e.errors = h('div', {});
    e.summary = h('div', {});
    e.verification = h('div', {});
    e.config = h('div', {});
    e.extra = h('div', {});
    d.replaceChildren(
      h('div', {class: 'detail-head'},
        h('h2', {id: 'detail-title'}, 'Run ', h('code', {text: shortId(run.id), title: run.id})),
        e.status, e.phase, e.live,
        h('div', {class: 'actions'}, e.again, e.stop, e.del)),
      h('p', {class: 'sr-only live-region', 'aria-live': 'polite'}),
      e.message, e.failure, e.behind,
      h('div', {class: 'status-row'}, e.steps, e.history),
      e.progress,
      e.kpis,
      h('div', {class: 'charts'}, e.tp, e.lat),
      h('div', {class: 'panels'},
        h('section', {class: 'panel summary', 'aria-labelledby': 'sum-title'}, h('h3', {id: 'sum-title', text: 'Summary'}), e.summary),
        h('div', {class: 'stack'},
          h('section', {class: 'panel', 'aria-labelledby': 'ver-title'}, h('h3', {id: 'ver-title', text: 'Verification'}), e.verification),
          h('section', {class: 'panel', 'aria-labelledby': 'err-title'}, h('h3', {id: 'err-title', text: 'Errors'}), e.errors))),
      e.extra,
      h('details', {class: 'config'}, h('summary', {text: 'Configuration'}), e.config));
  }
  const e = view.els;
  const active = ACTIVE.has(run.status);
  e.status.className = 'status status-' + run.status;
  e.status.textContent = run.status;
  e.phase.hidden = !(FINAL.has(run.status) && !settled(run));
  e.stop.disabled = !active;
  // The service refuses to clean up a run until it is over and verified.
  e.del.disabled = !settled(run) || view.deleting;
  e.del.textContent = run.cleanup ? 'Delete test data again' : 'Delete test data';
  e.live.className = 'live' + (active ? ' on' : '');
  e.live.textContent = active ? 'live · ' + fmtTime(Date.now()) : 'updated ' + fmtTime(Date.now());
  d.dataset.status = run.status;
  d.dataset.phase = run.phase || '';
  e.behind.hidden = !(run.behind && run.status !== 'preparing');
  e.behind.textContent = 'Behind schedule: the generator sent under 99 % of the scheduled rate or over 1 % of its requests late, so the load was lighter than asked.';
  if (FINAL.has(run.status) && view.stopFlash) {
    view.stopFlash = false;
    e.message.hidden = true;
  }
  if (run.cleanup && !view.flashed) {
    const c = run.cleanup;
    view.flashed = true;
    flash(view, 'Test data deleted' + (parseTime(c.at) ? ' at ' + fmtTime(c.at, true) : '') + ': ' + cleanupText(c) + '.', 'success');
  }

  renderSteps(e.steps, run);
  e.history.replaceChildren(...view.seen.map((s, i) => h('li', {},
    h('time', {text: fmtTime(s.at)}), ' ', i === 0 ? 'seen ' : view.seen[i - 1].stage + ' → ', h('strong', {text: s.stage}))));
  renderProgress(e.progress, run);
  e.failure.hidden = !(run.status === 'failed' && run.error);
  e.failure.textContent = run.error ? 'The run failed: ' + run.error : '';
  renderKpis(e.kpis, run);

  const s = seriesOf(run, view.points);
  const tpSeries = [
    {label: 'target', cls: 'c-target', dashed: true, points: s.target},
    {label: 'achieved (sent/s)', cls: 'c-achieved', points: s.achieved},
  ];
  if (s.anyFailed) tpSeries.push({label: 'failed/s', cls: 'c-failed', points: s.failed});
  const last = view.points[view.points.length - 1];
  lineChart(e.tp, {title: 'Throughput', series: tpSeries, minX: s.minX, yFormat: (v) => nf0.format(v), emptyMaxY: run.target_rate,
    emptyText: run.status === 'preparing' ? 'Preparing users and accounts…' : 'No points yet',
    ariaLabel: 'Throughput over ' + view.points.length + ' seconds' + (last ? ', last ' + fmtRate(last.rate) + ' per second against a target of ' + fmtRate(run.target_rate) : '')});
  lineChart(e.lat, {title: 'Latency', series: [
    {label: 'p50', cls: 'c-p50', points: s.p50},
    {label: 'p99', cls: 'c-p99', points: s.p99}],
  minX: s.minX, yFormat: fmtAxisMs,
  emptyText: run.status === 'preparing' ? 'Preparing users and accounts…' : 'No points yet',
  ariaLabel: 'Latency over ' + view.points.length + ' seconds' + (last ? ', last p50 ' + fmtMs(last.p50_ms) + ', p99 ' + fmtMs(last.p99_ms) : '')});

  e.summary.replaceChildren(summaryTable(run));
  e.errors.replaceChildren(errorsTable(run));
  e.verification.replaceChildren(verificationView(run));
  e.extra.replaceChildren(groupsTable(run) || '');
  e.config.replaceChildren(configList(run.config || {}));
}

function fmtAxisMs(v) {
  if (v >= 10000) return nf0.format(v / 1000) + ' s';
  return (v >= 10 ? nf0 : nf2).format(v);
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
    if (i === 2 && st === 'failed') cls = 'bad';
    if (i === 2 && st === 'stopped') cls = 'stopped';
    if (i === 3 && v && verdict(v) === false) cls = 'bad';
    if (i === 3 && !v && settled(run)) cls = 'skipped';
    return h('li', {class: 'step ' + cls, 'aria-current': i === idx ? 'step' : null},
      h('span', {class: 'step-name', text: s.name}),
      h('span', {class: 'step-time', text: parseTime(s.at) ? fmtTime(s.at) : i === idx ? 'now' : '—'}));
  }));
}

// renderProgress shows how far preparation got, when the run carries a progress: the service
// sends {step, users, users_total, accounts, accounts_total, deposits, deposits_total,
// fraction}; any other "<name>" with "<name>_total" is shown the same way.
function renderProgress(box, run) {
  const p = run.progress;
  if (run.status !== 'preparing' || !p || typeof p !== 'object') {
    box.hidden = true;
    return;
  }
  const order = ['users', 'accounts', 'deposits'];
  const items = Object.keys(p).filter((k) => k.endsWith('_total') && isNum(p[k]) && p[k] > 0)
    .map((k) => k.slice(0, -'_total'.length))
    .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))
    .map((name) => [name, isNum(p[name]) ? p[name] : 0, p[name + '_total']]);
  const bar = (id, label, done, total) => h('div', {class: 'progress-item'},
    h('label', {for: id}, label, h('strong', {text: total === 1 ? fmtPct(done) : fmtInt(done) + ' of ' + fmtInt(total)})),
    h('progress', {id, max: Math.max(1, total), value: Math.min(done, total)}));
  box.replaceChildren(
    h('h3', {}, 'Preparing', p.step ? h('span', {class: 'hint', text: ' — step: ' + p.step}) : null),
    isNum(p.fraction) ? bar('progress-overall', 'Overall: ', p.fraction, 1) : null,
    h('div', {class: 'progress-items'}, items.map(([name, done, total]) => bar('progress-' + name, humanize(name) + ' created: ', done, total))));
  box.hidden = false;
}

function runSeconds(run) {
  const a = parseTime(run.started_at);
  if (a == null) return null;
  const b = parseTime(run.ended_at) ?? (ACTIVE.has(run.status) ? Date.now() : null);
  return b == null ? null : (b - a) / 1000;
}

function renderKpis(dl, run) {
  const lat = run.latency_ms || {};
  const cfg = run.config || {};
  const secs = runSeconds(run);
  const kpi = (label, value, sub, cls) => h('div', {class: 'kpi ' + (cls || '')}, h('dt', {text: label}), h('dd', {}, value, sub ? h('span', {class: 'sub', text: sub}) : null));
  const rejected = isNum(run.rejected) ? run.rejected : null;
  dl.replaceChildren(
    kpi('Sent', fmtInt(run.sent), ACTIVE.has(run.status) && isNum(run.in_flight) ? fmtInt(run.in_flight) + ' in flight' : isNum(run.scheduled) ? 'of ' + fmtInt(run.scheduled) + ' scheduled' : null),
    kpi('OK', fmtInt(run.ok), run.sent ? fmtPct(run.ok / run.sent) : null, 'good'),
    kpi('Failed', fmtInt(run.failed), rejected != null ? fmtInt(rejected) + ' rejected by rules' : run.sent ? fmtPct(run.failed / run.sent) : null,
      run.failed - (rejected || 0) > 0 ? 'bad' : run.failed > 0 ? 'warn' : ''),
    kpi('Achieved rate', fmtRate(run.achieved_rate) + '/s', 'target ' + fmtRate(run.target_rate) + '/s', run.behind ? 'warn' : ''),
    kpi('p99 latency', fmtMs(lat.p99), 'p50 ' + fmtMs(lat.p50)),
    kpi('Elapsed', fmtSecs(secs), isNum(cfg.duration_s) ? 'of ' + fmtSecs(cfg.duration_s) : null));
}

function kvTable(rows, caption) {
  return h('table', {class: 'kv'}, caption ? h('caption', {class: 'sr-only', text: caption}) : null,
    h('tbody', {}, rows.filter(Boolean).map(([k, v, cls]) => h('tr', {class: cls || null}, h('th', {scope: 'row', text: k}), h('td', {class: 'num'}, v)))));
}

function summaryTable(run) {
  const lat = run.latency_ms || {};
  const lag = run.send_lag_ms || {};
  const late = isNum(run.late) ? run.late : null;
  return h('div', {},
    h('p', {class: 'hint', text: FINAL.has(run.status) ? 'Final figures for the run.' : 'So far; final when the run ends.'}),
    h('div', {class: 'summary-grid'},
      kvTable([
        ['Target rate', fmtRate(run.target_rate) + ' /s'],
        isNum(run.scheduled_rate) ? ['Scheduled rate', fmtRate(run.scheduled_rate) + ' /s'] : null,
        ['Achieved rate', fmtRate(run.achieved_rate) + ' /s', run.behind ? 'warn' : null],
        ['Running time', fmtSecs(runSeconds(run))],
        ['Sent', fmtInt(run.sent)],
        ['OK', fmtInt(run.ok)],
        ['Failed', fmtInt(run.failed), run.failed > (run.rejected || 0) ? 'bad' : null],
        isNum(run.rejected) ? ['Rejected by rules', fmtInt(run.rejected)] : null,
        isNum(run.error_rate) ? ['Error rate', fmtPct(run.error_rate), run.error_rate > 0 ? 'bad' : null] : null,
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
  const checks = [];
  const known = new Set(['ok', 'passed', 'problems', 'checked_at', 'accepted', 'expected_balance_total', 'actual_balance_total',
    'ambiguous', 'analytics_wait_ms']);
  const add = (key, ok, name, detail) => { known.add(key); checks.push({key, ok, name, detail}); };
  if ('balanced' in v) add('balanced', v.balanced, 'Processor reconciliation balanced', 'every currency');
  if ('balances_match' in v) {
    add('balances_match', v.balances_match, 'Run\'s balances add up', 'expected ' + fmtInt(v.expected_balance_total) + ', found ' + fmtInt(v.actual_balance_total));
  }
  if ('events_in_analytics' in v) {
    add('events_in_analytics', v.events_in_analytics == null ? null : v.events_in_analytics === v.accepted, 'Every transaction in analytics',
      v.events_in_analytics == null ? 'not checked' : fmtInt(v.events_in_analytics) + ' of ' + fmtInt(v.accepted) +
        (isNum(v.analytics_wait_ms) ? ' after ' + fmtMs(v.analytics_wait_ms) : ''));
  }
  if ('unresolved' in v) {
    add('unresolved', v.unresolved === 0, 'Every request resolved', fmtInt(v.ambiguous) + ' ambiguous, ' + fmtInt(v.unresolved) + ' unresolved');
  }
  for (const [k, c] of Object.entries(v)) {
    if (known.has(k)) continue;
    const r = checkOf(c);
    add(k, r, humanize(k), r == null ? (isNum(c) ? fmtInt(c) : typeof c === 'object' ? JSON.stringify(c) : String(c)) : '');
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

function configList(cfg) {
  const rows = Object.entries(cfg).map(([k, v]) => [humanize(k),
    v && typeof v === 'object' ? Object.entries(v).map(([a, b]) => a + ' ' + b).join(', ') : isNum(v) ? nf2.format(v) : String(v)]);
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
  if (!(await confirmDialog('Stop this run?', 'Run ' + shortId(id) + ' stops sending now and ends as stopped. Its results so far are kept.', 'Stop run'))) return;
  view.els.stop.disabled = true;
  try {
    await api('POST', '/runs/' + encodeURIComponent(id) + '/stop');
    flash(view, 'Stop requested: the run ends as stopped.', 'info');
    view.stopFlash = true;
  } catch (e) {
    flash(view, 'Stopping failed: ' + e.message, 'error');
    view.els.stop.disabled = false;
  }
}

function cleanupText(c) {
  return fmtInt(c.users) + ' users, ' + fmtInt(c.accounts) + ' accounts, ' + fmtInt(c.transactions) + ' transactions' +
    (isNum(c.activities) ? ', ' + fmtInt(c.activities) + ' activity items' : '') +
    (isNum(c.notifications) ? ', ' + fmtInt(c.notifications) + ' notifications' : '') +
    (c.analytics === true ? ' and the analytics rows' : '');
}

async function deleteData(view) {
  const id = view.run.id;
  if (!(await confirmDialog('Delete this run\'s test data?', 'The users, accounts and transactions that run ' + shortId(id) +
    ' created in the processor, and their read models, are deleted for good. The run\'s results stay.', 'Delete data'))) return;
  view.deleting = true;
  view.els.del.disabled = true;
  try {
    const r = (await api('DELETE', '/runs/' + encodeURIComponent(id) + '/data')) || {};
    view.flashed = true;
    flash(view, 'Deleted ' + cleanupText(r) + '.', 'success');
    const run = await api('GET', '/runs/' + encodeURIComponent(id));
    view.run = run;
    upsertRun(run);
  } catch (e) {
    flash(view, 'Deleting the data failed: ' + e.message, 'error');
  }
  view.deleting = false;
  if (view.run) renderRun(view);
}

// ---------- comparison ----------

async function pollCompare(gen, a, b) {
  const box = $('compare');
  box.replaceChildren(h('h2', {id: 'compare-title', text: 'Comparing…'}));
  box.hidden = false;
  const views = {els: null};
  while (gen === state.gen) {
    const began = Date.now();
    try {
      const [ra, ta, rb, tb] = await Promise.all([
        api('GET', '/runs/' + encodeURIComponent(a)), api('GET', '/runs/' + encodeURIComponent(a) + '/timeseries'),
        api('GET', '/runs/' + encodeURIComponent(b)), api('GET', '/runs/' + encodeURIComponent(b) + '/timeseries')]);
      if (gen !== state.gen) return;
      renderCompare(views, [ra, rb], [(ta && ta.points) || [], (tb && tb.points) || []]);
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

// Metrics compared: better says which way is good (1 higher, -1 lower, 0 neither).
const COMPARE_ROWS = [
  {label: 'Status', get: (r) => r.status, fmt: (v) => v, better: 0},
  {label: 'Started', get: (r) => r.started_at || r.created_at, fmt: (v) => fmtTime(v, true), better: 0, noDiff: true},
  {label: 'Users', get: (r) => r.config && r.config.users, fmt: fmtInt, better: 0, config: true},
  {label: 'Accounts per user', get: (r) => r.config && r.config.accounts_per_user, fmt: fmtInt, better: 0, config: true},
  {label: 'Duration (configured)', get: (r) => r.config && r.config.duration_s, fmt: fmtSecs, better: 0, config: true},
  {label: 'Ramp-up', get: (r) => r.config && r.config.ramp_up_s, fmt: fmtSecs, better: 0, config: true},
  {label: 'Mix', get: (r) => r.config && r.config.mix && Object.entries(r.config.mix).map(([k, v]) => k + ' ' + v).join(' · '), fmt: (v) => v || '—', better: 0, config: true},
  {label: 'Initial balance', get: (r) => r.config && r.config.initial_balance, fmt: fmtInt, better: 0, config: true},
  {label: 'Currency', get: (r) => r.config && r.config.currency, fmt: (v) => v || '—', better: 0, config: true},
  {label: 'Target rate /s', get: (r) => r.target_rate, fmt: fmtRate, better: 0, config: true},
  {label: 'Achieved rate /s', get: (r) => r.achieved_rate, fmt: fmtRate, better: 1},
  {label: 'Achieved / target', get: (r) => (isNum(r.achieved_rate) && r.target_rate ? r.achieved_rate / r.target_rate : null), fmt: fmtPct, better: 1},
  {label: 'Sent', get: (r) => r.sent, fmt: fmtInt, better: 0},
  {label: 'OK', get: (r) => r.ok, fmt: fmtInt, better: 0},
  {label: 'Failed', get: (r) => r.failed, fmt: fmtInt, better: -1},
  {label: 'Failure share', get: (r) => (r.sent ? r.failed / r.sent : null), fmt: fmtPct, better: -1},
  {label: 'Rejected by rules', get: (r) => r.rejected, fmt: fmtInt, better: 0},
  {label: 'Error rate (not rejections)', get: (r) => r.error_rate, fmt: fmtPct, better: -1},
  {label: 'Late sends', get: (r) => r.late, fmt: fmtInt, better: -1},
  {label: 'Latency p50', get: (r) => r.latency_ms && r.latency_ms.p50, fmt: fmtMs, better: -1},
  {label: 'Latency p90', get: (r) => r.latency_ms && r.latency_ms.p90, fmt: fmtMs, better: -1},
  {label: 'Latency p99', get: (r) => r.latency_ms && r.latency_ms.p99, fmt: fmtMs, better: -1},
  {label: 'Latency p99.9', get: (r) => r.latency_ms && r.latency_ms.p999, fmt: fmtMs, better: -1},
  {label: 'Latency max', get: (r) => r.latency_ms && r.latency_ms.max, fmt: fmtMs, better: -1},
  {label: 'Verification', get: (r) => verdict(r.verification) ?? (r.status === 'failed' ? null : 'pending'),
    fmt: (v) => (v === true ? '✓ passed' : v === false ? '✗ failed' : v === 'pending' ? '… pending' : '—'), better: 1},
];

function diffText(a, b, row) {
  if (!isNum(a) || !isNum(b)) return '';
  const d = b - a;
  if (d === 0) return '=';
  const sign = d > 0 ? '+' : '−';
  const abs = Math.abs(d);
  const val = row.fmt === fmtMs ? fmtMs(abs) : row.fmt === fmtPct ? nf1.format(abs * 100) + ' pt' : row.fmt === fmtSecs ? fmtSecs(abs) : (row.fmt === fmtRate ? fmtRate : fmtInt)(abs);
  const rel = a !== 0 && row.fmt !== fmtPct ? ' (' + sign + nf0.format(Math.abs(d / a) * 100) + ' %)' : '';
  return sign + val + rel;
}

function renderCompare(views, runs, points) {
  const box = $('compare');
  const [ra, rb] = runs;
  if (!views.els) {
    views.els = {
      table: h('div', {class: 'table-wrap'}),
      errors: h('div', {}),
      tp: chartFigure('compare-throughput', 'Throughput, sent per second (A vs B)'),
      lat: chartFigure('compare-latency', 'Latency p50 / p99 in ms (A vs B)'),
    };
    box.replaceChildren(
      h('div', {class: 'detail-head'},
        h('h2', {id: 'compare-title'}, 'Compare ', h('span', {class: 'tag a', text: 'A'}), h('code', {text: shortId(ra.id)}), ' with ', h('span', {class: 'tag b', text: 'B'}), h('code', {text: shortId(rb.id)})),
        h('div', {class: 'actions'},
          h('a', {class: 'button secondary', href: '#/compare/' + rb.id + '/' + ra.id, text: 'Swap A and B'}),
          h('a', {class: 'button secondary', href: '#/', text: 'Close comparison'}))),
      h('p', {class: 'hint', text: 'Differences are highlighted: green where B is better than A, red where it is worse, yellow where the setup differs. Time is seconds since each run started.'}),
      h('div', {class: 'charts'}, views.els.tp, views.els.lat),
      h('section', {class: 'panel', 'aria-labelledby': 'cmp-sum'}, h('h3', {id: 'cmp-sum', text: 'Summaries'}), views.els.table),
      h('section', {class: 'panel', 'aria-labelledby': 'cmp-err'}, h('h3', {id: 'cmp-err', text: 'Errors'}), views.els.errors));
  }
  const head = (tag, r) => h('th', {scope: 'col', class: 'num run-head'}, h('span', {class: 'tag ' + tag.toLowerCase(), text: tag}), h('a', {href: '#/runs/' + r.id}, h('code', {text: shortId(r.id)})));
  const rows = COMPARE_ROWS.map((row) => {
    const a = row.get(ra); const b = row.get(rb);
    const differ = !row.noDiff && (a ?? null) !== (b ?? null) && row.fmt(a) !== row.fmt(b);
    let ca = ''; let cb = '';
    if (differ && row.better !== 0 && isNum(a) && isNum(b)) {
      const bBetter = row.better > 0 ? b > a : b < a;
      ca = bBetter ? 'worse' : 'better'; cb = bBetter ? 'better' : 'worse';
    } else if (differ && row.better !== 0 && typeof a === 'boolean' && typeof b === 'boolean') {
      ca = a ? 'better' : 'worse'; cb = b ? 'better' : 'worse';
    } else if (differ) {
      ca = cb = 'changed';
    }
    return h('tr', {class: differ ? 'diff' : null},
      h('th', {scope: 'row', text: row.label}),
      h('td', {class: 'num ' + ca, text: row.fmt(a)}),
      h('td', {class: 'num ' + cb, text: row.fmt(b)}),
      h('td', {class: 'num delta', text: differ ? diffText(a, b, row) : ''}));
  });
  views.els.table.replaceChildren(h('table', {class: 'compare-table', id: 'compare-table'},
    h('caption', {class: 'sr-only', text: 'Run A and run B side by side'}),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Metric'}), head('A', ra), head('B', rb), h('th', {scope: 'col', class: 'num', text: 'B − A'}))),
    h('tbody', {}, rows)));

  const codes = [...new Set([...Object.keys(ra.errors || {}), ...Object.keys(rb.errors || {})])]
    .sort((x, y) => ((rb.errors || {})[y] || 0) + ((ra.errors || {})[y] || 0) - ((rb.errors || {})[x] || 0) - ((ra.errors || {})[x] || 0));
  views.els.errors.replaceChildren(!codes.length ? h('p', {class: 'empty ok-text', text: 'Neither run had errors.'})
    : h('table', {class: 'errors'},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Code'}), h('th', {scope: 'col', class: 'num'}, h('span', {class: 'tag a', text: 'A'})), h('th', {scope: 'col', class: 'num'}, h('span', {class: 'tag b', text: 'B'})))),
      h('tbody', {}, codes.map((c) => h('tr', {}, h('td', {}, h('code', {text: c})),
        h('td', {class: 'num', text: fmtInt((ra.errors || {})[c] || 0)}), h('td', {class: 'num', text: fmtInt((rb.errors || {})[c] || 0)}))))));

  const sa = seriesOf(ra, points[0]);
  const sb = seriesOf(rb, points[1]);
  const minX = Math.max(sa.minX, sb.minX);
  lineChart(views.els.tp, {title: 'Throughput', minX, yFormat: (v) => nf0.format(v), series: [
    {label: 'A target', cls: 'c-a', dashed: true, points: sa.target},
    {label: 'B target', cls: 'c-b', dashed: true, points: sb.target},
    {label: 'A achieved', cls: 'c-a', points: sa.achieved},
    {label: 'B achieved', cls: 'c-b', points: sb.achieved}],
  ariaLabel: 'Throughput of run A (' + points[0].length + ' seconds) and run B (' + points[1].length + ' seconds)'});
  lineChart(views.els.lat, {title: 'Latency', minX, yFormat: fmtAxisMs, series: [
    {label: 'A p50', cls: 'c-a', dashed: true, points: sa.p50},
    {label: 'B p50', cls: 'c-b', dashed: true, points: sb.p50},
    {label: 'A p99', cls: 'c-a', points: sa.p99},
    {label: 'B p99', cls: 'c-b', points: sb.p99}],
  ariaLabel: 'Latency percentiles of run A and run B'});
}

// ---------- new run form ----------

function readForm(form) {
  const body = {};
  const mix = {};
  for (const el of form.elements) {
    if (!el.name || el.tagName !== 'INPUT') continue;
    const raw = el.value.trim();
    if (raw === '') continue; // omitted: the API's default, or its "required" message
    let v = raw;
    if (el.name === 'seed' && /^\d+$/.test(raw)) {
      v = raw; // sent as digits, see api()
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
  return body;
}

function clearFormErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
  $('form-errors').hidden = true;
  $('form-errors').replaceChildren();
}

// showFormErrors puts each of the problem's errors[] next to its field; a field the form does
// not have (or a problem without errors[]) is shown above the buttons.
function showFormErrors(form, problem, status) {
  const loose = [];
  let first = null;
  for (const err of problem.errors || []) {
    const field = String(err.field || '');
    let name = field;
    while (name && !$('e-' + name)) name = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
    if (!name) {
      loose.push((field ? field + ': ' : '') + err.message);
      continue;
    }
    const p = $('e-' + name);
    p.textContent = (p.textContent ? p.textContent + ' ' : '') + (name !== field ? field + ' ' : '') + err.message;
    const wrap = form.querySelector('[data-field="' + name + '"]');
    if (wrap) wrap.classList.add('invalid');
    const input = $('f-' + name);
    const details = p.closest('details');
    if (details) details.open = true;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      first = first || input;
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

function updateMixSum(form) {
  const names = ['mix.transfer', 'mix.deposit', 'mix.withdrawal'];
  const vals = names.map((n) => Number(form.elements[n].value || 0));
  const sum = vals.reduce((a, b) => a + b, 0);
  const p = $('mix-sum');
  p.textContent = 'Sum: ' + nf2.format(sum) + (Math.abs(sum - 1) > 1e-9 ? ' — shares usually add up to 1' : '');
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
  const btn = $('start-run');
  btn.disabled = true;
  btn.textContent = 'Starting…';
  try {
    const run = await api('POST', '/runs', readForm(form));
    upsertRun(run);
    location.hash = '#/runs/' + run.id;
    refreshList();
  } catch (err) {
    if (err.status !== 401) showFormErrors(form, err.problem || {}, err.status);
  } finally {
    btn.disabled = false;
    btn.textContent = 'Start run';
  }
}

// fillForm puts a run's configuration into the form, to run it again or a variant of it.
function fillForm(cfg) {
  const form = $('run-form');
  clearFormErrors(form);
  for (const el of form.elements) {
    if (!el.name || el.tagName !== 'INPUT') continue;
    const v = el.name.startsWith('mix.') ? cfg.mix && cfg.mix[el.name.slice(4)] : cfg[el.name];
    if (v != null) el.value = String(v);
  }
  updateMixSum(form);
  $('advanced').open = ['max_amount', 'skew', 'connections', 'seed'].some((k) => cfg[k] != null);
  form.scrollIntoView({behavior: 'smooth', block: 'start'});
  $('f-users').focus({preventScroll: true});
}

// ---------- start ----------

function init() {
  const form = $('run-form');
  form.addEventListener('submit', submitRun);
  form.addEventListener('input', (e) => {
    if (e.target.name && e.target.name.startsWith('mix.')) updateMixSum(form);
  });
  form.addEventListener('reset', () => setTimeout(() => { clearFormErrors(form); updateMixSum(form); }));
  updateMixSum(form);

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token-input').value.trim();
    if (v) saveToken(v);
  });
  $('token-cancel').addEventListener('click', () => { $('token-panel').hidden = true; });
  $('token-change').addEventListener('click', openTokenPanel);
  $('refresh-btn').addEventListener('click', () => refreshList());
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
  route();
}

init();
