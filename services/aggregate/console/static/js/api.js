// Every request the console makes: to the API of aggregate (this origin), ingest and validate,
// always with the session cookie and never with the key.

let configured;

export function config() {
  configured ??= fetch('config.json', { credentials: 'same-origin' }).then((r) => r.json());
  return configured;
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && Array.isArray(body.detail) ? body.detail : [];
    super(detail.map((d) => d.msg).join('; ') || `the service answered ${status}`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

/** The base URL of a service ('' = this origin). */
export async function serviceUrl(service) {
  const { services } = await config();
  return services[service] ?? '';
}

export async function api(path, { service = 'aggregate', method = 'GET', body, params } = {}) {
  const base = await serviceUrl(service);
  const query = params ? `?${new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null))}` : '';
  const response = await fetch(`${base}${path}${query === '?' ? '' : query}`, {
    method,
    credentials: 'include',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const PAGE_MAX = 1000; // the most items the API answers in one page: each page is a round trip, one after another

/** Every item of a paged view (`{items, next}`), following the cursor; an error past `pages` pages of PAGE_MAX
 * items, rather than figures drawn from part of them. */
export async function allItems(path, params = {}, pages = 50) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < pages; page += 1) {
    const body = await api(path, { params: { limit: PAGE_MAX, ...params, cursor } });
    items.push(...body.items);
    cursor = body.next;
    if (!cursor) return items;
  }
  throw new Error(`more than ${items.length} rows of ${path}: narrow the filters`);
}

/** The URL of a view or export (for links such as CSV downloads). */
export function link(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null));
  return `${path}?${query}`;
}
