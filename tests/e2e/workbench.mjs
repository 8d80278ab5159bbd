// The panel as a workbench, end to end in headless Chromium or Firefox ESR (`BROWSER`, see
// lib.mjs) against the REAL host and the fake SD.Next (started by
// tests/tests/integration/browser_workbench.rs, which passes):
//   EXT_DIR   target/extension-test        HOST_URL        the host (no token), serving / from target/webapp
//   FAKE_URL  the fake SD.Next              TOKEN_HOST_URL  a host with --token TOKEN
//   FAKE2_URL a second fake SD.Next, added to the pool from the panel
//   DATA_DIR  the host's data folder (a check deletes a task's image files)
//   SHOT_DIR  where screenshots go          RESULTS         JSON file with checks and figures
// Checks, each on what the host answers: thumbnails in the rows (only `?size=thumb` requests
// from lists), columns remembered, history sorted by checkpoint, the gallery, the viewer's keys,
// the group sheet, multi-select "move to top" in ONE request, the ETA, the web app at / at
// 1600 px and 360 px acting on the queue, the token login (sessionStorage, no cookie, images
// through fetch into blob: URLs), the hold banners, the popup's running task and last results,
// the backends section (add with the host's 422 shown, drain, enable, disable, remove, at 1600 px
// and 360 px; Enter in the URL field adds like the Add button), (the 10,000-row bench is
// run.mjs's). Every wait is a condition with a deadline.
import fs from 'node:fs';
import path from 'node:path';
import { launch, BROWSER, until, Host, check, failed, results, assert, assertEq } from './lib.mjs';

const env = (k, d) => process.env[k] ?? d;
const EXT_DIR = path.resolve(env('EXT_DIR', '../../target/extension-test'));
const host = new Host(env('HOST_URL', 'http://127.0.0.1:7861'));
const FAKE_URL = env('FAKE_URL');
const FAKE2_URL = env('FAKE2_URL');
const SHOT_DIR = path.resolve(env('SHOT_DIR', '../../target/screenshots'));
const Q = '/agent-scheduler/v1';
fs.mkdirSync(SHOT_DIR, { recursive: true });
// A check that failed with a modal open leaves it for the next one: close it first.
const closeModals = async (page) => {
  for (let i = 0; i < 3 && await page.$('#sdq-modal-root .modal'); i++) await page.keyboard.press('Escape');
};
const shot = (page, name) => page.screenshot({ path: path.join(SHOT_DIR, name) });
const fake = (cfg) => fetch(`${FAKE_URL}/fake/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(cfg) });

const b = await launch(EXT_DIR);
results.figures.browser = BROWSER;
await b.worker(async (g, url) => { await g.chrome.storage.local.set({ options: { host_url: url } }); }, host.base);
const ext = b.ext;
const pageErrors = [];
b.onPage((pg) => pg.on('pageerror', (e) => { pageErrors.push(`${pg.url()}: ${e.message}`); console.log(`[pageerror] ${pg.url()}: ${e.message}`); }));

// ---- the night's work: named tasks, prompts, a "Queue with all checkpoints" group, a failure ----
const enq = (body) => host.post(`${Q}/queue/txt2img`, { steps: 4, width: 512, height: 384, ...body });
const done = [];
done.push((await enq({ prompt: 'a red fox in the snow', name: 'fox', cfg_scale: 6 })).task_id);
done.push((await enq({ prompt: 'a green owl at night', sampler_name: 'Euler a' })).task_id);
const grouped = await enq({ prompt: 'a lighthouse, every checkpoint', checkpoint: '*' });
const groupIds = grouped.task_ids;
const failedId = (await enq({ prompt: 'will fail', alwayson_scripts: { nope: { args: [] } } })).task_id;
await until('the night\'s work is finished', async () => {
  const h = await host.history();
  return [...done, ...groupIds, failedId].every((id) => h.tasks.some((t) => t.id === id));
}, 60000);
const groupId = (await host.task(groupIds[0])).group_id;

// Image requests the pages make: lists must ask only for thumbnails.
const imageRequests = [];
const onRequest = BROWSER === 'firefox' ? b.onRequest : (fn) => b.ctx.on('request', fn);
onRequest((r) => { if (/\/task\/[^/]+\/images\//.test(r.url())) imageRequests.push(r.url()); });
const bulkRequests = [];
onRequest((r) => { if (r.url().includes('/tasks/bulk')) bulkRequests.push(r.postData()); });

const web = await b.newPage();
await web.setViewportSize({ width: 1600, height: 900 });

await check('web app at / (1600 px): history rows lead with name or prompt and show host thumbnails', async () => {
  await web.goto(`${host.base}/`);
  await web.waitForSelector('.panel[data-conn="online"][data-platform="web"]', { timeout: 30000 });
  await web.click('#sdq-tab-history');
  const want = done.length + groupIds.length;
  await until(`${want} thumbnails decoded`, async () => {
    const n = await web.$$eval('.hrow img.thumb', (ims) => ims.filter((i) => i.complete && i.naturalWidth > 0 && i.src.startsWith('blob:')).length);
    return n >= want;
  }, 30000);
  const fox = await web.textContent(`.hrow[data-task-id="${done[0]}"] .label`);
  assertEq(fox, 'fox', 'a named task leads with its name');
  const owl = await web.textContent(`.hrow[data-task-id="${done[1]}"] .label`);
  assert(owl.includes('a green owl'), `an unnamed task leads with its prompt: ${owl}`);
  const title = await web.getAttribute(`.hrow[data-task-id="${done[1]}"] .main`, 'title');
  assert(title.includes(done[1]), 'the id on hover');
  assert(await web.$(`.hrow[data-task-id="${failedId}"] .thumb.noimg`), 'a task without images shows a placeholder');
  const full = imageRequests.filter((u) => !u.includes('size=thumb'));
  assertEq(full, [], 'lists download no full image');
  results.figures.thumb_requests_for_rows = imageRequests.length;
  await shot(web, 'webapp-1600-history.png');
});

await check('thumbnail: ~256 px JPEG with cache headers; a missing image is 404', async () => {
  const r = await fetch(`${host.base}${Q}/task/${done[0]}/images/0?size=thumb`);
  assertEq(r.status, 200, 'thumb status');
  assertEq(r.headers.get('content-type'), 'image/jpeg', 'thumb type');
  assert((r.headers.get('cache-control') || '').includes('max-age'), `cache-control: ${r.headers.get('cache-control')}`);
  const etag = r.headers.get('etag');
  assert(etag, 'etag');
  const bytes = Buffer.from(await r.arrayBuffer());
  results.figures.thumb_bytes = bytes.length;
  const again = await fetch(`${host.base}${Q}/task/${done[0]}/images/0?size=thumb`, { headers: { 'if-none-match': etag } });
  assertEq(again.status, 304, 'revalidation');
  const missing = await fetch(`${host.base}${Q}/task/${failedId}/images/0?size=thumb`);
  assertEq(missing.status, 404, 'no image: 404');
});

await check('columns: hiding one is remembered after a reload', async () => {
  await web.click('#sdq-columns');
  await web.waitForSelector('#sdq-columns-menu');
  const box = web.locator('#sdq-columns-menu input[data-col="sampler"]');
  if (await box.isChecked()) await box.click();
  await until('sampler column hidden', async () => (await web.$$('.hrow .c-sampler')).length === 0);
  await web.reload();
  await web.waitForSelector('.panel[data-conn="online"]', { timeout: 30000 });
  await web.click('#sdq-tab-history');
  await web.waitForSelector('.hrow');
  assertEq((await web.$$('.hrow .c-sampler')).length, 0, 'still hidden after reload');
  assert((await web.$$('.hrow .c-checkpoint')).length > 0, 'checkpoint column shown');
});

await check('history sorts by checkpoint (the host\'s keyset order)', async () => {
  await web.selectOption('#sdq-sort', 'checkpoint');
  const h = await host.get(`${Q}/history?limit=1000&sort=checkpoint`);
  const want = h.tasks.map((t) => t.id);
  await until('panel in the host\'s checkpoint order', async () => JSON.stringify(await web.$$eval('.hrow[data-task-id]', (r) => r.map((x) => x.dataset.taskId))) === JSON.stringify(want));
  await web.selectOption('#sdq-sort', 'time');
});

await check('gallery mode: a grid of thumbnails with the same search', async () => {
  await web.click('#sdq-mode');
  await web.waitForSelector('.gallery-grid .gcell');
  await until('gallery thumbnails', () => web.$$eval('.gcell img.thumb', (ims) => ims.filter((i) => i.naturalWidth > 0).length >= 3));
  await web.fill('#sdq-search', 'owl');
  await until('search narrows the gallery', async () => JSON.stringify(await web.$$eval('.gcell[data-task-id]', (c) => c.map((x) => x.dataset.taskId))) === JSON.stringify([done[1]]));
  await web.fill('#sdq-search', '');
  await until('all back', async () => (await web.$$('.gcell[data-task-id]')).length >= 5);
  await shot(web, 'webapp-gallery.png');
  await web.click('#sdq-mode');
  await web.waitForSelector('.hrow');
});

await check('viewer: full size, ←/→ between images and tasks, Esc closes; infotext, copy, download', async () => {
  await web.click(`.hrow[data-task-id="${done[1]}"] .summary`);
  await web.waitForSelector('#sdq-detail');
  await until('full image decoded', () => web.$eval('#sdq-viewer-img', (i) => i.complete && i.naturalWidth > 0));
  const first = await web.getAttribute('#sdq-detail', 'data-task-id');
  assertEq(first, done[1], 'opens on the clicked task');
  const info = await web.inputValue('#sdq-infotext');
  assert(info.includes('a green owl'), `infotext: ${info.slice(0, 80)}`);
  await shot(web, 'webapp-viewer.png');
  await web.keyboard.press('ArrowRight');
  const second = await until('→ moves to the next task', async () => {
    const id = await web.getAttribute('#sdq-detail', 'data-task-id');
    return id && id !== first ? id : null;
  });
  await web.keyboard.press('ArrowLeft');
  await until('← comes back', async () => (await web.getAttribute('#sdq-detail', 'data-task-id')) === first);
  assert(second !== first, 'moved');
  for (const b of ['#sdq-copy', '#sdq-download', '#sdq-zip', '#sdq-viewer-requeue']) {
    assert(await web.isVisible(b), `${b} visible`);
  }
  // "Send to" fills an SD.Next page: only the extension's panel has one (run.mjs checks it).
  assertEq(await web.$('#sdq-send-txt2img'), null, 'no "send to" in the web app');
  const [dl] = await Promise.all([web.waitForEvent('download'), web.click('#sdq-download')]);
  assert(/\.(png|jpe?g)$/.test(dl.suggestedFilename()), `download name ${dl.suggestedFilename()}`);
  await web.keyboard.press('Escape');
  await web.waitForSelector('#sdq-detail', { state: 'detached' });
});

await check('group sheet: the checkpoints side by side, each labelled; requeue the group', async () => {
  assert(groupId, 'the group has an id on the wire');
  await closeModals(web);
  await web.click(`.hrow[data-task-id="${groupIds[0]}"] .group`);
  await web.waitForSelector('#sdq-sheet');
  await until('every checkpoint\'s image', () => web.$$eval('#sdq-sheet img', (ims) => ims.filter((i) => i.naturalWidth > 0).length === 2));
  const labels = await web.$$eval('#sdq-sheet .ckpt', (l) => l.map((x) => x.textContent.trim()));
  assertEq(labels.slice().sort(), ['a', 'b'], 'labelled with their checkpoints');
  await shot(web, 'webapp-group-sheet.png');
  await host.post(`${Q}/queue/pause`);
  const before = (await host.queue()).total_pending_tasks;
  await web.click('#sdq-sheet-requeue');
  await until('the group requeued', async () => (await host.queue()).total_pending_tasks === before + 2);
  await web.click('#sdq-sheet .close');
  await web.waitForSelector('#sdq-sheet', { state: 'detached' });
});

await check('multi-select: ctrl-click two rows, move to top changes the host order in ONE request', async () => {
  await closeModals(web);
  await host.post(`${Q}/queue/pause`);
  for (let i = 0; i < 4; i++) await enq({ prompt: `pending ${i}` });
  await web.click('#sdq-tab-queue');
  const ids = (await host.queue()).pending_tasks.map((t) => t.id);
  await until('pending rows', async () => (await web.$$('.prow[data-task-id]')).length === ids.length);
  const order = await web.$$eval('.prow[data-task-id]', (r) => r.map((x) => x.dataset.taskId));
  const [x, y] = [order[order.length - 2], order[order.length - 1]];
  await web.click(`.prow[data-task-id="${x}"] .summary`);
  await web.click(`.prow[data-task-id="${y}"] .summary`, { modifiers: ['Control'] });
  await web.waitForSelector('#sdq-bulk');
  bulkRequests.length = 0;
  await web.click('#sdq-bulk-top');
  await until('host order: the two first', async () => {
    const q = await host.queue();
    const top = q.pending_tasks.slice(0, 2).map((t) => t.id);
    return top.includes(x) && top.includes(y);
  });
  await until('the bulk request seen', () => bulkRequests.length >= 1);
  assertEq(bulkRequests.length, 1, 'one request');
  assertEq(JSON.parse(bulkRequests[0]).action, 'move_top', 'the action');
});

await check('ETA: each pending task\'s expected start and the queue\'s end from measured speed', async () => {
  const eta = await host.get(`${Q}/queue/eta`);
  assert(eta.queue_ends_at, `the host has an estimate: ${JSON.stringify(eta).slice(0, 200)}`);
  const end = await until('queue end shown', async () => {
    const t = (await web.textContent('#sdq-queue-end')) || '';
    return t.includes('≈') ? t : null;
  });
  results.figures.queue_end_text = end.trim();
  await until('every pending row shows its expected start', async () => {
    const starts = await web.$$eval('.prow .c-time', (c) => c.map((x) => x.textContent.trim()));
    return starts.length === eta.pending && starts.every((s) => /^\d\d:\d\d/.test(s)) ? starts : null;
  });
  await shot(web, 'webapp-1600-queue.png');
});

await check('hold banners: "On hold: disk full" and "backend stalled" in the panel', async () => {
  for (const [reason, file] of [['disk full', 'webapp-hold-disk-full.png'], ['backend stalled', 'webapp-hold-backend-stalled.png']]) {
    await web.route('**/agent-scheduler/v1/queue?**', async (route) => {
      const r = await route.fetch();
      const j = await r.json();
      await route.fulfill({ response: r, json: { ...j, hold_reason: reason } });
    });
    await web.reload();
    const text = await until(`banner "${reason}"`, async () => (await web.textContent('#sdq-hold').catch(() => '')) || null);
    assert(text.startsWith(`On hold: ${reason}`), `banner: ${text}`);
    await shot(web, file);
    await web.unroute('**/agent-scheduler/v1/queue?**');
  }
  await web.reload();
  await web.waitForSelector('.panel[data-conn="online"]');
  assert(!(await web.$('#sdq-hold')), 'no banner without a hold');
});

await check('web app at 360 px: fits the width and acts on the queue (resume)', async () => {
  await host.post(`${Q}/queue/pause`);
  const m = await b.newPage();
  await m.setViewportSize({ width: 360, height: 740 });
  await m.goto(`${host.base}/`);
  await m.waitForSelector('.panel[data-conn="online"][data-paused="true"]', { timeout: 30000 });
  const over = await m.evaluate(() => document.scrollingElement.scrollWidth);
  assert(over <= 360, `no horizontal scroll: ${over}`);
  await shot(m, 'webapp-360-queue.png');
  const box = await m.locator('#sdq-pause').boundingBox();
  assert(box && box.x >= 0 && box.x + box.width <= 360, `pause inside the viewport: ${JSON.stringify(box)}`);
  const atCentre = await m.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.closest('#sdq-pause') !== null, { x: box.x + box.width / 2, y: box.y + box.height / 2 });
  assert(atCentre, 'the pause button is the element at its centre');
  await m.click('#sdq-pause');
  await until('host resumed from the phone', async () => !(await host.queue()).paused);
  await until('queue drained', async () => (await host.queue()).pending_tasks.length === 0, 60000);
  await m.click('#sdq-tab-history');
  await until('thumbnails at 360 px', () => m.$$eval('.hrow img.thumb', (ims) => ims.filter((i) => i.naturalWidth > 0).length >= 3));
  await shot(m, 'webapp-360-history.png');
  await m.close();
});

await check('multi-select: shift-click a range; "select all" in the filter and delete (confirmed) in ONE request by the filter', async () => {
  await closeModals(web);
  await host.post(`${Q}/queue/pause`);
  for (let i = 0; i < 5; i++) await enq({ prompt: `to delete ${i}` });
  await web.click('#sdq-tab-queue');
  await until('five pending rows', async () => (await web.$$('.prow[data-task-id]')).length === 5);
  const order = await web.$$eval('.prow[data-task-id]', (r) => r.map((x) => x.dataset.taskId));
  await web.click(`.prow[data-task-id="${order[0]}"] .summary`);
  await web.click(`.prow[data-task-id="${order[2]}"] .summary`, { modifiers: ['Shift'] });
  await until('shift-click picks the range', async () => JSON.stringify(await web.$$eval('.prow.picked', (r) => r.map((x) => x.dataset.taskId))) === JSON.stringify(order.slice(0, 3)));
  await web.click('#sdq-bulk-clear');
  await until('nothing picked', async () => (await web.$$('.prow.picked')).length === 0);
  await web.click('.queue-list .select-all');
  await web.waitForSelector('#sdq-bulk');
  bulkRequests.length = 0;
  let asked = '';
  web.once('dialog', (d) => { asked = d.message(); d.accept(); });
  await web.click('#sdq-bulk-delete');
  await until('the host queue is empty', async () => (await host.queue()).total_pending_tasks === 0);
  assertEq(asked, 'Delete 5 tasks?', 'the confirmation');
  await until('the bulk request seen', () => bulkRequests.length >= 1);
  assertEq(bulkRequests.length, 1, 'one request');
  const body = JSON.parse(bulkRequests[0]);
  assertEq([body.action, body.selection.filter?.list, body.selection.ids ?? []], ['delete', 'queue', []], 'by the filter, no ids');
  await host.post(`${Q}/queue/resume`);
});

await check('a task whose image files were deleted shows a placeholder, never a broken image', async () => {
  const dir = path.join(env('DATA_DIR'), 'results', done[0]);
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  const r = await fetch(`${host.base}${Q}/task/${done[0]}/images/0?size=thumb`);
  assertEq(r.status, 404, 'the host answers 404');
  // A fresh look (this browser cached the thumbnail while the file existed: routing turns
  // Chromium's HTTP cache off for the page).
  const p = await b.newPage();
  await p.setViewportSize({ width: 1600, height: 900 });
  await p.route('**/*', (r) => r.continue());
  await p.goto(`${host.base}/`);
  await p.waitForSelector('.panel[data-conn="online"]', { timeout: 30000 });
  await p.click('#sdq-tab-history');
  await p.fill('#sdq-search', 'red fox');
  await p.waitForSelector(`.hrow[data-task-id="${done[0]}"] .thumb.noimg`, { timeout: 30000 });
  await until('the search shows that task alone', async () => (await p.$$('.hrow[data-task-id]')).length === 1);
  await shot(p, 'webapp-deleted-image-placeholder.png');
  const broken = await p.$$eval('img', (ims) => ims.filter((i) => i.complete && i.naturalWidth === 0).map((i) => i.src));
  assertEq(broken, [], 'no broken image');
  await p.close();
});

await check('token host: login form, token in sessionStorage (no cookie), images via fetch into blob: URLs', async () => {
  const url = env('TOKEN_HOST_URL');
  const token = env('TOKEN');
  const th = new Host(url);
  th.call = async (method, p, body) => {
    const r = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return r.json();
  };
  const t = await th.post(`${Q}/queue/txt2img`, { prompt: 'behind a token', steps: 2 });
  await until('done on the token host', async () => (await th.get(`${Q}/task/${t.task_id}`)).data.status === 'done', 30000);
  const p = await b.newPage();
  await p.setViewportSize({ width: 1600, height: 900 });
  await p.goto(`${url}/`);
  await p.waitForSelector('#sdq-token', { timeout: 30000 });
  await shot(p, 'webapp-login.png');
  await p.fill('#sdq-token', token);
  await p.click('#sdq-login-submit');
  await p.waitForSelector('.panel[data-conn="online"]', { timeout: 30000 });
  const stored = await p.evaluate(() => JSON.stringify(Object.entries(sessionStorage)));
  assert(stored.includes(token), 'the token is in sessionStorage');
  assertEq((await (BROWSER === 'firefox' ? b.cookies(url) : b.ctx.cookies(url))).length, 0, 'no cookie');
  await p.click('#sdq-tab-history');
  const src = await until('thumbnail through fetch', () => p.$eval(`.hrow[data-task-id="${t.task_id}"] img.thumb`, (i) => (i.naturalWidth > 0 ? i.src : null)).catch(() => null));
  assert(src.startsWith('blob:'), `object URL: ${src}`);
  await p.close();
});

await check('popup: the running task with its progress bar and preview, the last results, pause', async () => {
  await fake({ step_ms: 150 });
  const t = await enq({ prompt: 'slow one for the popup', steps: 60 });
  const popup = await b.newPage();
  await popup.setViewportSize({ width: 360, height: 520 });
  await popup.goto(ext('popup.html'));
  await popup.waitForSelector(`#sdq-popup-running[data-task-id="${t.task_id}"]`, { timeout: 30000 });
  await until('progress', async () => Number(await popup.getAttribute('#sdq-popup-running .meta', 'data-progress').catch(() => 0)) > 0, 20000);
  await until('preview', () => popup.$eval('#sdq-popup-preview', (i) => i.naturalWidth > 0).catch(() => false), 20000);
  await until('recent thumbnails', () => popup.$$eval('#sdq-popup-recent img.thumb', (ims) => ims.filter((i) => i.naturalWidth > 0).length >= 3));
  assert(await popup.isVisible('#sdq-popup-pause'), 'pause');
  await shot(popup, 'popup-running.png');
  for (const [reason, file] of [['disk full', 'popup-hold-disk-full.png'], ['backend stalled', 'popup-hold-backend-stalled.png']]) {
    await popup.route('**/agent-scheduler/v1/queue?**', async (route) => {
      const r = await route.fetch();
      const j = await r.json();
      await route.fulfill({ response: r, json: { ...j, hold_reason: reason } });
    });
    await popup.reload();
    const text = await until(`popup banner "${reason}"`, async () => (await popup.textContent('#sdq-popup-hold').catch(() => '')) || null);
    assertEq(text.trim(), `On hold: ${reason}`, 'popup banner');
    await shot(popup, file);
    await popup.unroute('**/agent-scheduler/v1/queue?**');
  }
  await host.call('DELETE', `${Q}/task/${t.task_id}`);
  await fake({ step_ms: 20 });
  await popup.close();
});

// A control a person can use: visible, inside the viewport, and the element at its centre.
const usable = async (p, sel, width) => {
  const el = p.locator(sel);
  assert(await el.isVisible(), `${sel} visible`);
  const box = await el.boundingBox();
  assert(box && box.x >= 0 && box.x + box.width <= width && box.y >= 0, `${sel} inside the viewport: ${JSON.stringify(box)}`);
  const hit = await el.evaluate((e, { x, y }) => e.contains(document.elementFromPoint(x, y)), { x: box.x + box.width / 2, y: box.y + box.height / 2 });
  assert(hit, `${sel} is the element at its centre`);
};

await check('backends section: add a second fake (the host\'s 422 shown first), its state and figures; drain, enable, disable, remove; at 1600 px and 360 px; Enter in the field adds', async () => {
  await closeModals(web);
  const B = `${Q}/backends`;
  const listed = () => host.get(B);
  await web.goto(`${host.base}/`);
  await web.waitForSelector('.panel[data-conn="online"]', { timeout: 30000 });
  await web.click('#sdq-tab-queue');
  await web.click('#sdq-backends-section summary');
  await web.waitForSelector('.brow[data-backend-id="flag-1"]');
  await usable(web, '#sdq-backend-url', 1600);
  assertEq(await web.textContent('label[for="sdq-backend-url"]'), 'Add backend', 'the field\'s label');
  // A URL the host refuses: its 422 under the field, nothing added.
  await web.fill('#sdq-backend-url', 'ftp://nowhere');
  await web.click('#sdq-backend-add');
  const err = await until('the host\'s refusal shown', async () => (await web.textContent('#sdq-backend-error').catch(() => '')) || null);
  assert(err.startsWith('422 url must be an SD.Next base URL'), `error shown: ${err}`);
  assertEq((await listed()).map((b) => b.id), ['flag-1'], 'nothing added');
  // The second fake, with credentials: never shown back.
  const second = new URL(FAKE2_URL);
  const withCreds = `http://night:s3cret@${second.host}`;
  await web.fill('#sdq-backend-url', withCreds);
  await web.click('#sdq-backend-add');
  await web.waitForSelector('#sdq-backend-error', { state: 'detached' });
  const added = await until('the host lists it up', async () => {
    const b = (await listed()).find((x) => x.source === 'added');
    return b && b.state === 'up' ? b : null;
  });
  assertEq(added.url, `http://${second.host}`, 'listed without its credentials');
  const row = `.brow[data-backend-id="${added.id}"]`;
  await until('the panel shows it up and enabled', async () => (await web.getAttribute(row, 'data-state').catch(() => null)) === 'up' && (await web.getAttribute(row, 'data-admin')) === 'enabled', 10000);
  assertEq(await web.inputValue('#sdq-backend-url'), '', 'the field is cleared');
  const text = await web.textContent('#sdq-backends-section');
  assert(!text.includes('s3cret'), 'no credentials in the panel');
  assert(/\d+ done · \d+ failed · \d+ loads · busy /.test(await web.textContent(`${row} .bfig`)), 'figures shown');
  const flagFig = await web.textContent('.brow[data-backend-id="flag-1"] .bfig');
  const flag = (await listed()).find((b) => b.id === 'flag-1');
  assert(flagFig.startsWith(`${flag.tasks_done} done · ${flag.tasks_failed} failed · ${flag.loads} loads`), `the host's figures: ${flagFig} vs ${JSON.stringify(flag)}`);
  await shot(web, 'backends-1600.png');

  // The same at phone width: every control usable.
  const m = await b.newPage();
  await m.setViewportSize({ width: 360, height: 740 });
  await m.goto(`${host.base}/`);
  await m.waitForSelector('.panel[data-conn="online"]', { timeout: 30000 });
  await m.click('#sdq-backends-section summary');
  await m.waitForSelector(row);
  for (const sel of ['#sdq-backend-url', '#sdq-backend-add', `${row} button[data-cmd="backend-drain"]`, `${row} button[data-cmd="backend-disable"]`, `${row} button[data-cmd="backend-remove"]`]) await usable(m, sel, 360);
  const over = await m.evaluate(() => document.scrollingElement.scrollWidth);
  assert(over <= 360, `no horizontal scroll: ${over}`);
  await shot(m, 'backends-360.png');
  await m.close();

  // Drain (idle: disabled at once), enable, disable: each as the host answers.
  for (const [cmd, want] of [['drain', 'disabled'], ['enable', 'enabled'], ['disable', 'disabled']]) {
    await web.click(`${row} button[data-cmd="backend-${cmd}"]`);
    await until(`${cmd}: the host has it ${want}`, async () => {
      const b = (await listed()).find((x) => x.id === added.id);
      return b.enabled === (want === 'enabled') && !b.draining;
    });
    await until(`${cmd}: the panel shows it ${want}`, async () => (await web.getAttribute(row, 'data-admin')) === want, 10000);
  }
  // A --backend one: the confirmation says it comes back at the next start; declined, it stays.
  let asked = '';
  web.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
  await web.click('.brow[data-backend-id="flag-1"] button[data-cmd="backend-remove"]');
  await until('asked', async () => asked || null);
  assert(asked.includes('--backend: it comes back when the host restarts'), `the question: ${asked}`);
  assertEq((await listed()).map((b) => b.id), ['flag-1', added.id], 'declined: nothing removed');
  // Remove the added one (confirmed).
  web.once('dialog', (d) => { asked = d.message(); d.accept(); });
  await web.click(`${row} button[data-cmd="backend-remove"]`);
  await until('the host lists the flag backend alone', async () => JSON.stringify((await listed()).map((b) => b.id)) === '["flag-1"]');
  assert(asked.startsWith(`Remove backend http://${second.host}?`), `the question: ${asked}`);
  await web.waitForSelector(row, { state: 'detached', timeout: 10000 });

  // Enter in the field adds it like the Add button: one request, on the same page (the form
  // submission goes nowhere).
  const adds = [];
  const onAdd = (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === B) adds.push(r.url()); };
  web.on('request', onAdd);
  await web.evaluate(() => { window.sdqSamePage = true; });
  await web.fill('#sdq-backend-url', withCreds);
  await web.press('#sdq-backend-url', 'Enter');
  const again = await until('Enter: the host lists it again', async () => (await listed()).find((x) => x.source === 'added') ?? null);
  assertEq(again.url, `http://${second.host}`, 'Enter: the field\'s URL added');
  await web.waitForSelector(`.brow[data-backend-id="${again.id}"]`, { timeout: 10000 });
  assertEq(await web.inputValue('#sdq-backend-url'), '', 'Enter: the field is cleared');
  web.off('request', onAdd);
  assertEq(adds.length, 1, 'Enter: one POST /backends');
  assertEq(await web.evaluate(() => window.sdqSamePage), true, 'Enter: no page load');
  assertEq(await web.$('#sdq-backend-error'), null, 'Enter: no error shown');
  await host.call('DELETE', `${B}/${encodeURIComponent(again.id)}`);
  await until('removed again: the flag backend alone', async () => JSON.stringify((await listed()).map((b) => b.id)) === '["flag-1"]');
});

await check('no uncaught errors in the pages', async () => {
  assert(pageErrors.length === 0, pageErrors.join('\n'));
});

fs.writeFileSync(env('RESULTS', path.join(SHOT_DIR, 'workbench-results.json')), JSON.stringify(results, null, 2));
console.log('figures', JSON.stringify(results.figures));
await b.close();
process.exit(Math.min(failed(), 100));
