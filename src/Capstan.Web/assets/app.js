// The dashboard's only script: the deploy page follows the running deploy through server-sent events, and every
// time shows how long ago it was (the exact time stays on hover).
// It builds elements with textContent only, so no value from the server is ever parsed as HTML.
'use strict';

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function row(cells, attrs) {
  const tr = el('tr', null, attrs);
  for (const c of cells) tr.appendChild(el('td', c));
  return tr;
}

function table(headers, rows, attrs) {
  const t = el('table', null, attrs);
  const head = el('tr');
  for (const h of headers) head.appendChild(el('th', h));
  t.appendChild(el('thead')).appendChild(head);
  const body = t.appendChild(el('tbody'));
  for (const r of rows) body.appendChild(r);
  return t;
}

const stageOrder = { Testservers: 0, Canaries: 1 };

// How long ago (or how soon) a time is, as people say it: "just now", "3 min ago", "in 2 h".
function ago(iso) {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const abs = Math.abs(seconds);
  const text = abs < 10 ? null
    : abs < 60 ? `${abs} s`
    : abs < 3600 ? `${Math.round(abs / 60)} min`
    : abs < 86400 ? `${Math.round(abs / 3600)} h`
    : `${Math.round(abs / 86400)} d`;
  if (text === null) return 'just now';
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

// Every <time datetime> under root shows how long ago it was; the exact time stays in its title.
function relativeTimes(root) {
  for (const t of root.querySelectorAll('time[datetime]')) {
    if (!Number.isNaN(Date.parse(t.getAttribute('datetime')))) t.textContent = ago(t.getAttribute('datetime'));
  }
}

// A <time> element for a time from the server (ISO 8601), as the server renders one.
function timeEl(iso) {
  const at = new Date(Date.parse(iso));
  if (Number.isNaN(at.getTime())) return document.createTextNode(String(iso ?? ''));
  const exact = at.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  return el('time', ago(iso), { datetime: at.toISOString().slice(0, 19) + 'Z', title: exact });
}

// A duration rounded as people read it (the server's Pages.Duration): 0.35 s, 12 s, 1 m 12 s, 2 h 5 m.
function duration(seconds) {
  if (seconds < 10) return `${Math.round(seconds * 100) / 100} s`;
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} m ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} m`;
}

// A deploy's phases (build, push, plan, pre-pull, each stage, gate and pause) with their seconds, or nothing.
function phases(id, list) {
  if (!list || list.length === 0) return [];
  return [el('p', 'Phases: ' + list.map(p => `${p.name} ${duration(Number(p.seconds))}`).join(', '), { id, class: 'phases' })];
}

// A deploy's timeline: the server draws it as SVG (every text in it encoded); the page puts it in a figure.
function timeline(svg) {
  if (!svg) return [];
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  const figure = el('figure', null, { class: 'timeline' });
  figure.appendChild(document.importNode(doc.documentElement, true));
  return [figure];
}

function renderDeploy(container, view) {
  const parts = [];
  const running = view.running;
  if (running) {
    const p = el('p', null, { id: 'deploy-state', 'data-state': 'running' });
    p.append('Deploy ', el('strong', running.planId), ` by ${running.actor}, started `, timeEl(running.started), '.');
    parts.push(p);
    if (running.reason) parts.push(el('p', running.reason, { id: 'deploy-reason' }));
    parts.push(...phases('deploy-phases', running.phases));
    const actions = (running.plan || []).slice().sort((a, b) =>
      ((stageOrder[a.stage] ?? 2) - (stageOrder[b.stage] ?? 2)) || a.release.localeCompare(b.release));
    const done = actions.filter(a => a.state === 'Done' || a.state === 'Unchanged').length;
    const progress = el('p');
    progress.append(el('progress', null, { max: actions.length, value: done }), ` ${done} of ${actions.length} releases done`);
    parts.push(progress);
    // Stages x datacenters: how many of each cell's releases are done.
    const dcs = [...new Set(actions.map(a => a.release.split('/')[0]))].sort();
    const stages = [...new Set(actions.map(a => a.stage))];
    parts.push(table(['Stage', ...dcs], stages.map(stage => {
      const tr = el('tr');
      tr.appendChild(el('th', stage, { scope: 'row' }));
      for (const dc of dcs) {
        const cell = actions.filter(a => a.stage === stage && a.release.startsWith(dc + '/'));
        const finished = cell.filter(a => a.state === 'Done' || a.state === 'Unchanged').length;
        tr.appendChild(el('td', cell.length === 0 ? '-' : `${finished}/${cell.length} done`));
      }
      return tr;
    }), { class: 'grid', id: 'stage-grid' }));
    parts.push(...timeline(running.timeline));
    parts.push(table(['Stage', 'Release', 'State', 'Ready', 'Problem', 'Events'], actions.map(a =>
      row([a.stage, a.release, a.state, a.desired == null ? '' : `${a.ready ?? 0}/${a.desired}`, a.problem || '', (a.events || []).join('\n')],
        { class: `state-${String(a.state).toLowerCase()}` })), { class: 'stages' }));
  } else {
    parts.push(el('p', 'No deploy is running.', { id: 'deploy-state', 'data-state': 'idle' }));
  }
  const last = view.last;
  if (last) {
    parts.push(el('h2', 'Last deploy'));
    const p = el('p', null, { id: 'last-deploy' });
    p.append(`${last.planId} by ${last.actor}: `, el('strong', last.succeeded ? 'succeeded' : 'failed', { class: last.succeeded ? 'ok' : 'bad' }),
      ', finished ', timeEl(last.finished), `. ${last.reason || ''} ${last.cause || ''}`);
    parts.push(p);
    parts.push(...phases('last-phases', last.phases));
    parts.push(...timeline(last.timeline));
    parts.push(table(['Release', 'Result', 'Revision', 'Detail'], (last.releases || []).map(r =>
      row([r.release, r.result, r.revision ?? '', r.detail || '']))));
  }
  container.replaceChildren(...parts);
}

/* A running job's log: new lines as they are written, then how it ended. */
function followJob(job) {
  const log = document.getElementById('job-log');
  const state = document.getElementById('job-state');
  const live = document.getElementById('job-live');
  // The page already holds the log so far; the stream starts from the beginning, so it is replaced by the first event.
  let first = true;
  const source = new EventSource(job.dataset.events);
  source.addEventListener('log', e => {
    const lines = JSON.parse(e.data);
    if (first) { log.textContent = ''; first = false; }
    log.textContent += (log.textContent ? '\n' : '') + lines.join('\n');
    log.scrollTop = log.scrollHeight;
  });
  source.addEventListener('end', e => {
    source.close();
    const end = JSON.parse(e.data);
    state.textContent = end.state;
    state.dataset.state = end.state;
    state.className = end.state === 'succeeded' ? 'ok' : 'bad';
    if (live) live.textContent = end.outcome || '';
    const cancel = document.getElementById('cancel-job');
    if (cancel) cancel.remove();
  });
  source.addEventListener('error', () => { if (live && !state.dataset.state.match(/succeeded|failed|cancelled|interrupted/)) live.textContent = 'Reconnecting…'; });
}

document.addEventListener('DOMContentLoaded', () => {
  relativeTimes(document);
  const job = document.getElementById('job');
  if (job && job.dataset.events && window.EventSource) {
    followJob(job);
  }

  const deploy = document.getElementById('deploy');
  if (deploy && deploy.dataset.events && window.EventSource) {
    const live = document.getElementById('live');
    const source = new EventSource(deploy.dataset.events);
    source.addEventListener('deploy', e => {
      renderDeploy(deploy, JSON.parse(e.data));
      if (live) live.textContent = `Updates live (last ${new Date().toLocaleTimeString()}).`;
    });
    source.addEventListener('error', () => { if (live) live.textContent = 'Reconnecting…'; });
  }
});
