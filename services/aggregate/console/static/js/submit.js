// The submission form for the five types, built from the types' published JSON Schemas.
import { api, ApiError } from './api.js';
import { el, clear, $, say } from './dom.js';
import { fillList } from './reference.js';
import { shell } from './shell.js';

const SCHEMA_VERSION = { seizure: 2, price: 1, financial_case: 1, treatment_facility: 1, training: 1 };
const CODE_LISTS = {
  country: 'countries', origin: 'countries', destination: 'countries', host_country: 'countries',
  drug: 'drugs', linked_drug: 'drugs', currency: 'currencies',
};
const form = $('#submission');
const typeSelect = $('#type');
let who = null;
let current = { id: null, type: null, version: 0, fields: [] };

const fieldId = (path) => `f-${path.join('-')}`;
const humanise = (name) => name.replaceAll('_', ' ').replace(/^./, (c) => c.toUpperCase());

function resolve(prop, defs) {
  let optional = false;
  let node = prop;
  if (node.anyOf) {
    optional = node.anyOf.some((b) => b.type === 'null');
    node = { ...node, ...node.anyOf.find((b) => b.type !== 'null') };
    delete node.anyOf;
  }
  if (node.$ref) node = { ...defs[node.$ref.split('/').pop()], ...node };
  return { node, optional };
}

/** One input (or fieldset) for a schema property; records how to read it back into `fields`. */
function build(name, prop, path, required, defs, fields) {
  const { node, optional } = resolve(prop, defs);
  const id = fieldId(path);
  const label = node.title && !node.$ref ? node.title : humanise(name);
  const needed = required && !optional && node.default === undefined;
  const reason = el('p', { class: 'reason', id: `${id}-reason`, 'aria-live': 'polite' });
  const hintText = [node.description, needed ? null : 'optional'].filter(Boolean).join(' · ');
  const hint = hintText ? el('p', { class: 'hint', id: `${id}-hint` }, hintText) : null;
  const describedBy = [hint && `${id}-hint`, `${id}-reason`].filter(Boolean).join(' ');

  if (node.type === 'object' && node.properties) {
    const inner = Object.entries(node.properties).map(([key, sub]) =>
      build(key, sub, [...path, key], (node.required ?? []).includes(key), defs, fields));
    return el('fieldset', { id }, el('legend', {}, label), hint, el('div', { class: 'grid' }, inner), reason);
  }
  if (node.type === 'array' && node.items?.enum) {
    const boxes = node.items.enum.map((value) => el('label', {},
      el('input', { type: 'checkbox', name: id, value }), ` ${humanise(value)}`));
    fields.push({ path, kind: 'choices', id, read: () => [...form.querySelectorAll(`input[name="${id}"]:checked`)].map((b) => b.value),
      write: (v) => form.querySelectorAll(`input[name="${id}"]`).forEach((b) => { b.checked = (v ?? []).includes(b.value); }) });
    return el('fieldset', { id, 'aria-describedby': describedBy }, el('legend', {}, label), hint,
      el('div', { class: 'choices' }, boxes), reason);
  }
  let input;
  let read;
  let write;
  let datalist = null;
  if (node.enum) {
    input = el('select', { id, name: id }, el('option', { value: '' }, needed ? 'choose…' : '—'),
      node.enum.map((v) => el('option', { value: v }, v)));
  } else if (name === 'country' && who?.countries && path.length === 1) {
    input = el('select', { id, name: id }, who.countries.map((c) => el('option', { value: c }, c)));
  } else if (node.type === 'number' || node.type === 'integer') {
    input = el('input', { id, name: id, type: 'number', step: node.type === 'integer' ? '1' : 'any', inputmode: 'decimal' });
    read = () => (input.value === '' ? undefined : Number(input.value));
  } else if (node.type === 'array') {
    input = el('input', { id, name: id, type: 'text', placeholder: 'separated by ;' });
    read = () => input.value.split(/[;,]/).map((s) => s.trim()).filter(Boolean);
    write = (v) => { input.value = (v ?? []).join('; '); };
  } else if (node.type === 'object') {
    input = el('input', { id, name: id, type: 'text', placeholder: 'heroin=85; methamphetamine=30' });
    read = () => Object.fromEntries(input.value.split(/[;,]/).map((s) => s.split('=').map((p) => p.trim()))
      .filter(([k]) => k).map(([k, v]) => [k, v === undefined || v === '' ? v : Number(v)]));
    write = (v) => { input.value = Object.entries(v ?? {}).map(([k, n]) => `${k}=${n}`).join('; '); };
  } else {
    input = el('input', { id, name: id, type: node.format === 'date' ? 'date' : 'text', maxlength: node.maxLength });
    const list = CODE_LISTS[name];
    if (list) {
      datalist = el('datalist', { id: `${id}-list` });
      input.setAttribute('list', datalist.id);
      fillList(datalist, list);
    }
  }
  input.setAttribute('aria-describedby', describedBy);
  if (needed) input.setAttribute('aria-required', 'true');
  if (node.default !== undefined && node.default !== null && !Array.isArray(node.default)) input.value = node.default;
  fields.push({ path, id, read: read ?? (() => (input.value === '' ? undefined : input.value)),
    write: write ?? ((v) => { input.value = v ?? ''; }) });
  return el('div', { class: 'field' }, el('label', { for: id }, label), hint, input, datalist, reason);
}

function setPath(target, path, value) {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {});
  node[path.at(-1)] = value;
}

function collect() {
  const data = {};
  for (const field of current.fields) {
    const value = field.read();
    const empty = value === undefined || (Array.isArray(value) && value.length === 0 && field.kind !== 'choices')
      || (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
    if (!empty) setPath(data, field.path, value);
  }
  return data;
}

function fill(data) {
  for (const field of current.fields) {
    const value = field.path.reduce((node, key) => (node == null ? undefined : node[key]), data);
    field.write(value);
  }
}

function clearReasons() {
  form.querySelectorAll('.reason').forEach((r) => { r.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
  $('#form-reasons')?.remove();
}

/** Put every reason beside its field; those without a field in a list at the top. */
function showReasons(errors) {
  clearReasons();
  const loose = [];
  for (const error of errors) {
    const loc = error.loc ?? [];
    const at = loc.indexOf('data');
    const path = (at >= 0 ? loc.slice(at + 1) : loc.filter((p) => p !== 'body')).map(String);
    let target = null;
    for (let n = path.length; n > 0 && !target; n -= 1) target = document.getElementById(`${fieldId(path.slice(0, n))}-reason`);
    if (target) {
      target.textContent = target.textContent ? `${target.textContent}; ${error.msg}` : error.msg;
      document.getElementById(target.id.replace(/-reason$/, ''))?.setAttribute('aria-invalid', 'true');
    } else {
      loose.push(`${loc.join('.')}: ${error.msg}`);
    }
  }
  if (loose.length) form.prepend(el('ul', { id: 'form-reasons', class: 'status error' }, loose.map((t) => el('li', {}, t))));
  form.querySelector('[aria-invalid="true"]')?.focus();
}

async function verdict(id, after) {
  const deadline = Date.now() + 30000;
  let last = null;
  while (Date.now() < deadline) {
    try {
      last = await api(`/v1/submissions/${id}`);
      if (last.status !== 'received' && last.version > after) return last;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    await new Promise((resolve) => { setTimeout(resolve, 400); });
  }
  return last;
}

/** What this tab keeps of a sent submission, to pre-fill an amendment: never a participant's identity. */
function kept(envelope) {
  if (envelope.type !== 'training' || !envelope.data.participant) return envelope;
  const { national_id: _id, full_name: _name, ...participant } = envelope.data.participant;
  return { ...envelope, data: { ...envelope.data, participant } };
}

async function send(event) {
  event.preventDefault();
  clearReasons();
  const type = typeSelect.value;
  current.id ??= crypto.randomUUID();
  const envelope = { id: current.id, type, schema_version: SCHEMA_VERSION[type], data: collect() };
  say('Sending…');
  try {
    await api('/v1/submissions', { service: 'ingest', method: 'POST', body: envelope });
  } catch (error) {
    if (error instanceof ApiError && error.detail.length) {
      showReasons(error.detail);
      say(`Not accepted (${error.status}): see the reasons beside the fields.`, 'error');
    } else {
      say(`Not sent: ${error.message}. Nothing was stored; send again.`, 'error');
    }
    return;
  }
  sessionStorage.setItem(`dmp.sent.${current.id}`, JSON.stringify(kept(envelope)));
  say('Received; waiting for the rules’ verdict…');
  const status = await verdict(current.id, current.version);
  if (!status || status.status === 'received') {
    say('Received; the verdict is not in yet. See My submissions.', 'info');
    return;
  }
  current.version = status.version;
  $('#send').textContent = 'Amend';
  if (status.status === 'validated') {
    say(`Validated: version ${status.version} of ${current.id} counts in the views.`, 'good');
  } else if (status.status === 'rejected') {
    showReasons(status.errors);
    say(`Rejected (version ${status.version}): correct the fields marked and press Amend.`, 'error');
  } else {
    say(`Status: ${status.status} (version ${status.version}).`);
  }
}

let drawing = 0;

async function render(type, amend = null) {
  const turn = ++drawing;
  const schema = await (await fetch(`schemas/${type}.v${SCHEMA_VERSION[type]}.schema.json`)).json();
  if (turn !== drawing) return; // another type was chosen while this one's schema loaded: that form wins
  const fields = [];
  const inputs = Object.entries(schema.properties).map(([name, prop]) =>
    build(name, prop, [name], (schema.required ?? []).includes(name), schema.$defs ?? {}, fields));
  current = { id: amend?.id ?? null, type, version: amend?.version ?? 0, fields };
  clear(form).append(
    el('p', { class: 'hint' }, amend ? `Amending ${amend.id}` : schema.description),
    el('div', { class: 'grid' }, inputs),
    el('p', {}, el('button', { id: 'send', type: 'submit' }, amend ? 'Amend' : 'Submit'), ' ',
      el('button', { type: 'button', class: 'secondary', onclick: () => { history.replaceState(null, '', 'submit.html'); render(typeSelect.value); say(''); } }, 'New submission')),
  );
  if (amend?.envelope) fill(amend.envelope.data);
}

form.addEventListener('submit', send);
typeSelect.addEventListener('change', () => render(typeSelect.value));

shell(['officer']).then(async (signedIn) => {
  if (!signedIn) return;
  who = signedIn;
  const id = new URLSearchParams(location.search).get('amend');
  if (id) {
    const envelope = JSON.parse(sessionStorage.getItem(`dmp.sent.${id}`) ?? 'null');
    const status = await api(`/v1/submissions/${id}`).catch(() => null);
    const type = envelope?.type ?? status?.type ?? 'seizure';
    typeSelect.value = type;
    await render(type, { id, version: status?.version ?? 0, envelope: envelope ?? (status?.data ? { data: status.data } : null) });
    if (status?.status === 'rejected') showReasons(status.errors);
    if (!envelope && !status?.data) say('This browser did not send it: fill in the fields again to amend it.', 'info');
  } else {
    await render(typeSelect.value);
  }
});
