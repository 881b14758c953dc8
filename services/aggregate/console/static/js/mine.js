// "My submissions": what this key sent, with status, reasons and history; amend and withdraw.
import { api, ApiError } from './api.js';
import { el, clear, $, say, table } from './dom.js';
import { shell } from './shell.js';

const list = $('#list');
const detail = $('#detail');

/** The key's submissions from the listing; where it is not offered, those this browser sent. */
async function mine(filters) {
  try {
    const items = [];
    let cursor = null;
    do {
      const page = await api('/v1/submissions', { params: { submitted_by: 'me', ...filters, cursor } });
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < 1000);
    return items;
  } catch (error) {
    if (!(error instanceof ApiError) || ![404, 405].includes(error.status)) throw error;
  }
  const ids = Object.keys(sessionStorage).filter((k) => k.startsWith('dmp.sent.')).map((k) => k.slice(9));
  const found = await Promise.all(ids.map((id) => api(`/v1/submissions/${id}`).catch(() => null)));
  return found.filter(Boolean).map((s) => ({ ...s, country: JSON.parse(sessionStorage.getItem(`dmp.sent.${s.id}`)).data.country ?? '' }))
    .filter((s) => (!filters.type || s.type === filters.type) && (!filters.status || s.status === filters.status))
    .sort((a, b) => (a.received_at < b.received_at ? 1 : -1));
}

const when = (iso) => (iso ? iso.replace('T', ' ').slice(0, 19) : '');

function pill(status) {
  return el('span', { class: `pill ${status}` }, status);
}

async function show(id) {
  const s = await api(`/v1/submissions/${id}`);
  clear(detail).append(...[
    el('h2', { tabindex: '-1', id: 'detail-heading' }, `Submission ${s.id}`),
    el('p', {}, `${s.type} · `, pill(s.status), ` · version ${s.version}`,
      s.current_valid_version ? ` · version ${s.current_valid_version} counts in the views` : ''),
    s.errors.length ? el('ul', { class: 'status error' }, s.errors.map((e) => el('li', {}, `${e.loc.slice(1).join('.')}: ${e.msg}`))) : null,
    table('Version history', [['version', 'Version'], ['status', 'Status', (v) => pill(v)], ['received_at', 'Received', when],
      ['decided_at', 'Decided', when], ['changed', 'Changed fields', (v) => (v ?? []).join(', ')],
      ['errors', 'Reasons', (v) => (v ?? []).map((e) => e.msg).join('; ')]], s.history),
    el('p', {}, el('a', { href: `submit.html?amend=${encodeURIComponent(s.id)}` }, 'Amend this submission')),
    withdrawForm(s),
  ].filter(Boolean));
  $('#detail-heading').focus();
}

function withdrawForm(s) {
  if (s.status === 'withdrawn') return null;
  const reason = el('input', { id: 'withdraw-reason', name: 'reason', required: true, 'aria-describedby': 'withdraw-why' });
  const why = el('p', { class: 'reason', id: 'withdraw-why' });
  return el('form', { class: 'filters', onsubmit: async (event) => {
    event.preventDefault();
    why.textContent = '';
    try {
      await api(`/v1/submissions/${s.id}`, { service: 'ingest', method: 'DELETE', body: { reason: reason.value } });
      say(`Withdrawal of ${s.id} sent.`, 'good');
      setTimeout(() => show(s.id), 1000);
    } catch (error) {
      why.textContent = error.message;
    }
  } }, el('div', { class: 'field' }, el('label', { for: 'withdraw-reason' }, 'Reason to withdraw it'), reason, why),
  el('button', { type: 'submit', class: 'secondary' }, 'Withdraw'));
}

async function load() {
  const filters = Object.fromEntries(new FormData($('#filters')));
  say('Loading…');
  try {
    const items = await mine(filters);
    clear(list).append(table(`Submissions: ${items.length}`, [
      ['id', 'Submission', (v) => el('button', { type: 'button', class: 'secondary', onclick: () => show(v), 'aria-label': `Details of ${v}` }, v.slice(0, 8))],
      ['type', 'Type'], ['country', 'Country'], ['status', 'Status', (v) => pill(v)], ['version', 'Version'],
      ['received_at', 'Received', when], ['updated_at', 'Updated', when],
      ['id', 'Amend', (v) => el('a', { href: `submit.html?amend=${encodeURIComponent(v)}`, 'aria-label': `Amend ${v}` }, 'Amend')],
    ], items, { id: 'submissions' }));
    say('');
  } catch (error) {
    say(error.message, 'error');
  }
}

$('#filters').addEventListener('submit', (event) => { event.preventDefault(); load(); });
shell(['officer']).then((who) => { if (who) load(); });
