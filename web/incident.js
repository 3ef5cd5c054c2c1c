// An incident's timeline: phase changes, messages, acknowledgements and escalations on one
// time axis, with the same entries as a list below (the list is what a screen reader reads).
import * as api from './api.js';
import { h, clear, table, time } from './dom.js';

const LANES = [
  ['event', 'Phases'],
  ['message', 'Messages'],
  ['ack', 'Acknowledgements'],
  ['escalation', 'Escalations'],
];

function laneOf(entry) {
  return entry.type.startsWith('message.') ? 'message' : entry.type;
}

function describe(e) {
  switch (e.type) {
    case 'event':
      return `${e.applied ? 'phase' : 'out-of-order event, not applied:'} ${e.phase} (${e.severity}), ${e.messages} message(s)${e.summary ? ` — ${e.summary}` : ''}`;
    case 'message.delivered':
      return `${e.channel} delivered to ${e.contact || `endpoint ${e.endpoint}`}`;
    case 'message.failed':
      return `${e.channel} failed for ${e.contact || `endpoint ${e.endpoint}`}`;
    case 'ack':
      return `${e.contact} acknowledged (${e.phase}, rule ${e.rule})`;
    case 'escalation':
      return `escalation of rule ${e.rule} to ${e.to_roles.join(', ')}: ${e.status}`;
    default:
      return e.type;
  }
}

export async function render(main, ctx) {
  const [client, id] = ctx.params;
  const inc = await api.get(`/v1/incidents/${api.seg(id)}${api.query({ client })}`);
  const times = inc.timeline.map((e) => Date.parse(e.at)).filter((t) => !Number.isNaN(t));
  const start = Math.min(Date.parse(inc.opened_at), ...times);
  const end = Math.max(start + 1000, ...times);
  const pos = (iso) => ((Date.parse(iso) - start) / (end - start)) * 100;

  // Phase bands: each applied event starts a band that lasts until the next one.
  const applied = inc.timeline.filter((e) => e.type === 'event' && e.applied);
  const bands = applied.map((e, i) => {
    const band = h('div', { class: `band phase-${e.phase}`, title: `${e.phase} from ${e.at}` }, h('span', {}, e.phase.replace('_', ' ')));
    const left = pos(e.at);
    const right = i + 1 < applied.length ? pos(applied[i + 1].at) : 100;
    band.style.left = `${left}%`;
    band.style.width = `${Math.max(right - left, 0.5)}%`;
    return band;
  });

  const lanes = LANES.map(([key, label]) => h('div', { class: 'lane' },
    h('div', { class: 'lane-label' }, label),
    h('div', { class: 'lane-track' },
      key === 'event' ? bands : null,
      inc.timeline.filter((e) => laneOf(e) === key && key !== 'event').map((e) => {
        const dot = h('span', { class: `dot ${e.type.replace('.', '-')}${e.status ? ` esc-${e.status}` : ''}`, title: `${e.at}: ${describe(e)}` });
        dot.style.left = `${pos(e.at)}%`;
        return dot;
      }))));

  const rows = inc.timeline.map((e) => h('tr', { class: `t-${laneOf(e)}` },
    h('td', {}, time(e.at)), h('td', {}, e.type),
    h('td', {}, describe(e)),
    h('td', {}, e.message ? h('a', { href: `#/deliveries/${api.seg(e.message)}`, class: 'mono' }, e.message) : '')));

  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: `#/deliveries?client=${api.seg(client)}&incident=${api.seg(id)}` }, 'Deliveries of this incident')),
    h('h1', {}, `Incident ${inc.id}`, inc.drill ? h('span', { class: 'badge drill' }, 'drill') : null),
    h('p', {}, `${inc.title || '(no title)'} — ${inc.client}, severity ${inc.severity}, phase ${inc.phase}` +
      `${inc.previous_phase ? ` (before: ${inc.previous_phase})` : ''}. Opened `, time(inc.opened_at), ', phase since ', time(inc.phase_since), '.'),
    h('figure', { class: 'timeline', 'aria-label': 'Timeline chart' },
      h('div', { class: 'axis' }, h('span', {}, time(new Date(start).toISOString().replace(/\.\d+Z$/, 'Z'))), h('span', {}, time(new Date(end).toISOString().replace(/\.\d+Z$/, 'Z')))),
      lanes,
      h('figcaption', {}, `${inc.timeline.length} entries from the first to the last; the table below lists them.`)),
    table('Timeline, in time order', ['At', 'Type', 'What', 'Message'], rows),
    h('p', {}, `${inc.messages.length} message(s) in all. `, h('a', { href: `#/deliveries?client=${api.seg(client)}&incident=${api.seg(id)}` }, 'See them in the delivery log')));
}
