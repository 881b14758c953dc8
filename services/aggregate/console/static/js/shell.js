// The frame of every page: who is signed in, what the key's role may open, signing out.
import { api, ApiError } from './api.js';
import { el, clear, $, say } from './dom.js';

export const PAGES = [
  ['submit.html', 'Submit', ['officer']],
  ['mine.html', 'My submissions', ['officer']],
  ['map.html', 'Map', ['analyst']],
  ['trends.html', 'Trends', ['analyst']],
  ['factsheet.html', 'Fact sheet', ['analyst']],
  ['operator.html', 'Operator', ['operator', 'admin', 'analyst']],
  ['audit.html', 'Audit', ['admin']],
];

export function pagesFor(role) {
  return PAGES.filter(([, , roles]) => roles.includes(role));
}

export async function whoami() {
  try {
    return await api('/console/session');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

/** Draw the header; the signed-in key (or null, after sending the browser to sign in). */
export async function shell(roles) {
  const who = await whoami();
  const here = location.pathname.split('/').pop() || 'index.html';
  if (!who) {
    location.assign(`./?next=${encodeURIComponent(here)}`);
    return null;
  }
  const header = clear(document.getElementById('top'));
  const scope = who.countries ? who.countries.join(', ') : 'all countries';
  header.append(
    el('a', { class: 'brand', href: './' }, 'DMP console'),
    el('nav', { 'aria-label': 'Pages' }, el('ul', {}, pagesFor(who.role).map(([href, label]) =>
      el('li', {}, el('a', { href, 'aria-current': href === here ? 'page' : null }, label))))),
    el('p', { class: 'who' }, `${who.name} · ${who.role} · ${scope} `,
      el('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out')),
  );
  if (!roles.includes(who.role)) {
    const main = clear(document.getElementById('main'));
    main.append(el('h1', {}, document.title.split(' · ')[0]),
      el('p', { class: 'status error', role: 'alert' }, `This page is for ${roles.join(' or ')} keys; yours is ${who.role}.`));
    return null;
  }
  return who;
}

async function signOut() {
  await api('/console/session', { method: 'DELETE' });
  sessionStorage.clear(); // what this tab sent, kept to pre-fill amendments
  location.assign('./');
}

// An analyst page: `load` runs once the page is open to the reader (after `prepare` has filled the
// filters), again whenever the filters are sent, and says what went wrong instead of failing quietly.
export async function filteredPage(roles, load, prepare = () => {}) {
  const run = async () => {
    try {
      await load();
    } catch (error) {
      say(error.message, 'error');
    }
  };
  $('#filters').addEventListener('submit', (event) => { event.preventDefault(); run(); });
  const who = await shell(roles);
  if (!who) return;
  prepare(who);
  await run();
}
