// The dashboard end to end in headless Chromium (playwright-core with the
// system's browser), checked with axe-core. Run by crates/tug/tests/dashboard_ui.rs:
//
//   node dashboard.mjs live      URL   # topology, kill -> red -> green, rollback, axe
//   node dashboard.mjs token     URL TOKEN   # refused without the token; login page
//
// Environment: TUG_UI_TOOLS (where scripts/ui-tools.sh installed the npm
// packages), TUG_UI_ARTIFACTS (screenshots), CHROMIUM (the browser).
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const tools = process.env.TUG_UI_TOOLS;
const require = createRequire(path.join(tools, 'package.json'));
const { chromium } = require('playwright-core');
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const artifacts = process.env.TUG_UI_ARTIFACTS || 'target/ui-artifacts';
mkdirSync(artifacts, { recursive: true });

const [mode, url, token] = process.argv.slice(2);
const fail = (msg) => { throw new Error(msg); };
const step = (msg) => console.log(`ui: ${msg}`);

async function axe(page, name) {
  // Through the devtools protocol: the page's CSP (rightly) refuses inline scripts.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations) {
    console.log(`axe ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')})`);
  }
  if (bad.length) fail(`axe on ${name}: ${bad.length} serious or critical violations: ${bad.map((v) => v.id).join(', ')}`);
  step(`axe on ${name}: no serious or critical violations`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`console: ${m.text()}`); });
  if (mode === 'live') await live(page);
  else if (mode === 'token') await withToken(page, context);
  else fail(`unknown mode ${mode}`);
} finally {
  await browser.close();
}

async function live(page) {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  // Topology: a node per service, the depends_on edge, the gateway's route.
  await page.waitForSelector('svg.topology [data-node="web"][data-status="ok"]', { timeout: 30000 });
  await page.waitForSelector('svg.topology [data-node="db"]');
  await page.waitForSelector('svg.topology [data-node="gateway"]');
  const desc = await page.textContent('svg.topology desc');
  if (!desc.includes('web depends on db')) fail(`topology lacks the depends_on edge: ${desc}`);
  if (!desc.includes('routes')) fail(`topology lacks the route: ${desc}`);
  step('topology renders');
  await page.waitForSelector('#status[data-state="live"]');
  await shot(page, 'overview');
  await axe(page, 'overview');

  // Kill a replica: its row turns red, then green again, without a reload.
  const ps = await (await page.request.get(new URL('/v1/ps', url).href)).json();
  const victim = ps.replicas.find((r) => r.service === 'web');
  await page.waitForSelector(`tr[data-replica="${victim.name}"][data-status="ok"]`, { timeout: 30000 });
  await page.evaluate((name) => {
    window.seen = [];
    const look = () => {
      const row = document.querySelector(`tr[data-replica="${name}"]`);
      const s = row?.dataset.status;
      if (s && window.seen[window.seen.length - 1] !== s) window.seen.push(s);
    };
    new MutationObserver(look).observe(document.querySelector('#replicas tbody'), { childList: true, subtree: true, attributes: true });
  }, victim.name);
  execFileSync('docker', ['kill', victim.id]);
  step(`killed ${victim.name}`);
  await page.waitForFunction(() => window.seen.includes('bad'), null, { timeout: 30000 });
  await shot(page, 'replica-red');
  await page.waitForFunction(
    (name) => window.seen.lastIndexOf('ok') > window.seen.indexOf('bad')
      && document.querySelector(`tr[data-replica="${name}"]`)?.dataset.status === 'ok',
    victim.name, { timeout: 90000 });
  step(`replica went ${(await page.evaluate(() => window.seen)).join(' -> ')}`);
  await shot(page, 'replica-green');

  // Every page passes axe.
  for (const p of ['history', 'logs', 'findings', 'pipelines']) {
    await page.click(`header nav a[href="#${p}"]`);
    await page.waitForSelector(`[data-page="${p}"]:not([hidden])`);
    await page.waitForTimeout(500);
    await shot(page, p);
    await axe(page, p);
  }
  // Logs of the replica stream in.
  await page.click('header nav a[href="#logs"]');
  await page.waitForFunction(() => document.querySelector('#log-lines').textContent.length > 0, null, { timeout: 20000 });
  step('logs stream');

  // Roll back from the UI: confirm in the dialog, the steps show, it succeeds.
  await page.click('header nav a[href="#history"]');
  const target = await page.evaluate(() => {
    const row = [...document.querySelectorAll('#revisions tbody tr')].find((r) => !r.querySelector('button').disabled && r.textContent.includes('succeeded'));
    return row?.dataset.revision;
  });
  if (!target) fail('no revision to roll back to');
  await page.waitForSelector('#diff .diff');
  step('diff between two revisions shows');
  // Keyboard: focus the button, press Enter, Tab to the confirm button.
  await page.focus(`tr[data-revision="${target}"] button`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog#confirm[open]');
  await shot(page, 'rollback-confirm');
  await axe(page, 'rollback dialog');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement.id);
  if (focused !== 'confirm-ok') fail(`Tab in the dialog reached ${focused}, not the confirm button`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#rollout .steps li', { timeout: 30000 });
  await page.waitForSelector('#rollout [data-status="ok"]', { timeout: 120000 });
  const steps = await page.$$eval('#rollout .steps li', (l) => l.map((x) => x.textContent));
  step(`rollback to revision ${target}: ${steps.length} steps`);
  if (!steps.some((s) => s.includes('converged'))) fail(`rollback steps lack the end: ${steps.join(' | ')}`);
  if (!(await page.textContent('#rollout')).includes(`Rollback to revision ${target}`)) fail('the rollout is not titled as the rollback');
  await shot(page, 'rollback-done');
  const after = await (await page.request.get(new URL('/v1/history?limit=1', url).href)).json();
  if (!after[0].message.includes(`rollback to revision ${target}`)) fail(`newest revision: ${after[0].message}`);
}

async function withToken(page, context) {
  // Without the token: the API refuses, the dashboard sends to the login page.
  const api = await page.request.get(new URL('/v1/ps', url).href);
  if (api.status() !== 401) fail(`GET /v1/ps without the token: ${api.status()}`);
  await page.goto(url);
  if (!page.url().endsWith('/login')) fail(`without the token / went to ${page.url()}`);
  await page.waitForSelector('form#login');
  await shot(page, 'login');
  await axe(page, 'login');
  // A wrong token is refused, with the way to the right one.
  await page.fill('#token', 'wrong');
  await page.click('form#login button');
  await page.waitForFunction(() => document.querySelector('#error').textContent.includes('tug dashboard --token'));
  step('a wrong token is refused');
  await page.fill('#token', token);
  await page.click('form#login button');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  const cookie = (await context.cookies()).find((c) => c.name === 'tug_token');
  if (!cookie?.httpOnly || cookie.sameSite !== 'Strict') fail(`cookie: ${JSON.stringify(cookie)}`);
  await page.waitForSelector('svg.topology [data-node="web"]', { timeout: 30000 });
  step('signed in: the dashboard shows');
  await shot(page, 'signed-in');
  // A cross-site POST (a form of another site) is refused, cookie or not.
  const evil = await page.request.post(new URL('/v1/restart', url).href, {
    headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
    data: 'services=',
  });
  if (evil.status() !== 403) fail(`cross-site POST answered ${evil.status()}`);
  step('a cross-site POST is refused');
}
