// Herald's console in a real headless Chromium (Debian's), driven by playwright-core.
// Run by test_console_browser.py, which starts the daemon and its receivers and sets:
// HERALD_URL, HERALD_TOKENS (JSON name → token), HERALD_ARTIFACTS (screenshots on failure).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.HERALD_URL;
const TOKENS = JSON.parse(process.env.HERALD_TOKENS);
const ARTIFACTS = process.env.HERALD_ARTIFACTS || os.tmpdir();
const SLOW = Number(process.env.HERALD_E2E_SLOW || '1');
const WAIT = 30000 * SLOW;
// Set HERALD_WEB_SHOTS to a folder to keep a screenshot of every view (desktop and phone).
const SHOTS = process.env.HERALD_WEB_SHOTS;

async function shot(page, name) {
  if (SHOTS) {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  }
}

function step(text) {
  console.log(`- ${text}`);
}

async function api(method, p, token, body) {
  const r = await fetch(`${BASE}${p}`, {
    method,
    headers: { Authorization: `Bearer ${TOKENS[token]}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// Every console error and page error fails the test, except the network errors a step
// provokes on purpose (a 422 the console then shows), which that step declares.
const problems = [];
const expected = [];
function watch(page, label) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const i = expected.findIndex((re) => re.test(text));
    if (i >= 0) {
      expected.splice(i, 1);
      return;
    }
    problems.push(`${label}: console error: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error: ${err.message}`));
  page.on('requestfailed', (req) => {
    // A navigation away cancels polling requests: not a problem of the page.
    if (!/ERR_ABORTED/.test(req.failure()?.errorText || '')) {
      problems.push(`${label}: request failed: ${req.url()} ${req.failure()?.errorText}`);
    }
  });
}

async function signIn(page, token) {
  await page.goto(`${BASE}/ui/`);
  const input = page.getByLabel('API token');
  await input.waitFor();
  // The token field has focus: sign in with the keyboard alone.
  assert.equal(await input.evaluate((el) => el === document.activeElement), true, 'token field focused');
  await page.keyboard.type(TOKENS[token]);
  await page.keyboard.press('Enter');
  await page.locator('#who .token-name').filter({ hasText: token }).waitFor();
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(WAIT);
  const page = context.pages()[0] || await context.newPage();
  watch(page, 'desktop');
  try {
    await run(page, context);
  } catch (err) {
    const shot = path.join(ARTIFACTS, 'console-failure.png');
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`failed at ${page.url()}; screenshot ${shot}`);
    throw err;
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
  assert.deepEqual(expected, [], 'every expected console error happened');
  console.log('ok');
}

async function run(page, context) {
  step('/ui leads to /ui/; a wrong token is refused with a message; the right one signs in');
  await page.goto(`${BASE}/ui`);
  assert.equal(new URL(page.url()).pathname, '/ui/');
  expected.push(/status of 401/);
  await page.getByLabel('API token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not known' }).waitFor();
  await signIn(page, 'all');
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const name of ['Clients', 'Templates', 'Delivery log', 'Audit trail']) {
    await nav.getByRole('link', { name }).waitFor();
  }
  assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.token')), TOKENS.all);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

  step('clients, then one client: contacts with zone and quiet hours, endpoints without secrets');
  await page.getByRole('heading', { name: 'Clients' }).waitFor();
  await page.getByRole('link', { name: 'Contacts & endpoints' }).click();
  await page.getByRole('heading', { name: 'Acme Corp' }).waitFor();
  const contacts = page.getByRole('table', { name: 'Contacts of Acme Corp' });
  await contacts.getByText('America/New_York').waitFor();
  await contacts.getByText('22:00–07:00').waitFor();
  const endpoints = page.getByRole('table', { name: 'Endpoints of Acme Corp' });
  await endpoints.getByRole('rowheader', { name: 'siem' }).waitFor();
  const endpointText = await endpoints.innerText();
  assert.ok(!/XXXXSECRET|whsec_[A-Za-z0-9+/]{8}/.test(endpointText), `no secret shown: ${endpointText}`);
  assert.ok(endpointText.includes('(write-only)'));

  step('replace a webhook secret (write-only: the form never shows it back)');
  await page.getByRole('button', { name: 'Edit siem' }).click();
  const siemUrl = process.env.HERALD_SIEM_URL;
  await page.getByLabel('URL').fill(siemUrl);
  await page.getByLabel('New signing secret').fill(process.env.HERALD_NEW_SECRET);
  await page.getByRole('button', { name: 'Save endpoint' }).click();
  await page.locator('#status').filter({ hasText: 'Endpoint siem saved' }).waitFor();
  assert.ok(!(await page.content()).includes(process.env.HERALD_NEW_SECRET), 'the new secret is not on the page');

  step('change a contact: quiet hours and time zone, checked by the server');
  await page.getByRole('button', { name: 'Edit lee' }).click();
  await page.getByLabel('Time zone').last().fill('Mars/Olympus');
  expected.push(/status of 422/);
  await page.getByRole('button', { name: 'Save contact' }).click();
  await page.getByRole('alert').filter({ hasText: /time ?zone|Mars/i }).waitFor();
  assert.equal(await page.locator('form [name="timezone"]').last().getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Time zone').last().fill('Asia/Tokyo');
  await page.getByLabel('Quiet hours start').fill('23:00');
  await page.getByLabel('Quiet hours end').fill('06:30');
  await page.getByRole('button', { name: 'Save contact' }).click();
  await contacts.getByText('23:00–06:30').waitFor();
  const lee = await api('GET', '/v1/clients/acme/contacts/lee', 'admin');
  assert.deepEqual([lee.body.timezone, lee.body.quiet_hours], ['Asia/Tokyo', { start: '23:00', end: '06:30' }]);

  step('the contact matrix: phases across, roles and endpoints down');
  await page.goto(`${BASE}/ui/#/clients/acme/plan`);
  const matrix = page.locator('table.matrix');
  await matrix.waitFor();
  const headers = await matrix.locator('thead th').allInnerTexts();
  assert.deepEqual(headers.slice(1).map((x) => x.toLowerCase()), ['preparation', 'identification', 'containment', 'eradication', 'recovery', 'lessons learned', 'closed']);
  const legalContainment = page.locator('#cell-role-legal-containment');
  await legalContainment.getByText('contain-people').waitFor();
  assert.match(await legalContainment.innerText(), /email.*after 0s/);

  step('at severity medium, the rule that starts at high is dimmed');
  await page.getByLabel('Show the matrix at severity').selectOption('medium');
  await legalContainment.locator('.chip.off').filter({ hasText: 'contain-people' }).waitFor();
  assert.equal(await page.locator('#cell-role-siem-containment .chip.off').count(), 0, 'contain-rooms applies from low');
  await page.getByLabel('Show the matrix at severity').selectOption('');
  assert.equal(await page.locator('.chip.off').count(), 0);

  step('the keyboard opens a cell editor (a modal dialog) and Escape closes it');
  await page.getByRole('button', { name: /^Edit executive in containment/ }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').getByRole('heading', { name: 'executive in containment' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.closest('dialog') !== null), true, 'focus inside the dialog');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });

  step('edit an empty cell: add a rule for legal in recovery, save, and the server keeps it');
  await page.getByRole('button', { name: /^Edit legal in recovery/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Add a rule for this cell' }).click();
  await dialog.getByLabel('Delay').fill('10m');
  await dialog.getByLabel('Repeat every').fill('1h');
  await shot(page, 'desktop-cell-editor');
  await dialog.getByRole('button', { name: 'Apply' }).click();
  const legalRecovery = page.locator('#cell-role-legal-recovery');
  await legalRecovery.getByText('legal-recovery').waitFor();
  assert.match(await legalRecovery.innerText(), /after 10m · every 1h/);
  await page.getByRole('button', { name: 'Save plan' }).click();
  await page.locator('#status').filter({ hasText: 'Plan saved as version 2' }).waitFor();
  let stored = await api('GET', '/v1/clients/acme/plan', 'admin');
  const added = stored.body.rules.find((r) => r.id === 'legal-recovery');
  assert.ok(added, 'the new rule is stored');
  assert.deepEqual([added.phases, added.roles, added.delay, added.repeat], [['recovery'], ['legal'], '10m', '1h']);

  step('a rule the server refuses: the error is shown at the cell, nothing is stored');
  await page.getByRole('button', { name: /^Edit legal in recovery/ }).click();
  await dialog.getByLabel('Delay').fill('soon');
  await dialog.getByRole('button', { name: 'Apply' }).click();
  expected.push(/status of 422/);
  await page.getByRole('button', { name: 'Save plan' }).click();
  await legalRecovery.locator('.cell-error').waitFor();
  assert.match(await legalRecovery.locator('.cell-error').innerText(), /legal-recovery.*delay/i);
  assert.ok(await legalRecovery.evaluate((el) => el.classList.contains('invalid')));
  assert.equal(await legalRecovery.getByRole('button').getAttribute('aria-invalid'), 'true');
  // Focus went to the offending cell.
  assert.equal(await page.evaluate(() => document.activeElement.closest('td')?.id), 'cell-role-legal-recovery');
  // The other cells of the plan are not marked.
  assert.equal(await page.locator('td.invalid').count(), 1);
  stored = await api('GET', '/v1/clients/acme/plan', 'admin');
  assert.equal(stored.body.version, 2, 'the refused plan is not stored');
  await page.getByRole('button', { name: 'Discard changes' }).click();
  await page.locator('#cell-role-legal-recovery').getByText('after 10m').waitFor();

  step('remove a cell from its only rule: the rule goes, the cell is empty again');
  await page.getByRole('button', { name: /^Edit legal in recovery/ }).click();
  await dialog.getByRole('button', { name: 'Remove legal in recovery from this rule' }).click();
  await dialog.getByText('No rule reaches this cell.').waitFor();
  await dialog.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('button', { name: 'Save plan' }).click();
  await page.locator('#status').filter({ hasText: 'Plan saved as version 3' }).waitFor();
  assert.equal(await page.locator('#cell-role-legal-recovery .chip').count(), 0);
  stored = await api('GET', '/v1/clients/acme/plan', 'admin');
  assert.deepEqual(stored.body.rules.map((r) => r.id), ['contain-people', 'contain-rooms']);

  step('preview who would be told what for a phase and severity');
  await page.getByLabel('Phase', { exact: true }).selectOption('containment');
  await page.getByLabel('Severity', { exact: true }).selectOption('critical');
  await page.getByRole('button', { name: 'Preview', exact: true }).click();
  const preview = page.locator('table.preview');
  await preview.waitFor();
  const previewText = await preview.innerText();
  for (const who of ['Dana Lee (dana)', 'Lee Park (lee)', 'endpoint siem', 'endpoint soc-slack']) {
    assert.ok(previewText.includes(who), `${who} in the preview: ${previewText}`);
  }

  step('post an event through the API and watch its deliveries appear in the log');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Delivery log' }).click();
  await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
  await page.getByLabel('Client').selectOption('acme');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('0 messages shown').waitFor();
  const posted = await api('POST', '/v1/events', 'ingest', {
    event_id: 'evt-console-1', client: 'acme',
    incident: { id: 'INC-7', title: 'Console test', severity: 'critical' },
    phase: 'containment', summary: 'seen from the browser',
  });
  assert.equal(posted.status, 202, JSON.stringify(posted.body));
  const log = page.locator('table.log');
  // The log refreshes itself: no reload, no click.
  await log.locator('tr[data-status="delivered"]').first().waitFor();
  const failedRow = log.locator('tr[data-status="failed"]');
  await failedRow.first().waitFor();
  assert.equal(await failedRow.count(), 1, 'one failed message (the siem webhook answered 400)');
  assert.match(await failedRow.innerText(), /endpoint siem/);
  const failedId = await failedRow.getAttribute('data-id');
  assert.match(await failedRow.innerText(), /400/);

  step('filters: channel and status narrow the log');
  await page.getByLabel('Channel').selectOption('webhook');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('1 message shown').waitFor();
  assert.equal(await log.locator('tbody tr').count(), 1);
  assert.ok(page.url().includes('channel=webhook'));

  step('a time filter: nothing was created after tomorrow');
  // Minutes only: Chromium drops ':00' seconds from a datetime-local value, which fill() refuses.
  const tomorrow = new Date(Date.now() + 86400000).toISOString().slice(0, 16);
  await page.getByLabel('Created since (UTC)').fill(tomorrow);
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('0 messages shown').waitFor();
  assert.ok(page.url().includes('since='));
  await page.getByLabel('Created since (UTC)').fill('');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('1 message shown').waitFor();

  step('replay the failed message (admin): it goes out again and is delivered');
  await page.getByRole('button', { name: `Replay ${failedId}` }).click();
  await page.locator('#status').filter({ hasText: 'queued again' }).waitFor();
  await log.locator(`tr[data-id="${failedId}"][data-status="delivered"]`).waitFor();
  const replayed = await api('GET', `/v1/deliveries/${failedId}`, 'audit');
  assert.equal(replayed.body.status, 'delivered');
  assert.equal(replayed.body.attempts_log.length, 2);
  const audit = await api('GET', '/v1/audit?kind=delivery.retry', 'audit');
  assert.ok(audit.body.items.some((r) => r.subject === failedId && r.actor === 'all'), 'replay audited');

  step("a message's attempts");
  await log.getByRole('link', { name: failedId }).click();
  const attempts = page.getByRole('table', { name: 'Every attempt to deliver this message' });
  await attempts.waitFor();
  assert.equal(await attempts.locator('tbody tr').count(), 2);
  assert.match(await attempts.locator('tbody tr').first().innerText(), /permanent\s+400/);
  assert.match(await attempts.locator('tbody tr').nth(1).innerText(), /delivered/);

  step('the incident timeline: phases, messages on one axis, and as a table');
  await page.getByRole('link', { name: 'INC-7' }).click();
  await page.getByRole('heading', { name: 'Incident INC-7' }).waitFor();
  await page.locator('.timeline .band.phase-containment').waitFor();
  assert.ok(await page.locator('.timeline .dot.message-delivered').count() >= 4);
  const timeline = await page.getByRole('table', { name: 'Timeline, in time order' }).innerText();
  assert.match(timeline, /phase containment \(critical\)/);
  assert.match(timeline, /message\.failed|message\.delivered/);

  step('templates: edit with a live preview per channel');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Templates' }).click();
  await page.getByRole('heading', { name: 'Templates' }).waitFor();
  await page.getByLabel('Template', { exact: true }).selectOption('containment.sms.text');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('heading', { name: /containment\.sms\.text/ }).waitFor();
  const body = page.getByLabel('Template body (mustache)');
  await body.fill('[{{incident.severity}}] {{incident.title}} — console');
  const rendered = page.getByLabel('Rendered preview');
  await page.waitForFunction(() => /— console/.test(document.querySelector('pre.rendered')?.textContent || ''));
  assert.match(await rendered.innerText(), /^\[\w+\] .+ — console$/);
  await page.getByText(/SMS: UCS-2, \d+ units, 1 segment/).waitFor();
  await page.getByLabel('Preview as').selectOption('email.html');
  await body.fill('<b>{{incident.title}}</b>');
  await page.waitForFunction(() => /&lt;b&gt;|<b>/.test(document.querySelector('pre.rendered')?.textContent || ''));
  expected.push(/status of 422/);
  await body.fill('{{#drill}} unclosed');
  await page.getByRole('alert').filter({ hasText: /unclosed section/ }).waitFor();

  step('templates: save an override for one client, then find it among the versions');
  await page.getByLabel('Template', { exact: true }).selectOption('containment.sms.text');
  await page.getByLabel('For client').selectOption('acme');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('heading', { name: 'containment.sms.text for acme' }).waitFor();
  await body.fill('ACME {{incident.title}}: contained');
  await page.getByRole('button', { name: 'Save template' }).click();
  await page.getByText('Saved as version 1.').waitFor();
  await page.getByRole('button', { name: 'Load v1' }).waitFor();
  const tpl = await api('GET', '/v1/templates/containment.sms.text?client=acme', 'admin');
  assert.equal(tpl.body.body, 'ACME {{incident.title}}: contained');

  step('audit: records, the chain verified, filters');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit trail' }).click();
  await page.getByText(/The chain is intact: \d+ record/).waitFor();
  await page.getByLabel('Kind').selectOption('plan.put');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('3 of 3 loaded record(s) shown').waitFor();
  const probe = await fetch(`${BASE}/v1/audit/export?format=jsonl`, { headers: { Authorization: `Bearer ${TOKENS.audit}` } });
  await probe.arrayBuffer();
  if (probe.status === 404) {
    step('audit export: this daemon has none yet, and the console says so');
    expected.push(/status of 404/);
    await page.getByRole('button', { name: 'Export the audit trail' }).click();
    await page.locator('#status').filter({ hasText: 'no audit export' }).waitFor();
  } else {
    step('audit export: the file downloads with the token, filtered like the list');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export the audit trail' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'herald-audit.jsonl');
    const lines = fs.readFileSync(await download.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2 && lines.every((r) => r.kind === 'plan.put'), 'the export keeps the kind filter');
  }

  step('an audit-only token sees the same views, with nothing to change');
  const auditPage = await context.newPage();
  watch(auditPage, 'audit token');
  await signIn(auditPage, 'audit');
  await auditPage.goto(`${BASE}/ui/#/clients/acme/plan`);
  await auditPage.locator('table.matrix').waitFor();
  assert.equal(await auditPage.locator('.cell-edit').count(), 0, 'no Edit buttons without admin');
  assert.equal(await auditPage.getByRole('button', { name: 'Save plan' }).count(), 0);
  await auditPage.goto(`${BASE}/ui/#/deliveries`);
  await auditPage.locator('table.log tbody tr').first().waitFor();
  assert.equal(await auditPage.getByRole('button', { name: /^Replay/ }).count(), 0, 'no replay without admin');
  await auditPage.close();

  step('an admin-only token is not offered the delivery log or the audit trail');
  const adminPage = await context.newPage();
  watch(adminPage, 'admin token');
  await signIn(adminPage, 'admin');
  const adminNav = adminPage.getByRole('navigation', { name: 'Main' });
  await adminNav.getByRole('link', { name: 'Clients' }).waitFor();
  assert.equal(await adminNav.getByRole('link', { name: 'Delivery log' }).count(), 0);
  assert.equal(await adminNav.getByRole('link', { name: 'Audit trail' }).count(), 0);
  await adminPage.goto(`${BASE}/ui/#/audit`);
  await adminPage.getByRole('heading', { name: 'Not allowed' }).waitFor();
  await adminPage.getByRole('button', { name: 'Sign out' }).click();
  await adminPage.getByLabel('API token').waitFor();
  assert.equal(await adminPage.evaluate(() => sessionStorage.getItem('herald.token')), null);

  step('an ingest-only token is told there is nothing for it here');
  await signIn(adminPage, 'ingest');
  await adminPage.getByRole('heading', { name: 'Nothing to show' }).waitFor();
  assert.equal(await adminPage.getByRole('navigation', { name: 'Main' }).getByRole('link').count(), 0);
  await adminPage.close();

  step('every view at phone size (390 x 844): renders, no page-wide sideways scrolling');
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  watch(phone, 'phone');
  await signIn(phone, 'all');
  const views = [
    ['clients', 'Clients'], ['clients/acme', 'Acme Corp'], ['clients/acme/plan', 'Contact matrix: Acme Corp'],
    ['templates', 'Templates'], ['deliveries', 'Delivery log'], [`deliveries/${failedId}`, /^Message/],
    ['incidents/acme/INC-7', 'Incident INC-7'], ['audit', 'Audit trail'],
  ];
  for (const [hash, heading] of views) {
    await phone.goto(`${BASE}/ui/#/${hash}`);
    await phone.getByRole('heading', { name: heading, level: 1 }).waitFor();
    await shot(phone, `phone-${hash.replace(/\//g, '_')}`);
    // Every form control has a name a screen reader can say; every button too.
    const unnamed = await phone.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
      .map((el) => el.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, [], `#/${hash}: controls without a label`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `#/${hash}: the page scrolls sideways by ${overflow}px at phone size`);
  }
  await phone.goto(`${BASE}/ui/#/clients/acme/plan`);
  await phone.getByRole('button', { name: /^Edit legal in containment/ }).click();
  await phone.getByRole('dialog').getByLabel('Delay').waitFor();
  await shot(phone, 'phone-cell-editor');
  await phone.keyboard.press('Escape');
  for (const [hash] of views) {
    await page.goto(`${BASE}/ui/#/${hash}`);
    await page.locator('main h1').waitFor();
    await page.waitForTimeout(300);
    await shot(page, `desktop-${hash.replace(/\//g, '_')}`);
  }
  await phone.close();
}

main().catch((err) => {
  console.error(err.stack || String(err));
  if (problems.length) console.error(problems.join('\n'));
  process.exit(1);
});
