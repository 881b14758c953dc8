// "My submissions": what this key sent, with status, reasons and history; amend and withdraw.
import { api, ApiError } from './api.js';
import { el, clear, $, say, table } from './dom.js';
import { shell } from './shell.js';

const list = $('#list');
const detail = $('#detail');

const PAGE = 100;
let more = null;

/** A page of the key's submissions from the listing, and the cursor after it; where the listing is not
 * offered, those this browser sent. A selective filter may answer short pages with a cursor, so pages are
 * followed until one is full or the listing ends. */
async function mine(filters, from) {
  try {
    const items = [];
    let cursor = from;
    do {
      const page = await api('/v1/submissions', { params: { submitted_by: 'me', ...filters, limit: PAGE, cursor } });
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < PAGE);
    return { items, next: cursor };
  } catch (error) {
    if (!(error instanceof ApiError) || ![404, 405].includes(error.status)) throw error;
  }
  const ids = Object.keys(sessionStorage).filter((k) => k.startsWith('dmp.sent.')).map((k) => k.slice(9));
  const found = await Promise.all(ids.map((id) => api(`/v1/submissions/${id}`).catch(() => null)));
  const items = found.filter(Boolean).map((s) => ({ ...s, country: JSON.parse(sessionStorage.getItem(`dmp.sent.${s.id}`)).data.country ?? '' }))
    .filter((s) => (!filters.type || s.type === filters.type) && (!filters.status || s.status === filters.status))
    .sort((a, b) => (a.received_at < b.received_at ? 1 : -1));
  return { items, next: null };
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

const COLUMNS = [
  ['id', 'Submission', (v) => el('button', { type: 'button', class: 'secondary', onclick: () => show(v), 'aria-label': `Details of ${v}` }, v.slice(0, 8))],
  ['type', 'Type'], ['country', 'Country'], ['status', 'Status', (v) => pill(v)], ['version', 'Version'],
  ['received_at', 'Received', when], ['updated_at', 'Updated', when],
  ['id', 'Amend', (v) => el('a', { href: `submit.html?amend=${encodeURIComponent(v)}`, 'aria-label': `Amend ${v}` }, 'Amend')],
];
let shown = [];

/** The first page for the filters, or (`onward`) the next page added to what is shown. */
async function load(onward = false) {
  const filters = Object.fromEntries(new FormData($('#filters')));
  say('Loading…');
  try {
    const page = await mine(filters, onward ? more : null);
    shown = onward ? [...shown, ...page.items] : page.items;
    more = page.next;
    const title = `Submissions: ${shown.length}${more ? ' shown, more to come' : ''}`;
    clear(list).append(table(title, COLUMNS, shown, { id: 'submissions' }));
    if (more) {
      list.append(el('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Show more'));
    }
    say('');
  } catch (error) {
    say(error.message, 'error');
  }
}

$('#filters').addEventListener('submit', (event) => { event.preventDefault(); load(); });
shell(['officer']).then((who) => { if (who) load(); });
