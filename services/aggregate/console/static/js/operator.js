// The operator's page: each service's readiness and what is failing, consumer lag, intake and rejection
// rates, from the services' own /health/ready and /metrics, and the runbook entry for what fails.
import { serviceUrl } from './api.js';
import { el, clear, $, say, table, number } from './dom.js';
import { shell } from './shell.js';

const SERVICES = [['ingest', 'ingest_health'], ['validate', 'validate'], ['aggregate', 'aggregate']];
const POLL_MS = 2000;
let runbook = { entries: [] };
let previous = null;

/** Prometheus text format: [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

async function probe(name, key) {
  const base = await serviceUrl(key);
  const result = { name, base: base || location.origin, ready: false, failing: [], checks: {}, metrics: [], answered: false };
  try {
    const response = await fetch(`${base}/health/ready`, { credentials: 'omit', cache: 'no-store' });
    const body = await response.json();
    result.answered = true;
    result.ready = response.ok;
    result.failing = body.failing ?? [];
    result.checks = body.checks ?? {};
  } catch {
    result.failing = ['not answering'];
  }
  if (result.answered) {
    try {
      const response = await fetch(`${base}/metrics`, { credentials: 'omit', cache: 'no-store' });
      result.metrics = parseMetrics(await response.text());
    } catch { /* readiness already says what is wrong */ }
  }
  return result;
}

const sum = (samples, name, where = () => true) => samples.filter((s) => s.name === name && where(s.labels)).reduce((n, s) => n + s.value, 0);

function rates(now, probes) {
  const all = probes.flatMap((p) => p.metrics);
  const counts = {
    intake: sum(all, 'dmp_ingest_submissions_total', (l) => l.outcome === 'received'),
    rejected: sum(all, 'dmp_events_rejected_total'),
    consumed: sum(all, 'dmp_events_consumed_total', (l) => l.service === 'validate'),
  };
  const last = previous;
  previous = { at: now, counts };
  if (!last) return null;
  const seconds = (now - last.at) / 1000;
  const per = (k) => Math.max(0, counts[k] - last.counts[k]) / seconds;
  return { intake: per('intake'), rejected: per('rejected'), rejectionRate: per('consumed') ? per('rejected') / per('consumed') : 0 };
}

function card(p) {
  const state = p.ready ? 'ok' : 'failing';
  return el('section', { class: 'card', id: `svc-${p.name}`, 'data-state': state, 'aria-labelledby': `svc-${p.name}-h` },
    el('h2', { id: `svc-${p.name}-h` }, `${p.name} `, el('span', { class: `pill ${state}` }, p.ready ? 'ready' : 'failing')),
    el('p', {}, p.base),
    p.failing.length ? el('p', { class: 'failing' }, `Failing: ${p.failing.join(', ')}`) : el('p', {}, 'Every check passes.'),
    Object.keys(p.checks).length ? el('ul', {}, Object.entries(p.checks).map(([check, value]) =>
      el('li', {}, `${check}: ${typeof value === 'object' ? JSON.stringify(value) : value}`))) : null);
}

function advice(probes) {
  const rows = [];
  for (const p of probes) {
    for (const failing of p.failing) {
      const entries = runbook.entries.filter((e) => e.services.includes(p.name) && e.failing === failing);
      if (entries.length) entries.forEach((e) => rows.push({ service: p.name, failing, meaning: e.meaning, action: e.action }));
      else if (failing === 'not answering') {
        rows.push({ service: p.name, failing, meaning: 'The process does not answer on its port: stopped, crashed or starting.',
          action: 'make status shows what runs; make up starts what is not running (the supervisor restarts what dies). Its log is var/log/' + p.name + '.log.' });
      } else rows.push({ service: p.name, failing, meaning: '', action: `See the runbook (${runbook.source ?? 'README'}).` });
    }
  }
  return rows;
}

async function poll() {
  const probes = await Promise.all(SERVICES.map(([name, key]) => probe(name, key)));
  const now = Date.now();
  const rate = rates(now, probes);
  clear($('#services')).append(...probes.map(card));
  const lag = probes.flatMap((p) => p.metrics.filter((s) => s.name === 'dmp_consumer_lag').map((s) => ({ ...s.labels, lag: s.value })))
    .sort((a, b) => a.service.localeCompare(b.service) || a.topic.localeCompare(b.topic) || Number(a.partition) - Number(b.partition));
  clear($('#lag')).append(table('Events not yet made durable, per consumer and partition', [['service', 'Service'], ['topic', 'Topic'],
    ['partition', 'Partition'], ['lag', 'Lag', (v) => number(v, 0)]], lag, { id: 'lag-table' }));
  const rows = advice(probes);
  clear($('#runbook')).append(rows.length ? table('Runbook entries for what is failing', [['service', 'Service'], ['failing', 'Failing'],
    ['meaning', 'Meaning'], ['action', 'What to do']], rows, { id: 'runbook-table' }) : el('p', {}, 'Nothing is failing.'));
  const healthy = probes.every((p) => p.ready);
  const rateText = rate ? ` Intake ${number(rate.intake, 1)}/s; rejected ${number(rate.rejected, 1)}/s (${number(rate.rejectionRate * 100, 1)}% of validated).` : '';
  say(`${healthy ? 'All services ready.' : `Failing: ${probes.filter((p) => !p.ready).map((p) => p.name).join(', ')}.`}${rateText} Updated ${new Date(now).toLocaleTimeString('en-GB')}.`,
    healthy ? 'good' : 'error');
}

shell(['operator', 'admin', 'analyst']).then(async (who) => {
  if (!who) return;
  runbook = await (await fetch('assets/runbook.json')).json();
  await poll();
  setInterval(poll, POLL_MS);
});
