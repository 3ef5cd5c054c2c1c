// Building the page from data without innerHTML: text is always text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' || key === 'checked' || key === 'selected') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) {
      continue;
    }
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// A labelled form control: <div class="field"><label for=id>…</label><control id=id></div>.
export function field(label, control, hint) {
  const id = control.id || uid();
  control.id = id;
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('small', { id: hintId, class: 'hint' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o === '' ? 'any' : o];
    return h('option', { value: v, selected: v === value }, label);
  }));
}

// A table that becomes one card per row on a phone: each cell carries its column's name.
export function table(caption, headers, rows, attrs = {}) {
  const el = h('table', { ...attrs, class: `stack ${attrs.class || ''}`.trim() },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows));
  labelCells(el);
  return h('div', { class: 'table-wrap' }, el);
}

// Call again after replacing a stacked table's rows.
export function labelCells(el) {
  const tableEl = el.closest ? (el.closest('table') || el.querySelector('table')) : el;
  const names = [...tableEl.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of tableEl.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((cell, i) => {
      if (names[i]) cell.dataset.label = names[i];
    });
  }
}

export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, error.message || String(error));
}

export function time(iso) {
  if (!iso) {
    return '—';
  }
  return h('time', { datetime: iso, title: iso }, iso.replace('T', ' ').replace('Z', ' UTC'));
}

// datetime-local inputs have no zone: the console reads and writes them as UTC, as the API's
// times are.
export function toUtc(local) {
  if (!local) return '';
  return `${local.length === 16 ? `${local}:00` : local}Z`;
}
export function fromUtc(iso) {
  return iso ? iso.replace(/Z$/, '').replace(/\.\d+$/, '').slice(0, 19) : '';
}

export const PHASES = ['preparation', 'identification', 'containment', 'eradication', 'recovery',
  'lessons_learned', 'closed'];
export const SEVERITIES = ['low', 'medium', 'high', 'critical'];
export const PERSON_CHANNELS = ['email', 'sms'];
export const DELIVERY_CHANNELS = ['email', 'sms', 'chat', 'webhook'];
export const STATUSES = ['scheduled', 'sending', 'retrying', 'delivered', 'failed', 'cancelled'];
