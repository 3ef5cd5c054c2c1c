// Clients, and per client its contacts (time zone, quiet hours) and endpoints (secrets are
// write-only: the console never shows one, it can only replace them).
import * as api from './api.js';
import { h, clear, field, select, table, errorBox, PERSON_CHANNELS } from './dom.js';

const ENDPOINT_TYPES = ['slack', 'teams', 'mattermost', 'discord', 'googlechat', 'webhook'];

// Shows the server's error next to the form, and marks the field it names.
function showFormError(form, slot, err) {
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  const control = err.field && form.querySelector(`[name="${CSS.escape(err.field.split(/[.[]/)[0])}"]`);
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
  clear(slot, errorBox(err));
}

const list_of = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

export async function list(main, ctx) {
  const { items } = await api.get('/v1/clients');
  const rows = items.map((c) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/clients/${api.seg(c.id)}` }, c.id)),
    h('td', {}, c.name), h('td', {}, c.timezone), h('td', {}, c.locale),
    h('td', { class: 'actions' },
      h('a', { href: `#/clients/${api.seg(c.id)}` }, 'Contacts & endpoints'), ' ',
      h('a', { href: `#/clients/${api.seg(c.id)}/plan` }, 'Contact matrix'),
      ctx.can('audit') ? [' ', h('a', { href: `#/deliveries?client=${api.seg(c.id)}` }, 'Deliveries')] : null)));
  clear(main,
    h('h1', {}, 'Clients'),
    items.length ? table('Every client Herald notifies for', ['Id', 'Name', 'Time zone', 'Locale', ''], rows)
      : h('p', {}, 'No clients yet.'),
    ctx.can('admin') ? clientForm(ctx) : null);
}

function clientForm(ctx) {
  const slot = h('div', {});
  const form = h('form', { class: 'card', 'aria-labelledby': 'client-form-title' },
    h('h2', { id: 'client-form-title' }, 'Add or change a client'),
    h('div', { class: 'grid' },
      field('Id', h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9._-]{1,64}' })),
      field('Name', h('input', { name: 'name', required: true })),
      field('Time zone', h('input', { name: 'timezone', value: 'UTC' }), 'IANA, e.g. Europe/Berlin'),
      field('Locale', h('input', { name: 'locale', value: 'en' }))),
    slot, h('button', { type: 'submit' }, 'Save client'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    try {
      await api.put(`/v1/clients/${api.seg(f.get('id'))}`,
        { name: f.get('name'), timezone: f.get('timezone') || 'UTC', locale: f.get('locale') || 'en' });
      ctx.announce(`Client ${f.get('id')} saved`);
      ctx.go('clients');
    } catch (err) {
      showFormError(form, slot, err);
    }
  });
  return form;
}

export async function detail(main, ctx) {
  const [id] = ctx.params;
  const base = `/v1/clients/${api.seg(id)}`;
  const [client, contacts, endpoints] = await Promise.all([
    api.get(base), api.get(`${base}/contacts`), api.get(`${base}/endpoints`)]);
  const admin = ctx.can('admin');
  const contactSlot = h('div', {});
  const endpointSlot = h('div', {});

  const contactRows = contacts.items.map((c) => h('tr', {},
    h('th', { scope: 'row' }, c.id), h('td', {}, c.name), h('td', {}, c.roles.join(', ')),
    h('td', {}, c.email || '—'), h('td', {}, c.phone || '—'), h('td', {}, c.timezone),
    h('td', {}, c.quiet_hours ? `${c.quiet_hours.start}–${c.quiet_hours.end}` : 'none'),
    h('td', {}, c.channels.length ? c.channels.join(' → ') : 'any'),
    admin ? h('td', { class: 'actions' },
      h('button', { type: 'button', class: 'small', onclick: () => contactSlot.replaceChildren(contactForm(ctx, base, c)) }, `Edit ${c.id}`),
      h('button', { type: 'button', class: 'small danger', onclick: () => remove(ctx, `${base}/contacts/${api.seg(c.id)}`, `contact ${c.id}`) }, `Delete ${c.id}`)) : null));

  const endpointRows = endpoints.items.map((e) => h('tr', {},
    h('th', { scope: 'row' }, e.id), h('td', {}, e.type), h('td', { class: 'mono' }, e.url),
    h('td', {}, e.enabled ? 'yes' : 'paused'),
    h('td', {}, e.type === 'webhook' ? `${(e.secrets || []).length} (write-only)` : '—'),
    admin ? h('td', { class: 'actions' },
      h('button', { type: 'button', class: 'small', onclick: () => endpointSlot.replaceChildren(endpointForm(ctx, base, e)) }, `Edit ${e.id}`),
      h('button', { type: 'button', class: 'small danger', onclick: () => remove(ctx, `${base}/endpoints/${api.seg(e.id)}`, `endpoint ${e.id}`) }, `Delete ${e.id}`)) : null));

  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/clients' }, 'Clients'), ' / ', client.id),
    h('h1', {}, client.name),
    h('p', {}, `Time zone ${client.timezone}, locale ${client.locale}. `,
      h('a', { href: `#/clients/${api.seg(id)}/plan` }, 'Contact matrix'),
      ctx.can('audit') ? [' · ', h('a', { href: `#/deliveries?client=${api.seg(id)}` }, 'Delivery log')] : null),
    h('section', { 'aria-labelledby': 'contacts-title' },
      h('h2', { id: 'contacts-title' }, 'Contacts'),
      contacts.items.length ? table(`Contacts of ${client.name}`,
        ['Id', 'Name', 'Roles', 'Email', 'Phone', 'Time zone', 'Quiet hours', 'Channels', admin ? '' : null].filter((x) => x !== null),
        contactRows) : h('p', {}, 'No contacts yet.'),
      admin ? h('button', { type: 'button', onclick: () => contactSlot.replaceChildren(contactForm(ctx, base, null)) }, 'Add a contact') : null,
      contactSlot),
    h('section', { 'aria-labelledby': 'endpoints-title' },
      h('h2', { id: 'endpoints-title' }, 'Endpoints'),
      h('p', { class: 'hint' }, 'Chat rooms and webhooks. URLs are shown up to the host and ' +
        'secrets never: both are credentials. A secret can be replaced, not read.'),
      endpoints.items.length ? table(`Endpoints of ${client.name}`,
        ['Id', 'Type', 'URL', 'Enabled', 'Secrets', admin ? '' : null].filter((x) => x !== null),
        endpointRows) : h('p', {}, 'No endpoints yet.'),
      admin ? h('button', { type: 'button', onclick: () => endpointSlot.replaceChildren(endpointForm(ctx, base, null)) }, 'Add an endpoint') : null,
      endpointSlot));
}

async function remove(ctx, path, what) {
  if (!window.confirm(`Delete ${what}?`)) {
    return;
  }
  try {
    await api.del(path);
    ctx.announce(`Deleted ${what}`);
    ctx.go(location.hash.replace(/^#\//, ''));
  } catch (err) {
    ctx.announce(err.message);
  }
}

function contactForm(ctx, base, c) {
  const slot = h('div', {});
  const channelBoxes = PERSON_CHANNELS.map((ch) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'channels', value: ch, checked: c ? c.channels.includes(ch) : false }), ` ${ch}`));
  const form = h('form', { class: 'card', 'aria-labelledby': 'contact-form-title' },
    h('h3', { id: 'contact-form-title' }, c ? `Change contact ${c.id}` : 'Add a contact'),
    h('div', { class: 'grid' },
      field('Id', h('input', { name: 'id', required: true, value: c ? c.id : '', readonly: c ? true : null })),
      field('Name', h('input', { name: 'name', required: true, value: c ? c.name : '' })),
      field('Roles', h('input', { name: 'roles', value: c ? c.roles.join(', ') : '' }), 'comma-separated, e.g. legal, executive'),
      field('Email', h('input', { name: 'email', type: 'email', value: c ? c.email : '' })),
      field('Phone', h('input', { name: 'phone', type: 'tel', value: c ? c.phone : '' }), 'E.164, e.g. +15551234567'),
      field('Time zone', h('input', { name: 'timezone', value: c ? c.timezone : 'UTC' })),
      field('Quiet hours start', h('input', { name: 'quiet_hours', type: 'time', value: c && c.quiet_hours ? c.quiet_hours.start : '' })),
      field('Quiet hours end', h('input', { name: 'quiet_end', type: 'time', value: c && c.quiet_hours ? c.quiet_hours.end : '' }))),
    h('fieldset', {}, h('legend', {}, 'Channels, in order of preference'), channelBoxes),
    slot,
    h('button', { type: 'submit' }, 'Save contact'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const start = f.get('quiet_hours');
    const end = f.get('quiet_end');
    const body = {
      name: f.get('name'), roles: list_of(f.get('roles')), email: f.get('email'),
      phone: f.get('phone'), timezone: f.get('timezone') || 'UTC',
      quiet_hours: start && end ? { start, end } : null, channels: f.getAll('channels'),
    };
    try {
      await api.put(`${base}/contacts/${api.seg(f.get('id'))}`, body);
      ctx.announce(`Contact ${f.get('id')} saved`);
      ctx.go(location.hash.replace(/^#\//, ''));
    } catch (err) {
      showFormError(form, slot, err);
    }
  });
  setTimeout(() => form.querySelector('input:not([readonly])').focus());
  return form;
}

function endpointForm(ctx, base, e) {
  const slot = h('div', {});
  const form = h('form', { class: 'card', 'aria-labelledby': 'endpoint-form-title' },
    h('h3', { id: 'endpoint-form-title' }, e ? `Change endpoint ${e.id}` : 'Add an endpoint'),
    h('div', { class: 'grid' },
      field('Id', h('input', { name: 'id', required: true, value: e ? e.id : '', readonly: e ? true : null })),
      field('Type', select(ENDPOINT_TYPES, e ? e.type : 'slack', { name: 'type' })),
      field('URL', h('input', { name: 'url', type: 'url', required: true, autocomplete: 'off' }),
        e ? 'the stored URL is not shown: enter it again' : null),
      field('New signing secret', h('input', { name: 'secret', type: 'password', autocomplete: 'new-password' }),
        'webhooks only; whsec_…; empty keeps the current secrets (a new webhook gets one generated)'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'enabled', checked: e ? e.enabled : true }), ' Enabled')),
    slot,
    h('button', { type: 'submit' }, 'Save endpoint'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { type: f.get('type'), url: f.get('url'), enabled: f.get('enabled') === 'on' };
    if (f.get('secret')) {
      body.secret = f.get('secret');
    }
    try {
      const saved = await api.put(`${base}/endpoints/${api.seg(f.get('id'))}`, body);
      form.querySelector('[name=secret]').value = '';
      if (saved && saved.secret && saved.secret !== 'whsec_[redacted]') {
        // Herald generated it: shown this once so the receiver can be configured.
        clear(slot, h('div', { class: 'notice', role: 'alert' },
          h('p', {}, 'Herald generated this signing secret. Copy it to the receiver now: it ' +
            'will not be shown again.'),
          h('code', { class: 'secret' }, saved.secret)));
        ctx.announce(`Endpoint ${f.get('id')} saved`);
        return;
      }
      ctx.announce(`Endpoint ${f.get('id')} saved`);
      ctx.go(location.hash.replace(/^#\//, ''));
    } catch (err) {
      showFormError(form, slot, err);
    }
  });
  setTimeout(() => form.querySelector('input:not([readonly])').focus());
  return form;
}
