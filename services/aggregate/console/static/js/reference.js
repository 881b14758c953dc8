// The lists every form and filter offers (drugs, countries, currencies...), from the reference API.
// Until a list is there the field stays free text: the server's rules decide either way.
import { api } from './api.js';
import { el, clear } from './dom.js';

const cache = new Map();

function codesOf(body) {
  const list = body?.items ?? body?.codes ?? body?.[Object.keys(body ?? {}).find((k) => Array.isArray(body[k]) || (typeof body[k] === 'object' && k !== 'version'))];
  if (Array.isArray(list)) {
    return list.map((item) => (typeof item === 'string' ? { code: item } : { code: item.code ?? item.id ?? item.iso3, name: item.name ?? item.label }));
  }
  if (list && typeof list === 'object') return Object.keys(list).map((code) => ({ code, name: list[code]?.name }));
  return [];
}

/** The codes of one reference list ([] when the list cannot be had). */
export function reference(name) {
  if (!cache.has(name)) {
    cache.set(name, api(`/v1/reference/${name}`).then(codesOf).catch(() => []));
  }
  return cache.get(name);
}

/** Fill a <datalist> with a reference list. */
export async function fillList(datalist, name) {
  const codes = await reference(name);
  clear(datalist).append(...codes.map(({ code, name: label }) => el('option', { value: code }, label ?? code)));
}
