// Opt-in, never in CI: the workbench panel inside the REAL SD.Next page (the kit,
// ../shared/tools/sdnext) and the popup, for screenshots a person looks at. Needs a host driving
// that SD.Next:
//   agent-scheduler serve --listen 127.0.0.1:PORT --backend http://127.0.0.1:17860 --data-dir DIR
//   HOST_URL=http://127.0.0.1:PORT SDNEXT_URL=http://127.0.0.1:17860 node live-panel.mjs
// Queues a small night (64×64, 2 steps): named tasks, a "Queue with all checkpoints" group and
// a pending tail, then opens the panel drawer in the SD.Next page at 1600 px, its history, the
// group sheet and the viewer, and the popup. Screenshots: live-panel-*.png in SHOT_DIR.
import fs from 'node:fs';
import path from 'node:path';
import { launch, serviceWorker, until, Host, check, failed, results } from './lib.mjs';

const env = (k, d) => process.env[k] ?? d;
const EXT_DIR = path.resolve(env('EXT_DIR', '../../target/extension-test'));
const host = new Host(env('HOST_URL', 'http://127.0.0.1:7861'));
const SDNEXT = env('SDNEXT_URL', 'http://127.0.0.1:17860');
const SHOT_DIR = path.resolve(env('SHOT_DIR', '../../target/screenshots'));
const Q = '/agent-scheduler/v1';
fs.mkdirSync(SHOT_DIR, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(SHOT_DIR, name) });

const small = { steps: 2, width: 64, height: 64 };
const ids = [];
ids.push((await host.post(`${Q}/queue/txt2img`, { ...small, prompt: 'a red fox in the snow', name: 'fox' })).task_id);
ids.push((await host.post(`${Q}/queue/txt2img`, { ...small, prompt: 'a green owl at night, detailed feathers', cfg_scale: 5 })).task_id);
const group = await host.post(`${Q}/queue/txt2img`, { ...small, prompt: 'a lighthouse at dusk', checkpoint: '*' });
await until('the night is done', async () => {
  const h = await host.history();
  return [...ids, ...group.task_ids].every((id) => h.tasks.some((t) => t.id === id && t.status === 'done'));
}, 180000);
await host.post(`${Q}/queue/pause`);
for (let i = 0; i < 3; i++) await host.post(`${Q}/queue/txt2img`, { ...small, prompt: `waiting in line ${i}` });

const { ctx, udd } = await launch(EXT_DIR);
const sw = await serviceWorker(ctx);
await sw.evaluate(async (url) => { await chrome.storage.local.set({ options: { host_url: url } }); }, host.base);
const extId = new URL(sw.url()).host;
const page = await ctx.newPage();
await page.setViewportSize({ width: 1600, height: 900 });
await page.goto(SDNEXT + '/', { waitUntil: 'domcontentloaded', timeout: 120000 });
await page.waitForFunction(() => document.documentElement.dataset.sdqState === 'ready' && window.opts, null, { timeout: 240000, polling: 500 });
results.figures.theme = await page.evaluate(() => window.opts.theme_type);
// SD.Next's splash (its logo and start log) covers the page until the UI is up.
await page.waitForFunction(() => {
  const s = document.getElementById('splash');
  return !s || s.offsetParent === null || getComputedStyle(s).opacity === '0';
}, null, { timeout: 120000, polling: 500 });

await check('the panel in the SD.Next page: queue with ETA, history with thumbnails', async () => {
  await page.locator('#sdq-toggle').click();
  const frame = page.frameLocator('#sdq-panel-frame');
  await frame.locator('.panel[data-conn="online"]').waitFor({ timeout: 30000 });
  await frame.locator('.prow[data-task-id]').first().waitFor();
  await until('queue end', async () => ((await frame.locator('#sdq-queue-end').textContent()) || '').includes('≈'), 20000);
  await shot(page, 'live-panel-queue.png');
  await frame.locator('#sdq-tab-history').click();
  await until('thumbnails', async () => (await frame.locator('.hrow img.thumb').count()) >= 4, 30000);
  await shot(page, 'live-panel-history.png');
  await frame.locator(`.hrow[data-task-id="${group.task_ids[0]}"] .group`).click();
  await frame.locator('#sdq-sheet img').first().waitFor({ timeout: 30000 });
  await shot(page, 'live-panel-group-sheet.png');
  await frame.locator('#sdq-sheet .close').click();
  await frame.locator(`.hrow[data-task-id="${ids[1]}"] .summary`).click();
  await frame.locator('#sdq-viewer-img').waitFor({ timeout: 30000 });
  await shot(page, 'live-panel-viewer.png');
  await page.keyboard.press('Escape');
});

await check('the popup', async () => {
  const p = await ctx.newPage();
  await p.setViewportSize({ width: 360, height: 520 });
  await p.goto(`chrome-extension://${extId}/popup.html`);
  await p.waitForSelector('.popup[data-conn="online"]', { timeout: 30000 });
  await until('recent thumbnails', async () => (await p.$$('#sdq-popup-recent img.thumb')).length >= 3, 30000);
  await shot(p, 'live-popup.png');
});

await host.post(`${Q}/queue/resume`);
console.log('figures', JSON.stringify(results.figures));
await ctx.close();
fs.rmSync(udd, { recursive: true, force: true });
process.exit(Math.min(failed(), 100));
