// The audit trail: records with filters, the hash chain's verification, and the export.
import * as api from './api.js';
import { h, clear, field, select, table, labelCells, errorBox, time, toUtc, fromUtc } from './dom.js';

const KINDS = ['event.received', 'client.put', 'client.delete', 'contact.put', 'contact.delete',
  'endpoint.put', 'endpoint.delete', 'endpoint.disabled', 'plan.put', 'template.put',
  'template.delete', 'delivery.attempt', 'delivery.retry', 'delivery.fallback', 'ack.received',
  'escalation.fired'];

export async function render(main, ctx) {
  const q = ctx.query;
  const verifySlot = h('div', { 'aria-live': 'polite' }, 'Verifying the chain…');
  const form = h('form', { class: 'card filters', 'aria-label': 'Filter audit records' },
    h('div', { class: 'grid' },
      field('Kind', select(['', ...KINDS], q.kind || '', { name: 'kind' })),
      field('Client', h('input', { name: 'client', value: q.client || '' })),
      field('Actor', h('input', { name: 'actor', value: q.actor || '' }), 'token name or dispatcher'),
      field('Subject contains', h('input', { name: 'subject', value: q.subject || '' })),
      field('Since (UTC)', h('input', { type: 'datetime-local', step: 1, name: 'since', value: fromUtc(q.since) })),
      field('Until (UTC)', h('input', { type: 'datetime-local', step: 1, name: 'until', value: fromUtc(q.until) }))),
    h('div', { class: 'row-buttons' }, h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'button', class: 'secondary', onclick: () => ctx.go('audit') }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const next = Object.fromEntries(['kind', 'client', 'actor', 'subject'].map((k) => [k, f.get(k)]));
    next.since = toUtc(f.get('since'));
    next.until = toUtc(f.get('until'));
    ctx.go('audit', next);
  });

  const tbody = h('tbody', {});
  const more = h('div', {});
  const counter = h('p', { class: 'hint', 'aria-live': 'polite' });
  let items = [];
  let cursor = null;
  // The server filters (kind, client, actor, time); the records are checked here again, so a
  // daemon that filters by kind only still shows the right ones. The subject is matched here.
  const keep = (r) => (!q.client || r.client === q.client) && (!q.actor || r.actor === q.actor) &&
    (!q.subject || String(r.subject || '').includes(q.subject)) &&
    (!q.since || Date.parse(r.at) >= Date.parse(q.since)) && (!q.until || Date.parse(r.at) < Date.parse(q.until));
  const serverFilters = { kind: q.kind, client: q.client, actor: q.actor, since: q.since, until: q.until };

  function row(r) {
    return h('tr', {},
      h('th', { scope: 'row' }, String(r.seq)), h('td', {}, time(r.at)), h('td', {}, r.kind),
      h('td', {}, r.actor), h('td', {}, r.client || '—'), h('td', { class: 'mono' }, r.subject || ''),
      h('td', {}, h('details', {}, h('summary', {}, 'data'), h('pre', {}, JSON.stringify(r.data, null, 2)))),
      h('td', { class: 'mono hash', title: r.hash }, (r.hash || '').slice(0, 12)));
  }

  async function load(append = false) {
    const page = await api.get(`/v1/audit${api.query({ ...serverFilters, limit: 200, cursor: append ? cursor : '' })}`);
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    const shown = items.filter(keep);
    clear(tbody, shown.map(row));
    labelCells(tbody);
    counter.textContent = `${shown.length} of ${items.length} loaded record(s) shown${cursor ? '; more can be loaded' : ''}.`;
    clear(more, cursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Load more') : null);
  }

  // The export needs the token, which a plain link cannot carry: fetched, then saved.
  const formatSelect = select([['jsonl', 'JSON lines'], ['csv', 'CSV']], 'jsonl', { name: 'format' });
  async function exportTrail() {
    const format = formatSelect.value;
    try {
      const response = await api.call('GET', `/v1/audit/export${api.query({ format, ...serverFilters })}`, undefined, { raw: true });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `herald-audit.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      ctx.announce('Export downloaded');
    } catch (err) {
      ctx.announce(err.status === 404 ? 'This Herald has no audit export yet' : `Export failed: ${err.message}`);
    }
  }

  const view = table('Audit records, in order', ['Seq', 'At', 'Kind', 'Actor', 'Client', 'Subject', 'Data', 'Hash'], []);
  view.querySelector('tbody').replaceWith(tbody);
  clear(main,
    h('h1', {}, 'Audit trail'),
    h('section', { class: 'card', 'aria-labelledby': 'chain-title' }, h('h2', { id: 'chain-title' }, 'Hash chain'), verifySlot,
      h('div', { class: 'row-buttons' }, field('Export format', formatSelect),
        h('button', { type: 'button', class: 'secondary', onclick: exportTrail }, 'Export the audit trail')),
      h('p', { class: 'hint' }, 'The export holds the records matching the filters below (all of them, not only those loaded), with their hashes, so the chain can be checked from the file.')),
    form, counter, view, more);
  await load();
  try {
    const v = await api.get('/v1/audit/verify');
    clear(verifySlot, v.ok
      ? h('p', { class: 'ok' }, `✓ The chain is intact: ${v.records} record(s) verified.`)
      : h('p', { class: 'error', role: 'alert' }, `✗ The chain is broken at record ${v.first_bad} of ${v.records}: ${v.reason}`));
  } catch (err) {
    clear(verifySlot, errorBox(err));
  }
}
