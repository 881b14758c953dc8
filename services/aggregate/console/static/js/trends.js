// Trends per drug: route × month and country × year quantities, and mean prices per gram by year.
import { allItems } from './api.js';
import { clear, el, $, say, table, number } from './dom.js';
import { lineChart, seriesOf } from './chart.js';
import { fillList } from './reference.js';
import { filteredPage } from './shell.js';

function mainUnit(rows) {
  const count = {};
  for (const row of rows) count[row.unit] = (count[row.unit] ?? 0) + 1;
  return Object.keys(count).sort((a, b) => count[b] - count[a])[0] ?? 'kg';
}

function scrolling(label, content) {
  return el('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': label }, content);
}

async function load() {
  const { drug } = Object.fromEntries(new FormData($('#filters')));
  say('Loading…');
  const [routes, seizures, prices] = await Promise.all([
    allItems('/v1/views/routes', { drug }), allItems('/v1/views/seizures', { drug }), allItems('/v1/views/prices', { drug })]);
  const routeUnit = mainUnit(routes);
  const r = seriesOf(routes.filter((row) => row.unit === routeUnit), (row) => row.route, (row) => row.month, (row) => row.quantity);
  clear($('#routes')).append(lineChart(`Quantity of ${drug} by route and month`, r.xs, r.series, routeUnit),
    scrolling('By route and month', table('By route and month', [['route', 'Route'], ['month', 'Month'], ['cases', 'Cases'],
      ['quantity', 'Quantity', (v) => number(v)], ['unit', 'Unit']], routes, { id: 'routes-table' })));
  const seizureUnit = mainUnit(seizures);
  const c = seriesOf(seizures.filter((row) => row.unit === seizureUnit), (row) => row.country, (row) => String(row.year), (row) => row.quantity);
  clear($('#countries')).append(lineChart(`Quantity of ${drug} by country and year`, c.xs, c.series, seizureUnit),
    scrolling('By country and year', table('By country and year', [['country', 'Country'], ['year', 'Year'], ['cases', 'Cases'],
      ['quantity', 'Quantity', (v) => number(v)], ['unit', 'Unit']], seizures, { id: 'countries-table' })));
  const p = seriesOf(prices, (row) => `${row.country} ${row.market} (${row.currency})`, (row) => String(row.year), (row) => row.mean);
  clear($('#prices')).append(lineChart(`Mean price of ${drug} per gram`, p.xs, p.series, 'per g'),
    scrolling('Prices per gram', table('Prices per gram', [['country', 'Country'], ['year', 'Year'], ['market', 'Market'], ['currency', 'Currency'],
      ['observations', 'Observations'], ['min', 'Min', (v) => number(v)], ['mean', 'Mean', (v) => number(v)],
      ['max', 'Max', (v) => number(v)]], prices, { id: 'prices-table' })));
  say('');
}

filteredPage(['analyst'], load, () => fillList($('#drugs'), 'drugs'));
