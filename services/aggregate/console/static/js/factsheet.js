// A country's year side by side, with the questionnaire export and every view's CSV one click away.
import { api, link } from './api.js';
import { el, clear, $, say, table, number } from './dom.js';
import { filteredPage } from './shell.js';

function figure(id, label, value) {
  return el('li', {}, el('span', { class: 'value', id, 'data-value': value }, number(value)), label);
}

async function load() {
  const { country, year } = Object.fromEntries(new FormData($('#filters')));
  if (!/^[A-Z]{3}$/.test(country) || !year) {
    say('Give a country (three capital letters) and a year.', 'error');
    return;
  }
  say('Loading…');
  const sheet = await api('/v1/views/fact-sheet', { params: { country, year } });
  const where = { country, year };
  const csv = (path, params = where) => el('a', { href: link(path, { ...params, format: 'csv' }) }, `${path.split('/').pop()} (CSV)`);
  const cases = sheet.seizures.reduce((n, r) => n + r.cases, 0);
  const arrested = sheet.seizures.reduce((n, r) => n + r.persons_arrested, 0);
  clear($('#sheet')).append(
    el('h2', {}, `${sheet.country}, ${sheet.year}`),
    el('ul', { class: 'figures' },
      figure('fig-seizure-cases', 'seizure cases', cases),
      figure('fig-persons-arrested', 'persons arrested', arrested),
      figure('fig-financial-cases', 'financial cases', sheet.financial.reduce((n, r) => n + r.cases, 0)),
      figure('fig-treatment-capacity', 'treatment places', sheet.treatment.capacity),
      figure('fig-in-treatment', 'people in treatment', sheet.treatment.in_treatment),
      figure('fig-courses', 'courses held', sheet.trainings.courses_held),
      figure('fig-people-trained', 'people trained', sheet.trainings.people_trained)),
    el('p', {}, 'Questionnaire export: ', el('a', { href: link('/v1/exports/arq', where) }, 'JSON'), ' · ',
      el('a', { href: link('/v1/exports/arq', { ...where, format: 'csv' }) }, 'CSV'), ' · Views: ',
      csv('/v1/views/seizures'), ' · ', csv('/v1/views/prices'), ' · ', csv('/v1/views/financial'), ' · ',
      csv('/v1/views/trainings'), ' · ', csv('/v1/views/routes', {})),
    el('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Fact sheet tables' },
      table('Seizures', [['drug', 'Drug'], ['cases', 'Cases'], ['quantity', 'Quantity', (v) => number(v)], ['unit', 'Unit'],
        ['persons_arrested', 'Persons arrested'], ['submissions', 'Submissions']], sheet.seizures, { id: 'sheet-seizures' }),
      table('Prices per gram', [['drug', 'Drug'], ['market', 'Market'], ['currency', 'Currency'], ['observations', 'Observations'],
        ['min', 'Min', (v) => number(v)], ['mean', 'Mean', (v) => number(v)], ['max', 'Max', (v) => number(v)]], sheet.prices, { id: 'sheet-prices' }),
      table('Financial cases', [['case_type', 'Case type'], ['currency', 'Currency'], ['cases', 'Cases'],
        ['amount', 'Amount', (v) => number(v)], ['persons_charged', 'Persons charged']], sheet.financial, { id: 'sheet-financial' })),
  );
  say('');
}

filteredPage(['analyst'], load, () => {
  const params = new URLSearchParams(location.search);
  $('#f-country').value = params.get('country') ?? $('#f-country').value;
  $('#f-year').value = params.get('year') ?? String(new Date().getFullYear() - 1);
});
