// The map: country outlines shaded by seized quantity (the seizures view), and every seizure with
// coordinates as a point (the map view), for a drug and a year.
import { allItems, api } from './api.js';
import { el, clear, $, say, table, number } from './dom.js';
import { fillList } from './reference.js';
import { filteredPage } from './shell.js';

const SHADES = ['#f1f5f9', '#c6dbef', '#9ecae1', '#6baed6', '#3182bd', '#08519c'];
let outlines;

function ringPath(rings) {
  return rings.map((ring) => `M${ring.map(([x, y]) => `${x},${-y}`).join('L')}Z`).join('');
}

const MAX_POINTS = 1000; // one page of the map view; more would not be readable, nor quick to draw: the page asks to narrow the filters

/** The features of the map view for the filters, following its cursor up to MAX_POINTS; whether there are more. */
async function features(params) {
  const found = [];
  let cursor = null;
  do {
    const page = await api('/v1/views/map', { params: { ...params, cursor } });
    found.push(...page.features);
    cursor = page.next;
  } while (cursor && found.length < MAX_POINTS);
  return { points: found, more: Boolean(cursor) };
}

function totals(rows) {
  const byUnit = {};
  for (const row of rows) byUnit[row.unit] = (byUnit[row.unit] ?? 0) + 1;
  const unit = Object.keys(byUnit).sort((a, b) => byUnit[b] - byUnit[a])[0] ?? 'kg';
  const byCountry = {};
  for (const row of rows.filter((r) => r.unit === unit)) byCountry[row.country] = (byCountry[row.country] ?? 0) + row.quantity;
  return { unit, byCountry };
}

function shade(value, max) {
  if (!value) return SHADES[0];
  return SHADES[Math.min(SHADES.length - 1, 1 + Math.floor((value / max) * (SHADES.length - 1.0001)))];
}

/** The part of the world the points are in (with a margin), or the whole of it. */
function frame(points) {
  if (!points.length) return '-180 -85 360 145';
  const xs = points.map((f) => f.geometry.coordinates[0]);
  const ys = points.map((f) => -f.geometry.coordinates[1]);
  const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
  const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
  const width = Math.min(360, Math.max(60, (Math.max(...xs) - Math.min(...xs)) * 1.6, (Math.max(...ys) - Math.min(...ys)) * 1.6 * 2.4));
  const height = width / 2.4;
  return `${cx - width / 2} ${cy - height / 2} ${width} ${height}`;
}

async function load() {
  const filters = Object.fromEntries(new FormData($('#filters')));
  const { drug, year, route } = filters;
  const period = year ? { from: `${year}-01-01`, to: `${year}-12-31` } : {};
  say('Loading…');
  const [rows, { points, more }, shapes] = await Promise.all([
    allItems('/v1/views/seizures', { drug, year }),
    features({ drug, route, ...period }),
    outlines ?? fetch('assets/countries.json').then((response) => response.json()),
  ]);
  outlines = shapes;
  const { unit, byCountry } = totals(rows);
  const max = Math.max(0, ...Object.values(byCountry));
  const svg = el('svg:svg', { viewBox: frame(points), class: 'map', role: 'img',
    'aria-label': `Map of ${points.length} seizures with coordinates; countries shaded by quantity seized` },
  el('svg:g', {}, outlines.countries.map((c) => el('svg:path', { class: 'country', d: ringPath(c.rings),
    fill: shade(byCountry[c.iso3], max), 'data-iso3': c.iso3 ?? '' },
  el('svg:title', {}, `${c.name}: ${number(byCountry[c.iso3] ?? 0)} ${unit}`)))),
  el('svg:g', {}, points.map((f) => el('svg:circle', { class: 'seizure-point', r: 0.6,
    cx: f.geometry.coordinates[0], cy: -f.geometry.coordinates[1] },
  el('svg:title', {}, `${f.properties.place}, ${f.properties.country} — ${f.properties.drug} ${number(f.properties.quantity)} ${f.properties.unit} (${f.properties.seized_on})`)))));
  clear($('#map')).append(svg);
  clear($('#legend')).append(`Quantity seized (${unit}): `,
    ...SHADES.map((colour, i) => el('span', {}, el('span', { class: `swatch shade-${i}`, 'data-colour': colour }), ' ',
      i === 0 ? 'none' : `≤ ${number((max * i) / (SHADES.length - 1))}`)));
  $('#legend').querySelectorAll('.swatch').forEach((s) => { s.style.background = s.dataset.colour; });
  clear($('#points')).append(table(`${points.length} seizures with coordinates`, [
    ['seized_on', 'Seized on'], ['country', 'Country'], ['place', 'Place'], ['drug', 'Drug'],
    ['quantity', 'Quantity', (v) => number(v)], ['unit', 'Unit'], ['route', 'Route'], ['lat', 'Latitude'], ['lon', 'Longitude']],
  points.map((f) => ({ ...f.properties, lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1] })), { id: 'map-points' }));
  say(`${points.length} seizures with coordinates${more ? ' (the first ones: narrow the filters to see the rest)' : ''}; `
    + `${Object.keys(byCountry).length} countries with seizures.`);
}

filteredPage(['analyst'], load, () => fillList($('#drugs'), 'drugs'));
