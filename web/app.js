// The console's shell: sign-in, the token's scopes, navigation and the hash router.
import * as api from './api.js';
import { h, clear, field, errorBox } from './dom.js';
import * as clients from './clients.js';
import * as plan from './plan.js';
import * as templates from './templates.js';
import * as deliveries from './deliveries.js';
import * as incident from './incident.js';
import * as audit from './audit.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const statusLine = document.getElementById('status');

let session = null; // {name, scopes}

function can(scope) {
  const scopes = session ? session.scopes : [];
  if (scope === 'read') {
    return scopes.includes('admin') || scopes.includes('audit');
  }
  return scopes.includes(scope);
}

// A short message for screen readers and sighted users alike.
export function announce(text) {
  statusLine.textContent = text;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { statusLine.textContent = ''; }, 6000);
}

const routes = [
  { pattern: /^clients$/, view: clients.list, needs: 'read', nav: 'clients' },
  { pattern: /^clients\/([^/]+)$/, view: clients.detail, needs: 'read', nav: 'clients' },
  { pattern: /^clients\/([^/]+)\/plan$/, view: plan.render, needs: 'read', nav: 'clients' },
  { pattern: /^templates$/, view: templates.render, needs: 'read', nav: 'templates' },
  { pattern: /^deliveries$/, view: deliveries.list, needs: 'audit', nav: 'deliveries' },
  { pattern: /^deliveries\/([^/]+)$/, view: deliveries.detail, needs: 'audit', nav: 'deliveries' },
  { pattern: /^incidents\/([^/]+)\/([^/]+)$/, view: incident.render, needs: 'audit', nav: 'deliveries' },
  { pattern: /^audit$/, view: audit.render, needs: 'audit', nav: 'audit' },
];

const navItems = [
  ['clients', 'Clients', 'read'],
  ['templates', 'Templates', 'read'],
  ['deliveries', 'Delivery log', 'audit'],
  ['audit', 'Audit trail', 'audit'],
];

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(q)) };
}

export function go(path, query = {}) {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString();
  const target = `#/${path}${q ? `?${q}` : ''}`;
  if (location.hash === target) {
    route();
  } else {
    location.hash = target;
  }
}

function defaultPath() {
  return can('read') ? 'clients' : can('audit') ? 'deliveries' : 'none';
}

function renderNav(active) {
  clear(nav, h('ul', {}, navItems.filter(([, , need]) => can(need)).map(([path, label]) =>
    h('li', {}, h('a', { href: `#/${path}`, 'aria-current': path === active ? 'page' : null },
      label)))));
  nav.hidden = false;
  clear(who,
    h('span', { class: 'token-name' }, `${session.name}`),
    h('span', { class: 'scopes' }, ` (${session.scopes.join(', ') || 'no scopes'})`),
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
  who.hidden = false;
}

function signOut() {
  api.setToken(null);
  session = null;
  nav.hidden = true;
  who.hidden = true;
  announce('Signed out');
  go('signin');
}

function signInView(message) {
  nav.hidden = true;
  who.hidden = true;
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true,
    spellcheck: 'false' });
  const errorSlot = h('div', {});
  if (message) {
    errorSlot.append(errorBox({ message }));
  }
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in to Herald'),
    h('p', {}, 'Paste an API token. It stays in this browser tab only and is forgotten when ' +
      'the tab closes.'),
    field('API token', input),
    errorSlot,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    try {
      const me = await api.call('GET', '/v1/whoami', undefined, { tokenOverride: value });
      api.setToken(value);
      session = me;
      announce(`Signed in as ${me.name}`);
      go(defaultPath());
    } catch (err) {
      clear(errorSlot, errorBox(err.status === 401 ? { message: 'That token is not known to ' +
        'this Herald.' } : err));
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  });
  clear(main, form);
  input.focus();
}

async function route() {
  const { path, query } = parseHash();
  if (!api.token()) {
    signInView();
    return;
  }
  if (!session) {
    try {
      session = await api.get('/v1/whoami');
    } catch (err) {
      if (err.status !== 401) {
        clear(main, errorBox(err));
      }
      return;
    }
  }
  if (path === 'signin' || path === '') {
    go(defaultPath());
    return;
  }
  if (path === 'none') {
    renderNav('');
    clear(main, h('h1', { tabindex: '-1' }, 'Nothing to show'),
      h('p', {}, `The token "${session.name}" holds no scope the console uses (admin or ` +
        'audit). An ingest token sends events only.'));
    return;
  }
  for (const r of routes) {
    const m = path.match(r.pattern);
    if (!m) {
      continue;
    }
    renderNav(r.nav);
    if (!can(r.needs)) {
      clear(main, h('h1', { tabindex: '-1' }, 'Not allowed'),
        h('p', {}, `This needs the ${r.needs === 'read' ? 'admin or audit' : r.needs} scope, ` +
          `which the token "${session.name}" does not hold.`));
      return;
    }
    const params = m.slice(1).map(decodeURIComponent);
    const ctx = { params, query, can, go, announce, session };
    clear(main, h('p', { class: 'loading' }, 'Loading…'));
    try {
      await r.view(main, ctx);
    } catch (err) {
      if (err.status !== 401) {
        clear(main, h('h1', { tabindex: '-1' }, 'Something went wrong'), errorBox(err));
      }
    }
    const heading = main.querySelector('h1');
    if (heading && document.activeElement === document.body) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
    return;
  }
  renderNav('');
  clear(main, h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, `No page at #/${path}.`),
    h('p', {}, h('a', { href: `#/${defaultPath()}` }, 'Back to the start')));
}

api.whenUnauthorized(() => {
  api.setToken(null);
  session = null;
  signInView('The token was refused: sign in again.');
});

window.addEventListener('hashchange', route);
route();
