/*
 * The dashboard page: the run table (sort, filter, group), curves of the ticked runs with
 * smoothing, one run's summary, images and config, a diff of two configs, and the sweep views.
 * Plain script, no build step; every plot is a Vega-Lite spec built by the server (the same
 * builders as the PNG pictures) and drawn by vega-embed. Everything read from run directories
 * is inserted as text (esc), never as markup.
 */
'use strict';

const state = {
  index: null,
  sort: { key: null, dir: -1 },
  selected: new Set(),
  columns: null,
  curves: null,
  metric: null,
  detail: null,
  sweep: null,
};

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const fmt = (v) => {
  if (v === undefined || v === null) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 || Math.abs(v) < 1e-3 ? v.toPrecision(4) : v.toFixed(Math.abs(v) >= 100 ? 2 : 4);
  return String(v);
};

/**
 * vega, vega-lite and vega-embed (served from the installed packages; nothing comes from the
 * network), loaded on the first plot so that the table does not wait for 800 KB of script.
 */
let vegaLoaded = null;
function loadVega() {
  const add = (src) =>
    new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`${src} could not be loaded`));
      document.head.appendChild(s);
    });
  vegaLoaded ??= add('/vendor/vega.js').then(() => add('/vendor/vega-lite.js')).then(() => add('/vendor/vega-embed.js'));
  return vegaLoaded;
}

async function embed(el, spec) {
  await loadVega();
  return vegaEmbed(el, spec, { renderer: 'svg', actions: false });
}

async function getJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

// ----- values of a row ------------------------------------------------------------------------

const FIELDS = ['id', 'experiment', 'status', 'kind', 'parent', 'seconds', 'startedAt', 'endedAt'];

function valueOf(run, key) {
  if (FIELDS.includes(key)) return run[key];
  if (key in run.metrics) return run.metrics[key];
  if (key in run.config) return run.config[key];
  if (state.index && key in state.index.constants) return state.index.constants[key];
  return undefined;
}

function allKeys() {
  const ix = state.index;
  return [...FIELDS, ...ix.metricKeys, ...ix.configKeys, ...Object.keys(ix.constants).sort()];
}

// ----- filter: "key=value key>number key~text word" ------------------------------------------

function parseFilter(text) {
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((tok) => {
      const m = /^([^=<>!~]+?)(>=|<=|!=|=|>|<|~)(.*)$/.exec(tok);
      if (!m) return { word: tok.toLowerCase() };
      return { key: m[1], op: m[2], value: m[3] };
    });
}

function matches(run, terms) {
  for (const t of terms) {
    if (t.word !== undefined) {
      if (![run.id, run.experiment, run.status, run.kind].some((s) => String(s).toLowerCase().includes(t.word))) return false;
      continue;
    }
    const v = valueOf(run, t.key);
    if (v === undefined) return false;
    const n = Number(t.value);
    switch (t.op) {
      case '=': if (!(String(v) === t.value || (typeof v === 'number' && t.value !== '' && v === n))) return false; break;
      case '!=': if (String(v) === t.value || (typeof v === 'number' && v === n)) return false; break;
      case '~': if (!String(v).toLowerCase().includes(t.value.toLowerCase())) return false; break;
      case '>': if (!(typeof v === 'number' && v > n)) return false; break;
      case '<': if (!(typeof v === 'number' && v < n)) return false; break;
      case '>=': if (!(typeof v === 'number' && v >= n)) return false; break;
      case '<=': if (!(typeof v === 'number' && v <= n)) return false; break;
    }
  }
  return true;
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === undefined || a === null) return 1;
  if (b === undefined || b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

// ----- the table -------------------------------------------------------------------------------

const PREFERRED = ['test/elbo', 'test/iw-log-likelihood', 'test/loss', 'val/loss', 'best/value', 'train/loss'];

function defaultColumns(ix) {
  const metrics = PREFERRED.filter((k) => ix.metricKeys.includes(k)).slice(0, 4);
  const config = ix.differingKeys.filter((k) => k !== 'name' && k !== 'description').slice(0, 6);
  return ['id', 'experiment', 'status', 'step', ...metrics, ...config, 'seconds'];
}

function renderColumnPicker() {
  const box = $('#column-list');
  box.innerHTML = allKeys()
    .map((k) => `<label><input type="checkbox" value="${esc(k)}"${state.columns.includes(k) ? ' checked' : ''}> ${esc(k)}</label>`)
    .join('');
  box.onchange = (e) => {
    const k = e.target.value;
    state.columns = e.target.checked ? [...state.columns, k] : state.columns.filter((c) => c !== k);
    renderTable();
  };
  const group = $('#group');
  const current = group.value;
  group.innerHTML = '<option value="">(none)</option>' + ['experiment', 'status', 'kind', 'parent', ...state.index.configKeys].map((k) => `<option${k === current ? ' selected' : ''}>${esc(k)}</option>`).join('');
}

function cell(run, key) {
  const v = valueOf(run, key);
  if (key === 'id') {
    const warn = run.problems.length ? ` <span class="warn" title="${esc(run.problems.join('\n'))}">⚠</span>` : '';
    return `<td><a data-run="${esc(run.id)}">${esc(run.id)}</a>${warn}</td>`;
  }
  if (key === 'status') return `<td><span class="status status-${esc(v)}" title="${esc(run.reason ?? run.rawStatus ?? '')}">${esc(v)}</span></td>`;
  return `<td class="${typeof v === 'number' ? 'num' : ''}">${esc(fmt(v))}</td>`;
}

function renderTable() {
  const ix = state.index;
  const cols = state.columns;
  const terms = parseFilter($('#filter').value);
  let rows = ix.runs.filter((r) => matches(r, terms));
  if (state.sort.key) {
    const k = state.sort.key;
    rows = rows.slice().sort((a, b) => {
      const va = valueOf(a, k);
      const vb = valueOf(b, k);
      if (va === undefined || va === null) return 1;
      if (vb === undefined || vb === null) return -1;
      return state.sort.dir * compare(va, vb);
    });
  }
  $('#runs thead').innerHTML =
    '<tr><th title="draw curves">✓</th>' +
    cols.map((k) => `<th data-key="${esc(k)}" class="${state.sort.key === k ? (state.sort.dir > 0 ? 'sorted-asc' : 'sorted-desc') : ''}">${esc(k)}</th>`).join('') +
    '</tr>';
  const line = (r) =>
    `<tr class="${state.selected.has(r.id) ? 'selected' : ''}"><td><input type="checkbox" data-select="${esc(r.id)}"${state.selected.has(r.id) ? ' checked' : ''}></td>${cols.map((k) => cell(r, k)).join('')}</tr>`;
  const groupKey = $('#group').value;
  let html = '';
  if (groupKey) {
    const groups = new Map();
    for (const r of rows) {
      const g = fmt(valueOf(r, groupKey));
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(r);
    }
    for (const [g, rs] of groups) {
      let stat = '';
      if (state.sort.key) {
        const vs = rs.map((r) => valueOf(r, state.sort.key)).filter((v) => typeof v === 'number');
        if (vs.length) stat = `; ${state.sort.key}: mean ${fmt(vs.reduce((a, b) => a + b, 0) / vs.length)}, min ${fmt(Math.min(...vs))}, max ${fmt(Math.max(...vs))}`;
      }
      html += `<tr class="group"><td colspan="${cols.length + 1}">${esc(groupKey)} = ${esc(g)} (${rs.length} run${rs.length === 1 ? '' : 's'}${esc(stat)})</td></tr>`;
      html += rs.map(line).join('');
    }
  } else html = rows.map(line).join('');
  $('#runs tbody').innerHTML = html;
  $('#count').textContent = `${rows.length} of ${ix.runs.length} runs`;
}

// ----- curves ----------------------------------------------------------------------------------

/** TensorBoard's smoothing: an exponential moving average, debiased at the start. */
function smooth(values, weight) {
  const out = [];
  const last = new Map();
  for (const p of values) {
    const s = last.get(p.run) ?? { acc: 0, n: 0 };
    s.acc = s.acc * weight + (1 - weight) * p.raw;
    s.n += 1;
    last.set(p.run, s);
    out.push({ run: p.run, x: p.x, raw: p.raw, value: weight > 0 ? s.acc / (1 - weight ** s.n) : p.raw });
  }
  return out;
}

async function loadCurves() {
  const ids = [...state.selected];
  $('#diff-button').disabled = ids.length !== 2;
  if (ids.length === 0) {
    state.curves = null;
    $('#curves').innerHTML = '<p class="hint">Tick runs in the table to draw their curves.</p>';
    $('#curves-note').textContent = '';
    return;
  }
  const q = ids.map((id) => `id=${encodeURIComponent(id)}`).join('&') + (state.metric ? `&metric=${encodeURIComponent(state.metric)}` : '');
  state.curves = await getJson(`/api/curves?${q}`);
  state.metric = state.curves.metric;
  $('#metric').innerHTML = state.curves.keys.map((k) => `<option${k === state.metric ? ' selected' : ''}>${esc(k)}</option>`).join('');
  await drawCurves();
}

async function drawCurves() {
  const c = state.curves;
  if (!c) return;
  const w = Number($('#smoothing').value);
  const spec = JSON.parse(JSON.stringify(c.spec));
  spec.data.values = smooth(spec.data.values, w);
  await embed('#curves', spec);
  $('#curves-note').textContent = c.series
    .map((s) => `${s.id}: ${s.logged} values logged${s.shown < s.logged ? `, ${s.shown} bucket means drawn` : ''}${s.skipped ? `, ${s.skipped} unreadable lines skipped` : ''}${s.status === 'running' ? ' (running)' : ''}`)
    .join(' · ');
}

// ----- one run ---------------------------------------------------------------------------------

function kvTable(obj) {
  return `<table class="kv">${Object.entries(obj).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="${typeof v === 'number' ? 'num' : ''}">${esc(fmt(v))}</td></tr>`).join('')}</table>`;
}

async function showRun(id) {
  const r = await getJson(`/api/run?id=${encodeURIComponent(id)}`);
  state.detail = id;
  const problems = r.problems.length ? `<ul class="warn">${r.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : '';
  const images = r.images.length
    ? `<div class="images">${r.images.map((im) => `<figure><img src="${esc(im.url)}" alt="${esc(im.name)}"><figcaption>${esc(im.name)}</figcaption></figure>`).join('')}</div>`
    : '<p class="hint">no images</p>';
  $('#detail').innerHTML = `
    <h2>${esc(r.id)}</h2>
    <p><span class="status status-${esc(r.status)}">${esc(r.status)}</span> ${esc(r.kind)}${r.parent ? ` of ${esc(r.parent)}` : ''}${r.reason ? ` — ${esc(r.reason)}` : ''}</p>
    ${problems}
    <h3>Summary</h3>${Object.keys(r.metrics).length ? kvTable(r.metrics) : '<p class="hint">no metrics</p>'}
    ${r.summary ? `<details><summary>summary.json</summary><pre>${esc(JSON.stringify(r.summary, null, 2))}</pre></details>` : '<p class="hint">no summary.json</p>'}
    <h3>Images</h3>${images}
    <h3>Config</h3><details><summary>${Object.keys(r.config).length} keys</summary>${kvTable(r.config)}</details>`;
}

async function showDiff() {
  const [a, b] = [...state.selected];
  const [ra, rb] = await Promise.all([getJson(`/api/run?id=${encodeURIComponent(a)}`), getJson(`/api/run?id=${encodeURIComponent(b)}`)]);
  const keys = [...new Set([...Object.keys(ra.config), ...Object.keys(rb.config)])].sort();
  const differ = keys.filter((k) => JSON.stringify(ra.config[k]) !== JSON.stringify(rb.config[k]));
  $('#diff').innerHTML = `<h3>Config diff (${differ.length} of ${keys.length} keys differ)</h3>
    <table class="diff"><tr><th>key</th><th>${esc(a)}</th><th>${esc(b)}</th></tr>
    ${differ.map((k) => `<tr><td>${esc(k)}</td><td class="changed">${esc(fmt(ra.config[k]))}</td><td class="changed">${esc(fmt(rb.config[k]))}</td></tr>`).join('')}</table>`;
}

// ----- sweeps ----------------------------------------------------------------------------------

function renderSweepList() {
  $('#sweep-list tbody').innerHTML = state.index.sweeps
    .map((s) => `<tr><td><a data-sweep="${esc(s.id)}">${esc(s.name)}</a> <span class="note">${esc(s.id)}</span></td><td>${esc(s.method)}</td><td>${esc(s.metric.name)} (${esc(s.metric.goal)})</td><td class="num">${s.trials}</td><td class="num">${s.completed}</td><td class="num">${s.pruned}</td></tr>`)
    .join('') || '<tr><td colspan="6" class="hint">no sweeps in this directory</td></tr>';
}

async function showSweep(id) {
  const s = await getJson(`/api/sweep?id=${encodeURIComponent(id)}`);
  state.sweep = id;
  const trials = s.trials
    .map((t) => `<tr><td class="num">${t.number}</td><td><span class="status status-${esc(t.status === 'completed' ? 'finished' : t.status)}">${esc(t.status)}</span></td>${s.parameters.map((p) => `<td>${esc(fmt(t.params[p]))}</td>`).join('')}<td class="num">${esc(fmt(t.value))}</td><td>${t.runId ? `<a data-run="${esc(t.runId)}">${esc(t.runId)}</a>` : '–'}</td></tr>`)
    .join('');
  $('#sweep').innerHTML = `<h2>${esc(s.name)} <span class="note">${esc(s.method)}, ${esc(s.metric.name)} (${esc(s.metric.goal)})</span></h2>
    <div id="sweep-scatter" class="chart"></div><div id="sweep-parallel" class="chart"></div>
    <p id="sweep-axes" class="note">${esc(s.axes.note)}</p>
    <h3>Trials</h3><table><tr><th>trial</th><th>status</th>${s.parameters.map((p) => `<th>${esc(p)}</th>`).join('')}<th>${esc(s.metric.name)}</th><th>run</th></tr>${trials}</table>`;
  await embed('#sweep-scatter', s.specs.metricVsParameters);
  await embed('#sweep-parallel', s.specs.parallelCoordinates);
}

// ----- navigation, loading, live updates -------------------------------------------------------

function showView(name) {
  $('#runs-view').hidden = name !== 'runs';
  $('#sweeps-view').hidden = name !== 'sweeps';
  $('#tab-runs').classList.toggle('active', name === 'runs');
  $('#tab-sweeps').classList.toggle('active', name === 'sweeps');
}

async function loadIndex() {
  state.index = await getJson('/api/index');
  const ix = state.index;
  $('#root').textContent = ix.root;
  const bad = [...ix.problems, ...ix.runs.filter((r) => r.problems.length).map((r) => `${r.id}: ${r.problems.join('; ')}`)];
  $('#problems').innerHTML = bad.length ? `<b>${bad.length} problem${bad.length === 1 ? '' : 's'} reading the runs</b> (runs kept and marked):<ul>${bad.slice(0, 20).map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : '';
  for (const id of [...state.selected]) if (!ix.runs.some((r) => r.id === id)) state.selected.delete(id);
  if (!state.columns) state.columns = defaultColumns(ix);
  renderColumnPicker();
  renderTable();
  renderSweepList();
}

function listen() {
  if (!window.EventSource) return;
  const es = new EventSource('/api/events');
  es.onopen = () => {
    $('#live').textContent = '● live';
    $('#live').classList.add('on');
  };
  es.onerror = () => {
    $('#live').textContent = '○ reconnecting';
    $('#live').classList.remove('on');
  };
  es.addEventListener('index', async (e) => {
    const { changed } = JSON.parse(e.data);
    await loadIndex();
    $('#live').textContent = `● live (updated ${new Date().toLocaleTimeString()})`;
    if (changed.some((id) => state.selected.has(id))) await loadCurves();
    if (state.detail && changed.includes(state.detail)) await showRun(state.detail);
  });
}

function wire() {
  $('#filter').addEventListener('input', renderTable);
  $('#group').addEventListener('change', renderTable);
  $('#runs thead').addEventListener('click', (e) => {
    const k = e.target.closest('th')?.dataset.key;
    if (!k) return;
    state.sort = state.sort.key === k ? { key: k, dir: -state.sort.dir } : { key: k, dir: 1 };
    renderTable();
  });
  document.body.addEventListener('click', (e) => {
    const run = e.target.closest('[data-run]');
    if (run) {
      e.preventDefault();
      if (!$('#sweeps-view').hidden) location.hash = '#runs';
      showRun(run.dataset.run).catch(report);
    }
    const sweep = e.target.closest('[data-sweep]');
    if (sweep) showSweep(sweep.dataset.sweep).catch(report);
  });
  $('#runs tbody').addEventListener('change', (e) => {
    const id = e.target.dataset.select;
    if (!id) return;
    if (e.target.checked) state.selected.add(id);
    else state.selected.delete(id);
    e.target.closest('tr').classList.toggle('selected', e.target.checked);
    loadCurves().catch(report);
  });
  $('#metric').addEventListener('change', (e) => {
    state.metric = e.target.value;
    loadCurves().catch(report);
  });
  $('#smoothing').addEventListener('input', (e) => {
    $('#smoothing-value').textContent = Number(e.target.value).toFixed(2);
    drawCurves().catch(report);
  });
  $('#diff-button').addEventListener('click', () => showDiff().catch(report));
  window.addEventListener('hashchange', () => showView(location.hash === '#sweeps' ? 'sweeps' : 'runs'));
}

function report(e) {
  $('#problems').insertAdjacentHTML('beforeend', `<p class="warn">${esc(e.message ?? e)}</p>`);
}

wire();
showView(location.hash === '#sweeps' ? 'sweeps' : 'runs');
loadIndex()
  .then(() => {
    // read by the browser tests and the benchmark: the table is on the page
    window.tableReadyMs = performance.now();
    document.body.dataset.state = 'ready';
    listen();
    loadVega().catch(report);
  })
  .catch(report);
