// A small SVG line chart: one line per series over ordered x labels, with a table beside it for
// readers who cannot see the chart.
import { el, number } from './dom.js';

const COLOURS = ['#0b5cab', '#a4161a', '#1e6b34', '#7a4a00', '#5b2a86', '#00616e', '#4a5562'];

/** `series`: {name: {x: value}}; `xs`: the ordered x labels. */
export function lineChart(title, xs, series, unit) {
  const width = 900;
  const height = 260;
  const left = 60;
  const bottom = 40;
  const names = Object.keys(series);
  if (names.length === 0) return el('p', { class: 'hint' }, `${title}: no figures for this selection.`);
  const max = Math.max(1e-9, ...names.flatMap((n) => Object.values(series[n])));
  const x = (i) => left + (xs.length < 2 ? (width - left) / 2 : (i * (width - left - 40)) / (xs.length - 1));
  const y = (v) => height - bottom - (v / max) * (height - bottom - 20);
  const step = Math.max(1, Math.ceil(xs.length / 12));
  return el('figure', {},
    el('svg:svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': `${title} (chart; the table below has the figures)` },
      el('svg:line', { class: 'axis', x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
      el('svg:line', { class: 'axis', x1: left, y1: 10, x2: left, y2: height - bottom }),
      el('svg:text', { x: 4, y: 18 }, `${number(max)} ${unit}`),
      el('svg:text', { x: 4, y: height - bottom }, '0'),
      xs.map((label, i) => (i % step === 0 ? el('svg:text', { x: x(i), y: height - bottom + 16, 'text-anchor': 'middle' }, label) : null)),
      names.map((name, n) => el('svg:g', {},
        el('svg:polyline', { class: 'series', stroke: COLOURS[n % COLOURS.length],
          points: xs.map((label, i) => (series[name][label] === undefined ? null : `${x(i)},${y(series[name][label])}`)).filter(Boolean).join(' ') }),
        xs.map((label, i) => (series[name][label] === undefined ? null
          : el('svg:circle', { cx: x(i), cy: y(series[name][label]), r: 3, fill: COLOURS[n % COLOURS.length] },
            el('svg:title', {}, `${name}, ${label}: ${number(series[name][label])} ${unit}`))))))),
    el('figcaption', { class: 'legend' }, names.map((name, n) => el('span', {},
      el('svg:svg', { width: 18, height: 10, 'aria-hidden': 'true' }, el('svg:rect', { width: 18, height: 10, fill: COLOURS[n % COLOURS.length] })),
      ` ${name}`))));
}

/** Rows grouped into chart series: `key(row)` names the series, `at(row)` the x label. */
export function seriesOf(rows, key, at, value) {
  const series = {};
  const xs = new Set();
  for (const row of rows) {
    const name = key(row);
    const label = at(row);
    xs.add(label);
    series[name] ??= {};
    series[name][label] = (series[name][label] ?? 0) + value(row);
  }
  return { xs: [...xs].sort(), series };
}
