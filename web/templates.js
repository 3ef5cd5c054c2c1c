// Templates: pick one, edit it with a live preview rendered by the server for its channel,
// save it (admin), and look through its versions.
import * as api from './api.js';
import { h, clear, field, select, errorBox, time, PHASES } from './dom.js';

const CHANNELS = ['email.subject', 'email.text', 'email.html', 'sms.text', 'chat.text'];

function channelOf(name) {
  const parts = name.split('.');
  if (parts[0] === 'partial' || parts.length < 3) {
    return null;
  }
  return `${parts[1]}.${parts[2]}`;
}

function phaseOf(name) {
  const first = name.split('.')[0];
  return PHASES.includes(first) ? first : undefined;
}

export async function render(main, ctx) {
  const admin = ctx.can('admin');
  const clientFilter = ctx.query.client || '';
  const [listing, clients] = await Promise.all([
    api.get(`/v1/templates${api.query({ client: clientFilter })}`), api.get('/v1/clients')]);
  const names = [...new Set([...listing.shipped, ...listing.items.map((t) => t.name)])].sort();
  const storedBy = new Map();
  listing.items.forEach((t) => storedBy.set(`${t.client || ''}/${t.name}`, t));
  const selected = ctx.query.name || names.find((n) => n.startsWith('containment.email.subject')) || names[0];

  const clientSelect = select([['', 'everyone'], ...clients.items.map((c) => [c.id, c.id])], clientFilter, { name: 'client' });
  const nameSelect = select(names.map((n) => {
    const own = storedBy.has(`${clientFilter}/${n}`);
    return [n, own ? `${n} (stored)` : n];
  }), selected, { name: 'name' });
  const pick = h('form', { class: 'card inline', 'aria-label': 'Choose a template' },
    h('div', { class: 'grid' }, field('Template', nameSelect), field('For client', clientSelect)),
    h('button', { type: 'submit' }, 'Open'));
  pick.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go('templates', { name: nameSelect.value, client: clientSelect.value });
  });

  let current;
  try {
    current = await api.get(`/v1/templates/${api.seg(selected)}${api.query({ client: clientFilter })}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    current = { name: selected, body: '', source: 'new' };
  }

  const editor = h('textarea', { name: 'body', rows: 14, spellcheck: 'false', class: 'mono', readonly: !admin || null }, current.body || '');
  const channelSelect = select(CHANNELS, channelOf(selected) || 'email.text', { name: 'channel' });
  const phaseSelect = select(PHASES, phaseOf(selected) || 'containment', { name: 'phase' });
  const drillBox = h('input', { type: 'checkbox', name: 'drill' });
  const output = h('pre', { class: 'rendered', tabindex: '0', 'aria-label': 'Rendered preview' });
  const previewInfo = h('div', { 'aria-live': 'polite' });
  const saveSlot = h('div', {});
  let timer = null;
  let seq = 0;

  async function preview() {
    const mine = ++seq;
    const body = { template: editor.value, channel: channelSelect.value, phase: phaseSelect.value, drill: drillBox.checked };
    if (clientFilter) body.client = clientFilter;
    try {
      const r = await api.post('/v1/templates/render', body);
      if (mine !== seq) return;
      output.textContent = r.rendered;
      editor.removeAttribute('aria-invalid');
      clear(previewInfo,
        r.sms ? h('p', {}, `SMS: ${r.sms.encoding}, ${r.sms.units} units, ${r.sms.segments} segment${r.sms.segments === 1 ? '' : 's'}`) : null,
        r.warnings.length ? h('ul', { class: 'warnings' }, r.warnings.map((w) => h('li', {}, w))) : null);
    } catch (err) {
      if (mine !== seq) return;
      output.textContent = '';
      editor.setAttribute('aria-invalid', 'true');
      clear(previewInfo, errorBox(err));
    }
  }
  const schedule = () => { clearTimeout(timer); timer = setTimeout(preview, 250); };
  editor.addEventListener('input', schedule);
  channelSelect.addEventListener('change', preview);
  phaseSelect.addEventListener('change', preview);
  drillBox.addEventListener('change', preview);

  async function save() {
    try {
      const saved = await api.put(`/v1/templates/${api.seg(selected)}`, { client: clientFilter || null, body: editor.value });
      clear(saveSlot, h('p', { class: 'ok' }, `Saved as version ${saved.version}.`),
        saved.warnings.length ? h('ul', { class: 'warnings' }, saved.warnings.map((w) => h('li', {}, w))) : null);
      ctx.announce(`Template saved as version ${saved.version}`);
      stored = true;
      current.client = saved.client;
      loadVersions();
    } catch (err) {
      clear(saveSlot, errorBox(err.detail && err.detail.line ? { message: `${err.message}` } : err));
      editor.setAttribute('aria-invalid', 'true');
      editor.focus();
    }
  }

  const versionsSlot = h('div', {});
  let stored = current.source === 'stored';
  async function loadVersions() {
    if (!stored) {
      clear(versionsSlot, h('p', {}, 'Not stored: the shipped template is in use.'));
      return;
    }
    try {
      const v = await api.get(`/v1/templates/${api.seg(selected)}/versions${api.query({ client: current.client || '' })}`);
      clear(versionsSlot, v.items.length ? h('ol', { class: 'versions' }, v.items.slice().reverse().map((x) => h('li', {},
        `v${x.version} by ${x.actor} at `, time(x.updated_at), x.deleted ? ' (deleted)' : [' ',
          h('button', { type: 'button', class: 'small secondary', onclick: () => { editor.value = x.body; preview(); editor.focus(); } }, `Load v${x.version}`)])))
        : h('p', {}, 'Not stored: the shipped template is in use.'));
    } catch (err) {
      clear(versionsSlot, err.status === 404 ? h('p', {}, 'Not stored: the shipped template is in use.') : errorBox(err));
    }
  }

  clear(main,
    h('h1', {}, 'Templates'),
    pick,
    h('section', { class: 'template-editor', 'aria-labelledby': 'tpl-title' },
      h('h2', { id: 'tpl-title' }, selected, clientFilter ? ` for ${clientFilter}` : ' for everyone'),
      h('p', { class: 'hint' }, current.source === 'shipped' ? 'Shipped with Herald; saving stores an override.'
        : current.source === 'new' ? 'Not stored yet.' : `Stored version ${current.version}, by ${current.actor}.`),
      h('div', { class: 'split' },
        h('div', {}, field('Template body (mustache)', editor),
          admin ? h('button', { type: 'button', onclick: save }, 'Save template') : h('p', { class: 'hint' }, 'Read-only: saving needs the admin scope.'),
          saveSlot),
        h('div', {},
          h('div', { class: 'grid' }, field('Preview as', channelSelect), field('Sample phase', phaseSelect),
            h('label', { class: 'check' }, drillBox, ' Drill')),
          h('h3', {}, 'Preview'), output, previewInfo))),
    h('section', { 'aria-labelledby': 'versions-title' }, h('h2', { id: 'versions-title' }, 'Versions'), versionsSlot));
  preview();
  loadVersions();
}
