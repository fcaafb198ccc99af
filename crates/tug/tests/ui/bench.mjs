// Load time of the dashboard: navigation start to the first full render
// (topology and every replica row), RUNS times; then the page stays open
// HOLD seconds while scripts/bench/dashboard.sh measures the agent.
//
//   node bench.mjs URL REPLICAS
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.TUG_UI_TOOLS, 'package.json'));
const { chromium } = require('playwright-core');
const [url, replicas] = process.argv.slice(2);
const runs = Number(process.env.RUNS || 5);
const hold = Number(process.env.HOLD || 60);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
const loads = [];
for (let i = 0; i < runs; i++) {
  await page.goto('about:blank');
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForFunction((n) => document.body?.dataset.ready === 'true'
    && document.querySelectorAll('#replicas tbody tr').length >= n
    && document.querySelector('svg.topology'), Number(replicas), { timeout: 30000, polling: 'raf' });
  loads.push(await page.evaluate(() => performance.now()));
}
loads.sort((a, b) => a - b);
console.log(JSON.stringify({ loads_ms: loads.map((x) => Math.round(x)), median_ms: Math.round(loads[Math.floor(loads.length / 2)]) }));
// Stay open, following the event stream, while the agent is measured.
await page.waitForTimeout(hold * 1000);
const shown = await page.$$eval('#events li', (l) => l.length);
console.log(JSON.stringify({ events_shown: shown }));
await browser.close();
