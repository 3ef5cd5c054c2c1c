// The delivery log: filters, a message's attempts and content, replaying a failed message.
import * as api from './api.js';
import { h, clear, field, select, table, labelCells, errorBox, time, toUtc, fromUtc, DELIVERY_CHANNELS, STATUSES } from './dom.js';

const FILTERS = ['client', 'incident', 'channel', 'status', 'since', 'until'];


function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status);
}

async function replay(ctx, id) {
  try {
    await api.post(`/v1/deliveries/${api.seg(id)}/retry`);
    ctx.announce(`Message ${id} is queued again`);
    return true;
  } catch (err) {
    ctx.announce(`Replay refused: ${err.message}`);
    return false;
  }
}

export async function list(main, ctx) {
  const q = ctx.query;
  const clients = ctx.can('read') ? (await api.get('/v1/clients')).items : [];
  const form = h('form', { class: 'card filters', 'aria-label': 'Filter the delivery log' },
    h('div', { class: 'grid' },
      field('Client', clients.length ? select([['', 'any'], ...clients.map((c) => [c.id, c.id])], q.client || '', { name: 'client' })
        : h('input', { name: 'client', value: q.client || '' })),
      field('Incident', h('input', { name: 'incident', value: q.incident || '' })),
      field('Channel', select(['', ...DELIVERY_CHANNELS], q.channel || '', { name: 'channel' })),
      field('Status', select(['', ...STATUSES], q.status || '', { name: 'status' })),
      field('Created since (UTC)', h('input', { type: 'datetime-local', step: 1, name: 'since', value: fromUtc(q.since) })),
      field('Created until (UTC)', h('input', { type: 'datetime-local', step: 1, name: 'until', value: fromUtc(q.until) }))),
    h('div', { class: 'row-buttons' },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'button', class: 'secondary', onclick: () => ctx.go('deliveries') }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const next = {};
    for (const k of FILTERS) {
      const v = f.get(k);
      next[k] = k === 'since' || k === 'until' ? toUtc(v) : v;
    }
    ctx.go('deliveries', next);
  });

  const tbody = h('tbody', {});
  const more = h('div', {});
  const counter = h('p', { class: 'hint', 'aria-live': 'polite' });
  const auto = h('input', { type: 'checkbox', checked: true });
  let items = [];
  let cursor = null;

  function row(d) {
    const who = d.contact ? `${d.contact}${d.role ? ` (${d.role})` : ''}` : d.endpoint ? `endpoint ${d.endpoint}` : '—';
    return h('tr', { dataset: { id: d.id, status: d.status } },
      h('th', { scope: 'row' }, h('a', { href: `#/deliveries/${api.seg(d.id)}`, class: 'mono' }, d.id)),
      h('td', {}, time(d.created_at)),
      h('td', {}, d.client),
      h('td', {}, h('a', { href: `#/incidents/${api.seg(d.client)}/${api.seg(d.incident)}` }, d.incident)),
      h('td', {}, d.phase),
      h('td', {}, who),
      h('td', {}, d.channel),
      h('td', {}, statusBadge(d.status), d.acknowledged_at ? ' ✓ acknowledged' : ''),
      h('td', {}, String(d.attempts)),
      h('td', { class: 'err-text' }, d.last_error || ''),
      h('td', { class: 'actions' }, d.status === 'failed' && ctx.can('admin')
        ? h('button', { type: 'button', class: 'small', onclick: async () => { if (await replay(ctx, d.id)) load(); } }, `Replay ${d.id}`) : null));
  }

  async function load(append = false) {
    const params = {};
    for (const k of FILTERS) params[k] = q[k];
    params.limit = 50;
    if (append) params.cursor = cursor;
    const page = await api.get(`/v1/deliveries${api.query(params)}`);
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    clear(tbody, items.map(row));
    labelCells(tbody);
    counter.textContent = `${items.length} message${items.length === 1 ? '' : 's'} shown${cursor ? ', more below' : ''}.`;
    clear(more, cursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Load more') : null);
  }

  const view = h('section', {},
    table('Messages, oldest first', ['Id', 'Created', 'Client', 'Incident', 'Phase', 'To', 'Channel', 'Status', 'Attempts', 'Last error', ''], [], { class: 'log' }));
  view.querySelector('tbody').replaceWith(tbody);
  clear(main,
    h('h1', {}, 'Delivery log'),
    form,
    q.client && q.incident ? h('p', {}, h('a', { href: `#/incidents/${api.seg(q.client)}/${api.seg(q.incident)}` }, `Timeline of incident ${q.incident}`)) : null,
    h('div', { class: 'row-buttons' },
      h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh'),
      h('label', { class: 'check' }, auto, ' Refresh every 3 seconds')),
    counter, view, more);
  await load();
  // Poll while this view is on screen, so new deliveries show up as they are made.
  const timer = setInterval(() => {
    if (!main.contains(tbody)) {
      clearInterval(timer);
      return;
    }
    if (auto.checked && !cursor) {
      load().catch(() => {});
    }
  }, 3000);
}

export async function detail(main, ctx) {
  const [id] = ctx.params;
  const d = await api.get(`/v1/deliveries/${api.seg(id)}`);
  const facts = [
    ['Status', statusBadge(d.status)], ['Client', d.client],
    ['Incident', h('a', { href: `#/incidents/${api.seg(d.client)}/${api.seg(d.incident)}` }, d.incident)],
    ['Phase', d.phase], ['Kind', d.kind], ['Rule', d.rule], ['To', d.contact || (d.endpoint ? `endpoint ${d.endpoint}` : '—')],
    ['Role', d.role || '—'], ['Channel', d.channel], ['Update', String(d.update_number)],
    ['Created', time(d.created_at)], ['Planned', time(d.planned_at)], ['Send at', time(d.send_at)],
    ['Delivered', time(d.delivered_at)], ['Acknowledged', time(d.acknowledged_at)],
    ['Attempts', String(d.attempts)], ['Last error', d.last_error || '—'],
  ];
  const attempts = (d.attempts_log || []).map((a) => h('tr', {},
    h('th', { scope: 'row' }, String(a.number)), h('td', {}, time(a.started_at)),
    h('td', {}, `${a.duration_ms} ms`), h('td', {}, h('span', { class: `badge outcome-${a.outcome}` }, a.outcome)),
    h('td', {}, a.status_code === null || a.status_code === undefined ? '—' : String(a.status_code)),
    h('td', { class: 'err-text' }, a.error || '')));
  const c = d.content;
  const replayButton = d.status === 'failed' && ctx.can('admin')
    ? h('button', { type: 'button', onclick: async () => { if (await replay(ctx, d.id)) ctx.go(`deliveries/${d.id}`); } }, 'Replay this message') : null;
  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/deliveries' }, 'Delivery log'), ' / message'),
    h('h1', {}, 'Message ', h('span', { class: 'mono' }, d.id)),
    replayButton,
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('section', { 'aria-labelledby': 'attempts-title' }, h('h2', { id: 'attempts-title' }, 'Attempts'),
      attempts.length ? table('Every attempt to deliver this message', ['#', 'Started', 'Took', 'Outcome', 'Status code', 'Error'], attempts)
        : h('p', {}, 'No attempt yet.')),
    c ? h('section', { 'aria-labelledby': 'content-title' }, h('h2', { id: 'content-title' }, 'Content as sent'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Address'), h('dd', {}, c.address || '—'),
        c.subject ? [h('dt', {}, 'Subject'), h('dd', {}, c.subject)] : null,
        h('dt', {}, 'SHA-256'), h('dd', { class: 'mono' }, c.sha256 || '—'),
        d.templates ? [h('dt', {}, 'Templates'), h('dd', {}, d.templates.join(', '))] : null),
      h('pre', { class: 'rendered', tabindex: '0', 'aria-label': 'Message body' }, c.body || '')) : null);
}

export { errorBox };
