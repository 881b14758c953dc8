// The audit trail for admins: who submitted, amended, exported, made or revoked what, filterable.
import { api } from './api.js';
import { el, clear, $, say, table } from './dom.js';
import { shell } from './shell.js';

const ACTIONS = ['submitted', 'resubmitted', 'amended', 'exported', 'key_created', 'key_revoked'];
let next = null;
let shown = [];

function render() {
  clear($('#trail')).append(table(`${shown.length} entries`, [['at', 'When'], ['actor', 'Key id'], ['action', 'Action'],
    ['target', 'Target'], ['details', 'Details', (v) => Object.entries(v ?? {}).map(([k, x]) => `${k}: ${typeof x === 'object' ? JSON.stringify(x) : x}`).join('; ')]],
  shown, { id: 'audit-table' }));
  $('#more').hidden = !next;
}

async function load(more = false) {
  const filters = Object.fromEntries(new FormData($('#filters')));
  say('Loading…');
  try {
    const page = await api('/v1/audit', { params: { ...filters, cursor: more ? next : null } });
    shown = more ? [...shown, ...page.items] : page.items;
    next = page.next;
    render();
    say('');
  } catch (error) {
    say(error.message, 'error');
  }
}

$('#filters').addEventListener('submit', (event) => { event.preventDefault(); load(); });
$('#more').addEventListener('click', () => load(true));
shell(['admin']).then((who) => {
  if (!who) return;
  $('#f-action').append(...ACTIONS.map((a) => el('option', { value: a }, a)));
  load();
});
