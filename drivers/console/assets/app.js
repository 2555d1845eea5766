// The Keel console's pages: plain DOM, no framework. Every text from the server goes
// into the page as a text node; only the two SVG drawings, which the server builds
// with every job text escaped, are parsed (as strict XML) and inserted.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const main = $('main');
  const TOKEN_KEY = 'keel-console-token';
  let skew = 0; // server clock minus local clock, in ms
  let headline = null;

  // --- building blocks -------------------------------------------------------

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function serverNow() { return Date.now() + skew; }
  function setNow(now) { if (now) skew = now - Date.now(); }

  function pad(n) { return String(n).padStart(2, '0'); }
  function absolute(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function duration(ms) {
    if (ms < 0) ms = 0;
    if (ms < 1000) return `${Math.round(ms)}ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }
  /** A <time> that keeps saying how long ago `ms` was. */
  function ago(ms) {
    if (ms === null || ms === undefined) return '–';
    const t = el('time', { datetime: new Date(ms).toISOString(), 'data-at': ms, title: absolute(ms) });
    t.textContent = `${duration(serverNow() - ms)} ago`;
    return t;
  }
  function refreshAges() {
    for (const t of document.querySelectorAll('time[data-at]')) {
      t.textContent = `${duration(serverNow() - Number(t.dataset.at))} ago`;
    }
    for (const s of document.querySelectorAll('[data-since]')) {
      s.textContent = `${duration(serverNow() - Number(s.dataset.since))} so far`;
    }
  }
  function stateBadge(state) {
    return el('span', { class: `state state-${state}`, 'data-state': state }, state.replace('_', ' '));
  }
  function table(id, caption, headers, rows) {
    return el('table', { id },
      el('caption', {}, caption),
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows));
  }
  function svgFrom(text) {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    if (doc.getElementsByTagName('parsererror').length) return el('p', {}, 'the drawing could not be read');
    return document.importNode(doc.documentElement, true);
  }
  function showError(where, error) {
    where.replaceChildren(el('p', { class: 'error', role: 'alert' }, String(error.message || error)));
  }

  // --- talking to the server -------------------------------------------------

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  async function api(path, options) {
    const response = await fetch(path, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    if (body.now) setNow(body.now);
    return body;
  }
  function post(path) {
    return api(path, { method: 'POST', headers: { Authorization: `Bearer ${token()}` } });
  }

  /** Runs `load` now, or once more after the run in progress: never two at a time. */
  function refresher(load) {
    let running = false;
    let again = false;
    const run = async () => {
      if (running) { again = true; return; }
      running = true;
      try { await load(); } finally {
        running = false;
        if (again) { again = false; run(); }
      }
    };
    return run;
  }

  function connectLive(onUpdate) {
    const status = $('live');
    const events = new EventSource('/api/events');
    events.addEventListener('update', (event) => {
      const update = JSON.parse(event.data);
      setNow(update.now);
      renderHeadline(update.headline);
      status.textContent = 'live';
      status.dataset.seq = update.seq;
      onUpdate(update);
    });
    events.onerror = () => {
      status.textContent = events.readyState === EventSource.CLOSED
        ? 'live updates unavailable (too many open pages, or the server stopped); reload to retry'
        : 'reconnecting…';
    };
  }

  function renderHeadline(h) {
    headline = h;
    $('m-queued').textContent = h.queued;
    $('m-throughput').textContent = `${h.finished_per_s} (last ${h.window_s}s)`;
    $('m-claim').textContent = h.claims ? `${h.claim_p50 || '–'} / ${h.claim_p99 || '–'}` : 'no claims yet';
    $('m-jobs').textContent = h.jobs_active;
    $('m-workers').textContent = h.workers_live;
    const lanes = h.lanes.map(([lane, n]) => `${lane}: ${n}`).join(' · ');
    $('m-lanes').textContent = `${h.leader ? '' : 'not leading: nothing live. '}` +
      (lanes ? `Queued per lane: ${lanes}` : 'No task is queued.');
    document.body.classList.toggle('writable', h.writable);
  }

  function setupToken() {
    const form = $('token-form');
    const state = $('token-state');
    state.textContent = token() ? 'token set' : '';
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const value = $('token').value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $('token').value = '';
      try {
        await post('/api/auth');
        state.textContent = 'token accepted';
      } catch (e) {
        sessionStorage.removeItem(TOKEN_KEY);
        state.textContent = `refused: ${e.message}`;
      }
    });
    $('token-forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      state.textContent = 'token forgotten';
    });
  }

  // --- jobs ------------------------------------------------------------------

  const STATES = ['active', 'finished', 'queued', 'blocked', 'running', 'succeeded', 'failed',
    'cancelled', 'deadline_exceeded'];

  function select(name, label, values, current) {
    const options = [el('option', { value: '' }, 'any')];
    for (const v of new Set([...values, ...(current ? [current] : [])])) {
      options.push(el('option', { value: v, selected: v === current }, v));
    }
    return [el('label', { for: `f-${name}` }, label), el('select', { id: `f-${name}`, name }, options)];
  }

  function jobsPage() {
    const params = new URLSearchParams(location.search);
    const form = el('form', { id: 'filters', role: 'search' });
    const summary = el('p', { id: 'summary', role: 'status' });
    const holder = el('div', { class: 'scroll' });
    main.replaceChildren(el('h1', {}, 'Jobs'), form, summary, holder);
    let lists = { tenants: [], lanes: [] };

    function drawForm() {
      const search = el('input', { id: 'f-q', name: 'q', type: 'search', value: params.get('q') || '',
        placeholder: 'name or id', maxlength: 256 });
      form.replaceChildren(
        ...select('state', 'State', STATES, params.get('state')),
        ...select('tenant', 'Tenant', lists.tenants, params.get('tenant')),
        ...select('lane', 'Lane', lists.lanes, params.get('lane')),
        el('label', { for: 'f-q' }, 'Search'), search,
        el('button', { type: 'submit' }, 'Filter'));
    }
    function query() {
      const q = new URLSearchParams();
      for (const k of ['state', 'tenant', 'lane', 'q']) if (params.get(k)) q.set(k, params.get(k));
      return q.toString();
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      for (const k of ['state', 'tenant', 'lane', 'q']) {
        const v = form.elements[k].value.trim();
        if (v) params.set(k, v); else params.delete(k);
      }
      history.replaceState(null, '', query() ? `/?${query()}` : '/');
      refresh();
    });
    form.addEventListener('change', (event) => {
      if (event.target.tagName === 'SELECT') form.requestSubmit();
    });

    const refresh = refresher(async () => {
      try {
        const list = await api(`/api/jobs?${query()}`);
        const changed = list.tenants.join() !== lists.tenants.join() || list.lanes.join() !== lists.lanes.join();
        lists = list;
        if (changed || !form.firstChild) drawForm();
        summary.textContent = `Showing ${list.jobs.length} of ${list.matched} matching jobs (${list.total} held).`;
        holder.replaceChildren(table('jobs', 'Jobs, newest first',
          ['Id', 'Name', 'Tenant', 'Lane', 'State', 'Tasks done', 'Submitted', 'Ran'],
          list.jobs.map(jobRow)));
      } catch (e) { showError(holder, e); }
    });
    drawForm();
    refresh();
    connectLive((u) => { if (u.jobs === null || u.jobs.length) refresh(); });
  }

  function counts(job) {
    return job.counts.map(([s, n]) => `${n} ${s}`).join(', ');
  }
  /** How long the job ran, still counting while it runs. */
  function ran(job) {
    if (job.finished_at !== null) return duration(job.finished_at - job.submitted_at);
    const span = el('span', { 'data-since': job.submitted_at });
    span.textContent = `${duration(serverNow() - job.submitted_at)} so far`;
    return span;
  }
  function jobRow(job) {
    const link = `/jobs/${job.id}`;
    return el('tr', { 'data-job-id': job.id },
      el('td', {}, el('a', { href: link }, String(job.id))),
      el('td', { class: 'name' }, el('a', { href: link }, job.name)),
      el('td', {}, job.tenant), el('td', {}, job.lane),
      el('td', { class: 'state-cell' }, stateBadge(job.state)),
      el('td', {}, `${job.done}/${job.tasks}`, el('br'), el('small', {}, counts(job))),
      el('td', {}, ago(job.submitted_at)),
      el('td', {}, ran(job)));
  }

  // --- one job ---------------------------------------------------------------

  function jobPage(id) {
    const view = el('div', { id: 'job' });
    // Outlives redraws, so the answer to a click stays on screen.
    const note = el('span', { role: 'status', id: 'action-state' });
    main.replaceChildren(view);
    const refresh = refresher(async () => {
      try { drawJob(view, await api(`/api/jobs/${id}`), refresh, note); } catch (e) { showError(view, e); }
    });
    refresh();
    connectLive((u) => { if (u.jobs === null || u.jobs.includes(id)) refresh(); });
  }

  function actions(d, refresh, note) {
    const job = d.job;
    const out = el('p', { class: 'actions' });
    if (!d.writable) {
      out.append('Read-only: the coordinator has no token file, so cancel and retry are off.');
      return out;
    }
    const finished = job.finished_at !== null;
    const failedPart = job.counts.some(([s]) => ['failed', 'skipped', 'cancelled'].includes(s));
    const act = (label) => el('button', { type: 'button', id: `do-${label.toLowerCase()}` }, label);
    if (!finished) {
      const b = act('Cancel');
      b.addEventListener('click', async () => {
        if (!token()) { note.textContent = 'enter a client token first'; return; }
        if (!confirm(`Cancel job ${job.id} (${job.name})?`)) return;
        try { await post(`/api/jobs/${job.id}/cancel`); note.textContent = 'cancelled'; refresh(); } catch (e) { note.textContent = e.message; }
      });
      out.append(b);
    } else if (failedPart) {
      const b = act('Retry');
      b.addEventListener('click', async () => {
        if (!token()) { note.textContent = 'enter a client token first'; return; }
        try {
          const r = await post(`/api/jobs/${job.id}/retry`);
          note.replaceChildren(r.duplicate ? 'already retried as ' : 'retrying as ',
            el('a', { href: `/jobs/${r.job}` }, `job ${r.job}`), ` (${r.tasks} tasks)`);
        } catch (e) { note.textContent = e.message; }
      });
      out.append(b, ' runs the failed, cancelled and skipped tasks again as a new job. ');
    }
    out.append(note);
    return out;
  }

  // A task's output: a preview of its text (never interpreted as markup) and the whole
  // of it as a download; binary outputs only as the download.
  function outputCell(jobId, t) {
    if (!t.output) return '';
    const o = t.output;
    if (o.size === 0) return 'empty';
    const link = el('a', { href: `/api/jobs/${jobId}/tasks/${t.id}/output`, download: '' },
      `${o.size} bytes`);
    if (o.text === null) return el('span', {}, 'binary, ', link);
    return el('span', {}, el('code', { class: 'preview' }, o.text + (o.whole ? '' : '…')), ' ', link);
  }

  function drawJob(view, d, refresh, note) {
    const job = d.job;
    document.title = `Job ${job.id}: ${job.name} · Keel`;
    const dl = el('dl', { class: 'facts' });
    for (const [k, v] of [['State', stateBadge(job.state)], ['Tenant', job.tenant], ['Lane', job.lane],
      ['Tasks', `${job.done}/${job.tasks} done${job.counts.length ? ` (${counts(job)})` : ''}`],
      ['Submitted', ago(job.submitted_at)], ['Ran', ran(job)],
      ['Retry of', job.retry_of === null ? null : el('a', { href: `/jobs/${job.retry_of}` }, `job ${job.retry_of}`)]]) {
      if (v !== null) dl.append(el('div', {}, el('dt', {}, k), el('dd', {}, v)));
    }
    const graph = el('div', { class: 'scroll', id: 'graph' },
      d.dag_svg ? svgFrom(d.dag_svg) : el('p', {}, `The graph is drawn for jobs of up to 200 tasks; this one has ${d.tasks_total}.`));
    const taskRows = d.tasks.map((t) => el('tr', { 'data-task': t.key, 'data-state': t.state },
      el('th', { scope: 'row' }, t.key), el('td', {}, String(t.id)), el('td', {}, stateBadge(t.state)),
      el('td', {}, String(t.attempt)), el('td', {}, String(t.failures)), el('td', {}, String(t.losses)),
      el('td', {}, t.upstream.length ? `${t.needs} of ${t.upstream.join(', ')}` : '–'),
      el('td', {}, t.detail, t.until === null ? null : ` ${absolute(t.until)}`),
      el('td', { class: 'error-text' }, t.error || ''),
      el('td', { class: 'output' }, outputCell(job.id, t))));
    const attemptRows = d.attempts.map((a) => el('tr', {},
      el('td', {}, a.key), el('td', {}, String(a.attempt)), el('td', {}, a.worker),
      el('td', {}, ago(a.started_at)),
      el('td', {}, duration((a.ended_at ?? serverNow()) - a.started_at)),
      el('td', { class: a.end && a.end.startsWith('failed') ? 'error-text' : '' }, a.end ?? 'running')));
    view.replaceChildren(
      el('h1', {}, `Job ${job.id}: `, el('span', { class: 'name' }, job.name)),
      dl, actions(d, refresh, note),
      el('section', { 'aria-labelledby': 'h-graph' }, el('h2', { id: 'h-graph' }, 'Graph'), graph),
      el('section', { 'aria-labelledby': 'h-tasks' }, el('h2', { id: 'h-tasks' }, 'Tasks'),
        el('div', { class: 'scroll' }, table('tasks', `Showing ${d.tasks.length} of ${d.tasks_total} tasks`,
          ['Task', 'Id', 'State', 'Attempt', 'Failures', 'Losses', 'Needs', 'Detail', 'Last error', 'Output'], taskRows))),
      el('section', { 'aria-labelledby': 'h-attempts' }, el('h2', { id: 'h-attempts' }, 'Attempts'),
        el('div', { class: 'scroll', id: 'timeline' }, d.timeline_svg ? svgFrom(d.timeline_svg) : el('p', {}, 'No attempt has started yet.')),
        el('div', { class: 'scroll' }, table('attempts', `Showing the latest ${d.attempts.length} of ${d.attempts_total} attempts`,
          ['Task', 'Attempt', 'Worker', 'Started', 'Took', 'End'], attemptRows))));
  }

  // --- workers ---------------------------------------------------------------

  function workersPage() {
    const holder = el('div', { class: 'scroll' });
    const summary = el('p', { role: 'status' });
    main.replaceChildren(el('h1', {}, 'Workers'), summary, holder);
    const refresh = refresher(async () => {
      try {
        const list = await api('/api/workers');
        summary.textContent = `Showing ${list.workers.length} of ${list.total} workers.`;
        holder.replaceChildren(table('workers', 'Registered workers',
          ['Worker', 'Instance', 'Status', 'Lanes', 'Capabilities', 'Running', 'Leases', 'Blacklisted until', 'Last heard'],
          list.workers.map(workerRow)));
      } catch (e) { showError(holder, e); }
    });
    refresh();
    connectLive((u) => { if (u.workers) refresh(); });
  }

  function workerRow(w) {
    const leases = w.leases.map(([job, task, key]) => el('a', { href: `/jobs/${job}`, title: `task ${task}` }, `${key} (job ${job})`));
    const named = leases.flatMap((a, i) => (i ? [', ', a] : [a]));
    if (w.lease_count > w.leases.length) named.push(` and ${w.lease_count - w.leases.length} more`);
    return el('tr', { 'data-worker': w.id },
      el('th', { scope: 'row' }, w.id), el('td', {}, String(w.instance)),
      el('td', {}, stateBadge(w.status)), el('td', {}, w.lanes.join(', ')),
      el('td', {}, w.capabilities.join(', ') || '–'),
      el('td', {}, `${w.lease_count}/${w.max_concurrency}` + (w.grants ? ` (+${w.grants} offered)` : '')),
      el('td', {}, named.length ? named : '–'),
      el('td', {}, w.blacklisted_until === null ? '–' : absolute(w.blacklisted_until)),
      el('td', {}, ago(w.last_seen)));
  }

  // --- start -----------------------------------------------------------------

  function start() {
    setupToken();
    const path = location.pathname;
    const job = /^\/jobs\/(\d{1,20})$/.exec(path);
    for (const a of document.querySelectorAll('[data-nav]')) {
      const here = (a.dataset.nav === 'workers') === (path === '/workers') && !job;
      if (here) a.setAttribute('aria-current', 'page');
    }
    if (job) jobPage(Number(job[1]));
    else if (path === '/workers') workersPage();
    else jobsPage();
    setInterval(refreshAges, 1000);
  }
  start();
})();
