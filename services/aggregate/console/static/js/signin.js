import { api, ApiError } from './api.js';
import { el, $, clear } from './dom.js';
import { pagesFor, whoami } from './shell.js';

const form = $('#signin');
const reason = $('#key-reason');

function welcome(who) {
  const next = new URLSearchParams(location.search).get('next');
  const pages = pagesFor(who.role);
  if (next && pages.some(([href]) => href === next)) {
    location.assign(next);
    return;
  }
  if (pages.length) {
    location.assign(pages[0][0]);
    return;
  }
  clear($('#main')).append(el('h1', {}, 'DMP console'),
    el('p', { id: 'signed-in' }, `Signed in as ${who.name} (${who.role}); the console has no pages for this role.`));
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('#key');
  reason.textContent = '';
  input.removeAttribute('aria-invalid');
  try {
    const who = await api('/console/session', { method: 'POST', body: { key: input.value } });
    input.value = '';
    welcome(who);
  } catch (error) {
    input.setAttribute('aria-invalid', 'true');
    reason.textContent = error instanceof ApiError ? error.message : 'the console could not be reached';
    input.focus();
  }
});

whoami().then((who) => { if (who) welcome(who); });
