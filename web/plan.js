// The contact matrix as a grid: phases across, roles (and endpoints) down; each cell shows
// the rules reaching that row in that phase (channels, delay, repeat). Edits stay local until
// "Save plan": the server validates the whole plan, and a rejected rule is shown at its cells.
import * as api from './api.js';
import { h, clear, field, select, errorBox, time, PHASES, SEVERITIES, PERSON_CHANNELS } from './dom.js';

const list_of = (text) => String(text || '').split(',').map((s) => s.trim()).filter(Boolean);

// Only what PUT accepts, defaults left out where they are defaults.
function cleanRule(r) {
  const out = { id: r.id, phases: [...r.phases], min_severity: r.min_severity || 'low' };
  if (r.roles && r.roles.length) out.roles = [...r.roles];
  if (r.endpoints && r.endpoints.length) out.endpoints = [...r.endpoints];
  if (r.channels && r.channels.length) out.channels = [...r.channels];
  out.delay = r.delay || '0s';
  if (r.repeat) out.repeat = r.repeat;
  out.quiet_hours = r.quiet_hours || 'respect';
  if (r.escalate) out.escalate = { after: r.escalate.after, to_roles: [...r.escalate.to_roles] };
  return out;
}

function rowKey(kind, name) {
  return `${kind}:${name}`;
}

function covers(rule, row, phase) {
  if (!rule.phases.includes(phase)) {
    return false;
  }
  return row.kind === 'role' ? (rule.roles || []).includes(row.name)
    : (rule.endpoints || []).includes(row.name);
}

function cellId(row, phase) {
  return `cell-${row.kind}-${row.name}-${phase}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

// "rules[2].roles[1]" → {rule: 2, key: "roles", index: 1}
export function parseField(path) {
  const m = /^rules\[(\d+)\](?:\.([a-z_]+)(?:\[(\d+)\])?)?/.exec(path || '');
  if (!m) {
    return null;
  }
  return { rule: Number(m[1]), key: m[2] || '', index: m[3] === undefined ? null : Number(m[3]) };
}

export async function render(main, ctx) {
  const [clientId] = ctx.params;
  const base = `/v1/clients/${api.seg(clientId)}`;
  const [client, stored, contacts, endpoints] = await Promise.all([
    api.get(base), api.get(`${base}/plan`), api.get(`${base}/contacts`), api.get(`${base}/endpoints`)]);
  const admin = ctx.can('admin');
  const state = {
    rules: stored.rules.map(cleanRule),
    version: stored.version,
    dirty: false,
    error: null, // {message, field, cells: Set of cell ids}
    warnings: [],
  };

  const endpointType = Object.fromEntries(endpoints.items.map((e) => [e.id, e.type]));
  function rows() {
    const roles = new Set();
    contacts.items.forEach((c) => c.roles.forEach((r) => roles.add(r)));
    state.rules.forEach((r) => (r.roles || []).forEach((x) => roles.add(x)));
    const eps = new Set(endpoints.items.map((e) => e.id));
    state.rules.forEach((r) => (r.endpoints || []).forEach((x) => eps.add(x)));
    return [...[...roles].sort().map((name) => ({ kind: 'role', name })),
      ...[...eps].sort().map((name) => ({ kind: 'endpoint', name }))];
  }

  const gridSlot = h('div', {});
  const messageSlot = h('div', {});
  const dialog = h('dialog', { class: 'cell-editor', 'aria-labelledby': 'cell-editor-title' });
  const saveButton = h('button', { type: 'button', disabled: !admin, onclick: save }, 'Save plan');
  const revertButton = h('button', { type: 'button', class: 'secondary', onclick: () => ctx.go(`clients/${clientId}/plan`) }, 'Discard changes');

  function errorCells(error) {
    const cells = new Set();
    const where = parseField(error.field);
    if (!where || !state.rules[where.rule]) {
      return cells;
    }
    const rule = state.rules[where.rule];
    let phases = rule.phases.filter((p) => PHASES.includes(p));
    let rowList = rows().filter((row) => phases.some((p) => covers(rule, row, p)));
    if (where.key === 'phases' && where.index !== null) {
      phases = [rule.phases[where.index]];
    }
    if ((where.key === 'roles' || where.key === 'endpoints') && where.index !== null) {
      const name = rule[where.key][where.index];
      rowList = [{ kind: where.key === 'roles' ? 'role' : 'endpoint', name }];
    }
    for (const row of rowList) {
      for (const phase of phases) {
        cells.add(cellId(row, phase));
      }
    }
    return cells;
  }

  // The grid can show what applies at one severity: rules that start above it are dimmed.
  const severityShown = select([['', 'every severity'], ...SEVERITIES.map((x) => [x, x])], '', { name: 'severity-shown' });
  severityShown.addEventListener('change', () => renderGrid());
  const rank = (sev) => SEVERITIES.indexOf(sev || 'low');

  function chip(rule, row) {
    const parts = [];
    if (row.kind === 'role') {
      parts.push((rule.channels && rule.channels.length) ? rule.channels.join('+') : 'own channels');
    } else {
      parts.push(endpointType[row.name] === 'webhook' ? 'webhook' : 'chat');
    }
    parts.push(`after ${rule.delay || '0s'}`);
    if (rule.repeat) parts.push(`every ${rule.repeat}`);
    const extra = [];
    if ((rule.min_severity || 'low') !== 'low') extra.push(`≥ ${rule.min_severity}`);
    if (rule.quiet_hours === 'ignore') extra.push('ignores quiet hours');
    if (rule.escalate) extra.push(`escalates after ${rule.escalate.after} to ${rule.escalate.to_roles.join(', ')}`);
    const off = severityShown.value && rank(rule.min_severity) > rank(severityShown.value);
    return h('li', { class: `chip${off ? ' off' : ''}` },
      h('span', { class: 'rule-id' }, rule.id), off ? h('span', { class: 'visually-hidden' }, ` (not at ${severityShown.value})`) : null, ' ',
      h('span', { class: 'how' }, parts.join(' · ')),
      extra.length ? h('span', { class: 'extra' }, extra.join(' · ')) : null);
  }

  function renderGrid() {
    const rowList = rows();
    const cells = state.error ? state.error.cells : new Set();
    const head = h('tr', {}, h('th', { scope: 'col' }, 'Role / endpoint'),
      PHASES.map((p) => h('th', { scope: 'col' }, p.replace('_', ' '))));
    const body = rowList.map((row) => h('tr', {},
      h('th', { scope: 'row' }, row.kind === 'role' ? row.name : h('span', {}, h('span', { class: 'tag' }, endpointType[row.name] || 'endpoint'), ' ', row.name)),
      PHASES.map((phase) => {
        const id = cellId(row, phase);
        const rules = state.rules.filter((r) => covers(r, row, phase));
        const bad = cells.has(id);
        const label = `${row.name} in ${phase}: ${rules.length ? rules.map((r) => r.id).join(', ') : 'nobody told'}`;
        return h('td', { id, class: `cell${bad ? ' invalid' : ''}${rules.length ? '' : ' empty'}`, dataset: { row: rowKey(row.kind, row.name), phase } },
          rules.length ? h('ul', {}, rules.map((r) => chip(r, row))) : h('span', { class: 'none' }, '—'),
          bad ? h('p', { class: 'cell-error', role: 'alert' }, state.error.message) : null,
          admin ? h('button', { type: 'button', class: 'cell-edit', 'aria-label': `Edit ${label}`, 'aria-invalid': bad ? 'true' : null, onclick: () => openEditor(row, phase) }, 'Edit') : null);
      })));
    clear(gridSlot,
      h('div', { class: 'table-wrap matrix-wrap' },
        h('table', { class: 'matrix' },
          h('caption', {}, `Contact matrix of ${client.name}${state.dirty ? ' (unsaved changes)' : ''}`),
          h('thead', {}, head), h('tbody', {}, body))),
      rowList.length ? null : h('p', {}, 'No roles or endpoints yet: add contacts with roles first.'));
  }

  function renderMessages() {
    const parts = [];
    if (state.error) {
      parts.push(h('div', { class: 'error', role: 'alert' },
        h('p', {}, `The server refused the plan: ${state.error.message}`),
        state.error.field ? h('p', {}, `Field: `, h('code', {}, state.error.field)) : null,
        state.error.cells.size ? h('p', {}, h('a', { href: `#${[...state.error.cells][0]}`, onclick: (e) => { e.preventDefault(); const el = document.getElementById([...state.error.cells][0]); const b = el && el.querySelector('button'); (b || el).focus(); } }, 'Go to the cell')) : null));
    }
    if (state.warnings.length) {
      parts.push(h('div', { class: 'notice' }, h('p', {}, 'Warnings:'),
        h('ul', {}, state.warnings.map((w) => h('li', {}, w)))));
    }
    clear(messageSlot, parts);
  }

  function refresh() {
    renderGrid();
    renderMessages();
    saveButton.disabled = !admin || !state.dirty;
    revertButton.hidden = !state.dirty;
  }

  function uniqueId(wish) {
    let id = wish.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60);
    let n = 2;
    const taken = new Set(state.rules.map((r) => r.id));
    const start = id;
    while (taken.has(id)) {
      id = `${start}-${n}`;
      n += 1;
    }
    return id;
  }

  function ruleFieldset(rule, row, phase, working) {
    const index = working.indexOf(rule);
    const n = `r${index}`;
    const otherCells = rows().reduce((sum, r) => sum + PHASES.filter((p) => covers(rule, r, p)).length, 0) - 1;
    const channelBoxes = PERSON_CHANNELS.map((ch) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: `${n}-channels`, value: ch, checked: (rule.channels || []).includes(ch) }), ` ${ch}`));
    const phaseBoxes = PHASES.map((p) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: `${n}-phases`, value: p, checked: rule.phases.includes(p) }), ` ${p.replace('_', ' ')}`));
    const removable = rule.phases.length === 1 || ((rule.roles || []).length + (rule.endpoints || []).length) === 1;
    return h('fieldset', { class: 'rule', dataset: { rule: String(index) } },
      h('legend', {}, `Rule ${rule.id}`),
      otherCells > 0 ? h('p', { class: 'hint' }, `This rule also covers ${otherCells} other cell${otherCells > 1 ? 's' : ''}: changes apply there too.`) : null,
      h('div', { class: 'grid' },
        field('Rule id', h('input', { name: `${n}-id`, value: rule.id, required: true })),
        field('Delay', h('input', { name: `${n}-delay`, value: rule.delay || '0s' }), 'e.g. 0s, 15m, 1h30m'),
        field('Repeat every', h('input', { name: `${n}-repeat`, value: rule.repeat || '' }), 'empty: no repeat'),
        field('Minimum severity', select(SEVERITIES, rule.min_severity || 'low', { name: `${n}-min_severity` })),
        field('Quiet hours', select([['respect', 'respect'], ['ignore', 'ignore']], rule.quiet_hours || 'respect', { name: `${n}-quiet_hours` })),
        field('Roles', h('input', { name: `${n}-roles`, value: (rule.roles || []).join(', ') }), 'comma-separated'),
        field('Endpoints', h('input', { name: `${n}-endpoints`, value: (rule.endpoints || []).join(', ') }), 'comma-separated'),
        field('Escalate after', h('input', { name: `${n}-escalate_after`, value: rule.escalate ? rule.escalate.after : '' }), 'empty: no escalation'),
        field('Escalate to roles', h('input', { name: `${n}-escalate_to`, value: rule.escalate ? rule.escalate.to_roles.join(', ') : '' }))),
      h('fieldset', {}, h('legend', {}, 'Channels for people (empty: their own)'), channelBoxes),
      h('fieldset', {}, h('legend', {}, 'Phases'), phaseBoxes),
      h('div', { class: 'row-buttons' },
        h('button', { type: 'button', class: 'small secondary', disabled: !removable,
          title: removable ? null : 'the rule covers several phases and several roles: change its phases or roles instead',
          onclick: () => { readEditor(working); removeCell(working, rule, row, phase); fillEditor(row, phase, working); } }, `Remove ${row.name} in ${phase} from this rule`),
        h('button', { type: 'button', class: 'small danger', onclick: () => { readEditor(working); working.splice(working.indexOf(rule), 1); fillEditor(row, phase, working); } }, `Delete rule ${rule.id}`)));
  }

  function removeCell(working, rule, row, phase) {
    const key = row.kind === 'role' ? 'roles' : 'endpoints';
    const reach = (rule.roles || []).length + (rule.endpoints || []).length;
    if (rule.phases.length === 1 && reach === 1) {
      working.splice(working.indexOf(rule), 1);
    } else if (rule.phases.length === 1) {
      rule[key] = rule[key].filter((x) => x !== row.name);
    } else {
      rule.phases = rule.phases.filter((p) => p !== phase);
    }
  }

  // Reads the dialog's fields back into the working copy of the rules.
  function readEditor(working) {
    const form = dialog.querySelector('form');
    const f = new FormData(form);
    for (const fs of form.querySelectorAll('fieldset.rule')) {
      const rule = working[Number(fs.dataset.rule)];
      const n = `r${fs.dataset.rule}`;
      rule.id = f.get(`${n}-id`).trim();
      rule.delay = f.get(`${n}-delay`).trim() || '0s';
      rule.repeat = f.get(`${n}-repeat`).trim() || undefined;
      rule.min_severity = f.get(`${n}-min_severity`);
      rule.quiet_hours = f.get(`${n}-quiet_hours`);
      rule.roles = list_of(f.get(`${n}-roles`));
      rule.endpoints = list_of(f.get(`${n}-endpoints`));
      rule.channels = f.getAll(`${n}-channels`);
      rule.phases = f.getAll(`${n}-phases`);
      const after = f.get(`${n}-escalate_after`).trim();
      const to = list_of(f.get(`${n}-escalate_to`));
      rule.escalate = after || to.length ? { after, to_roles: to } : undefined;
    }
  }

  function fillEditor(row, phase, working) {
    const inCell = working.filter((r) => covers(r, row, phase));
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'cell-editor-title' }, `${row.name} in ${phase.replace('_', ' ')}`),
      inCell.length ? inCell.map((r) => ruleFieldset(r, row, phase, working))
        : h('p', {}, 'No rule reaches this cell.'),
      h('div', { class: 'row-buttons' },
        h('button', { type: 'button', class: 'secondary', onclick: () => {
          readEditor(working);
          const rule = { id: uniqueId(`${row.name}-${phase}`), phases: [phase], min_severity: 'low', delay: '0s', quiet_hours: 'respect' };
          rule[row.kind === 'role' ? 'roles' : 'endpoints'] = [row.name];
          if (row.kind === 'role') rule.channels = ['email'];
          working.push(rule);
          fillEditor(row, phase, working);
        } }, 'Add a rule for this cell')),
      h('div', { class: 'row-buttons end' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'),
        h('button', { type: 'submit', value: 'apply' }, 'Apply')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      readEditor(working);
      state.rules = working.map(cleanRule);
      state.dirty = true;
      state.error = null;
      dialog.close();
      refresh();
      ctx.announce('Changed: save the plan to check and keep it');
      const cell = document.getElementById(cellId(row, phase));
      const b = cell && cell.querySelector('button');
      if (b) b.focus();
    });
    clear(dialog, form);
    const first = form.querySelector('input');
    if (first) first.focus();
  }

  function openEditor(row, phase) {
    const working = state.rules.map((r) => JSON.parse(JSON.stringify(r)));
    fillEditor(row, phase, working);
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector('input');
    if (first) first.focus();
  }

  async function save() {
    saveButton.disabled = true;
    try {
      const saved = await api.put(`${base}/plan`, { rules: state.rules.map(cleanRule) });
      state.rules = saved.rules.map(cleanRule);
      state.version = saved.version;
      state.warnings = saved.warnings || [];
      state.error = null;
      state.dirty = false;
      refresh();
      versionLine.textContent = `Version ${state.version}.`;
      ctx.announce(`Plan saved as version ${saved.version}`);
    } catch (err) {
      if (err.status === 401) return;
      state.error = { message: err.message, field: err.field, cells: err.field ? errorCells(err) : new Set() };
      refresh();
      const first = [...state.error.cells][0];
      const el = first && document.getElementById(first);
      const b = el && el.querySelector('button');
      if (b) b.focus();
    }
  }

  // Preview: who would be told what, for a phase and severity, from the saved plan.
  const previewSlot = h('div', { 'aria-live': 'polite' });
  const previewForm = h('form', { class: 'card inline', 'aria-labelledby': 'preview-title' },
    h('h2', { id: 'preview-title' }, 'Preview'),
    h('p', { class: 'hint' }, 'Who would be told what, from the saved plan. Nothing is sent.'),
    h('div', { class: 'grid' },
      field('Phase', select(PHASES, 'containment', { name: 'phase' })),
      field('Severity', select(SEVERITIES, 'high', { name: 'severity' })),
      field('At (UTC, optional)', h('input', { name: 'at', type: 'datetime-local' }))),
    h('button', { type: 'submit' }, 'Preview'),
    previewSlot);
  previewForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(previewForm);
    const body = { phase: f.get('phase'), severity: f.get('severity') };
    if (f.get('at')) body.at = `${f.get('at').length === 16 ? `${f.get('at')}:00` : f.get('at')}Z`;
    try {
      const p = await api.post(`${base}/plan/preview`, body);
      const rowsOut = p.messages.map((m) => h('tr', {},
        h('td', {}, m.contact ? `${m.name} (${m.contact})` : `endpoint ${m.endpoint}`),
        h('td', {}, m.role || '—'), h('td', {}, m.channel), h('td', {}, m.rule), h('td', {}, m.delay),
        h('td', {}, time(m.send_at), m.deferred_by_quiet_hours ? ' (after quiet hours)' : ''),
        h('td', {}, m.repeat ? `every ${m.repeat}` : '—')));
      clear(previewSlot,
        h('p', {}, `${p.messages.length} message${p.messages.length === 1 ? '' : 's'} for ${p.phase} at severity ${p.severity}.`, state.dirty ? h('strong', {}, ' Unsaved changes are not in this preview.') : null),
        p.messages.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'preview' },
          h('caption', {}, 'Messages'),
          h('thead', {}, h('tr', {}, ['Who', 'Role', 'Channel', 'Rule', 'Delay', 'Sent at', 'Repeat'].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, rowsOut))) : null,
        p.escalations.length ? h('div', {}, h('h3', {}, 'Escalations'), h('ul', {}, p.escalations.map((x) =>
          h('li', {}, `${x.rule}: after ${x.after} (at `, time(x.due_at), `) to ${x.to_roles.join(', ')} — ${x.messages.length} message(s), unless ${x.unless}`)))) : null,
        p.warnings.length ? h('ul', { class: 'warnings' }, p.warnings.map((w) => h('li', {}, w))) : null);
    } catch (err) {
      clear(previewSlot, errorBox(err));
    }
  });

  const versionLine = h('span', {}, stored.version ? `Version ${stored.version}.` : 'No plan saved yet.');
  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/clients' }, 'Clients'), ' / ',
      h('a', { href: `#/clients/${api.seg(clientId)}` }, client.id), ' / contact matrix'),
    h('h1', {}, `Contact matrix: ${client.name}`),
    h('p', {}, versionLine, ' ', admin ? 'Edit a cell, then save: the server checks the whole plan before keeping it.' : 'Read-only: changing the plan needs the admin scope.'),
    messageSlot,
    h('div', { class: 'row-buttons' }, field('Show the matrix at severity', severityShown)),
    gridSlot,
    admin ? h('div', { class: 'row-buttons' }, saveButton, revertButton) : null,
    previewForm,
    dialog);
  refresh();
}
