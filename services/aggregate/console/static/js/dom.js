// Building the page from data without innerHTML: text is always text, never markup.

export function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** A table of `rows` (objects) with the given columns: [key, heading, format?]. */
export function table(caption, columns, rows, attrs = {}) {
  return el('table', attrs,
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, columns.map(([, heading]) => el('th', { scope: 'col' }, heading)))),
    el('tbody', {}, rows.length === 0
      ? el('tr', {}, el('td', { colspan: columns.length }, 'nothing yet'))
      : rows.map((row) => el('tr', {}, columns.map(([key, , format]) =>
        el('td', { 'data-field': key }, format ? format(row[key], row) : (row[key] ?? '')))))));
}

export function number(value, digits = 3) {
  if (value === null || value === undefined || value === '') return '';
  return Number(value).toLocaleString('en', { maximumFractionDigits: digits });
}

/** Show a message in the page's status line (announced to screen readers). */
export function say(text, kind = 'info') {
  const status = document.getElementById('status');
  if (!status) return;
  status.textContent = text;
  status.className = `status ${kind}`;
}
