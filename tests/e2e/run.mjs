// End-to-end run of the built extension in headless Chromium against the REAL host and the
// fake SD.Next (both started by tests/tests/integration/browser_e2e.rs, which passes):
//   EXT_DIR      target/extension-test       HOST_URL    http://127.0.0.1:<port>
//   MINI_URL     the project's mini SD.Next page (always)
//   MODERN_URL / STANDARD_URL  the recorded SD.Next pages (when ../shared is present)
//   CHECKPOINTS  the fake's checkpoint titles, comma-separated
//   SHOT_DIR     where screenshots go          RESULTS     JSON file with checks and figures
// Every wait is a condition with a deadline. Exit status = number of failed checks (max 100).
import fs from 'node:fs';
import path from 'node:path';
import { launch, BROWSER, until, Host, check, failed, results, assert, assertEq } from './lib.mjs';

const env = (k, d) => process.env[k] ?? d;
const EXT_DIR = path.resolve(env('EXT_DIR', '../../target/extension-test'));
const host = new Host(env('HOST_URL', 'http://127.0.0.1:7861'));
const SHOT_DIR = path.resolve(env('SHOT_DIR', '../../target/screenshots'));
const CHECKPOINTS = env('CHECKPOINTS', 'a,b').split(',').filter(Boolean);
// A word unique to this run, so searches stay exact when a host is reused.
const RUN = 'run' + Date.now().toString(36);
fs.mkdirSync(SHOT_DIR, { recursive: true });

// The made-up name the non-loopback page is served under (resolved to 127.0.0.1 by the
// browser: Chromium's --host-resolver-rules, Firefox's network.dns.localDomains).
const SITE_NAME = 'sdnext.test';
const b = await launch(EXT_DIR, { names: [SITE_NAME] });
const ctx = b.ctx;
results.figures.browser = BROWSER;
results.figures.extension_origin = b.origin;
const EXPECTED_ORIGIN = env(BROWSER === 'firefox' ? 'EXPECTED_FIREFOX_ORIGIN' : 'EXPECTED_EXTENSION_ORIGIN');
if (EXPECTED_ORIGIN && EXPECTED_ORIGIN !== b.origin) {
  console.log(`FAIL extension origin ${b.origin} != ${EXPECTED_ORIGIN} (the manifest key / the test profile's uuid pref fixes it)`);
  process.exit(1);
}
console.log(`${BROWSER}: extension ${b.origin} loaded from ${EXT_DIR}`);

// Point the extension at the test host before any page loads.
await b.worker(async (g, url) => {
  await g.chrome.storage.local.set({ options: { host_url: url } });
}, host.base);

const ext = b.ext;
// Uncaught errors in any page (extension pages included) fail the run at the end.
const pageErrors = [];
b.onPage((pg) => pg.on('pageerror', (e) => { pageErrors.push(`${pg.url()}: ${e.message}`); console.log(`[pageerror] ${pg.url()}: ${e.message}`); }));

async function openSdnext(url, label) {
  const page = await b.newPage();
  page.on('pageerror', (e) => console.log(`[${label} pageerror] ${e.message}`));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.documentElement.dataset.sdqState === 'ready', null, { timeout: 60000 });
  const fig = await page.evaluate(() => ({
    ready_to_button_ms: Number(document.documentElement.dataset.sdqReadyToButtonMs),
    nav_to_button_ms: Number(document.documentElement.dataset.sdqButtonMs),
  }));
  results.figures[`button_${label}`] = fig;
  return page;
}

async function placement(page, p) {
  return page.evaluate((p) => {
    const b = document.querySelector(`button[data-sdq-tab="${p}"]`);
    const g = document.getElementById(`${p}_generate`);
    if (!b || !g) return { present: !!b, generate: !!g };
    const wrap = b.closest('.sdq-enqueue-wrapper');
    const group = document.getElementById(`${p}_generate_group`);
    return {
      present: true,
      id: b.id,
      text: b.textContent,
      inSlot: !!b.closest(`[data-selector="#${p}_enqueue"]`),
      // Modern: right after Generate's sd-button in the toolbar, or (no room) in the row
      // right under the toolbar's row.
      besideModernGenerate: !!group && (group.querySelector(':scope > button.sd-button.generate')?.nextElementSibling === b
        || (!!wrap && wrap.previousElementSibling === group.parentElement && wrap.contains(b))),
      label: b.innerText.trim(),
      inGroup: !!(group && group.contains(b)),
      adjacent: g.nextElementSibling === wrap,
      // Standard: in the Generate box's row, after Generate ("beside"); the dropdown in the
      // quicksettings row.
      besideStandard: !!g.closest(`#${p}_generate_box`)?.contains(b)
        && !!(g.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING),
    };
  }, p);
}

async function clickEnqueue(page, p, how = 'click') {
  const before = await page.getAttribute(`button[data-sdq-tab="${p}"]`, 'data-sdq-task-ids');
  if (how === 'click') await page.click(`button[data-sdq-tab="${p}"]`);
  else if (how === 'js') await page.evaluate((p) => document.querySelector(`button[data-sdq-tab="${p}"]`).click(), p);
  else await how();
  const ids = await until(`Enqueue on ${p} answered`, async () => {
    const st = await page.getAttribute(`button[data-sdq-tab="${p}"]`, 'data-sdq-state');
    if (st === 'error') throw new Error(await page.getAttribute(`button[data-sdq-tab="${p}"]`, 'data-sdq-error'));
    const now = await page.getAttribute(`button[data-sdq-tab="${p}"]`, 'data-sdq-task-ids');
    return st === 'queued' && now && now !== before ? now : null;
  });
  return ids.split(',');
}

// ---- 0. pause the queue from the popup (tasks stay pending for the reorder checks) ----
const popup = await b.newPage();
await popup.setViewportSize({ width: 360, height: 240 });
await popup.goto(ext('popup.html'));
await check('popup shows the connection and pauses the host queue', async () => {
  await popup.waitForSelector('.popup[data-conn="online"]', { timeout: 30000 });
  const q0 = await host.queue();
  assert(!q0.paused, 'queue starts running');
  await popup.click('#sdq-popup-pause');
  await until('host paused', async () => (await host.queue()).paused === true);
  await popup.waitForSelector('.popup[data-paused="true"]');
});

// ---- 1. recorded SD.Next pages (Modern and Standard) ----
for (const [label, url] of [['modern', env('MODERN_URL')], ['standard', env('STANDARD_URL')]]) {
  if (!url) { console.log(`skip ${label}: recorded page not available`); continue; }
  let page;
  await check(`${label}: Enqueue appears beside Generate on txt2img, img2img and control`, async () => {
    page = await openSdnext(url, label);
    for (const p of ['txt2img', 'img2img', 'control']) {
      const pl = await placement(page, p);
      assert(pl.present, `${p}: no button ${JSON.stringify(pl)}`);
      // Modern: SD.Next's own Enqueue portal slot in the Generate group (the recorded page is
      // re-parsed from serialized HTML, which moves nested buttons, so only the slot is checked).
      // Modern: beside Generate in its toolbar, never in the label-hiding Enqueue portal slot
      // (the recorded page is re-parsed from serialized HTML, which moves nested buttons).
      if (label === 'modern') assert(pl.besideModernGenerate && !pl.inSlot, `${p}: not beside the Modern Generate: ${JSON.stringify(pl)}`);
      else assert(pl.besideStandard, `${p}: not beside Generate in its box: ${JSON.stringify(pl)}`);
    }
    await page.screenshot({ path: path.join(SHOT_DIR, `${label}-page.png`) });
  });
  await check(`${label}: Enqueue creates a task with the page's values`, async () => {
    const pageVals = await page.evaluate(() => ({
      prompt: document.querySelector('#txt2img_prompt textarea')?.value ?? '',
      steps: document.querySelector('#txt2img_steps input[type=number]')?.value ?? '',
      ckpt: document.querySelector('#setting_sd_model_checkpoint input')?.value ?? '',
    }));
    const [id] = await clickEnqueue(page, 'txt2img', 'js');
    const t = await host.task(id);
    assertEq(t.type, 'txt2img', 'type');
    assertEq(t.params.prompt, pageVals.prompt, 'prompt');
    if (pageVals.steps !== '') assertEq(t.params.steps, Number(pageVals.steps), 'steps');
    if (pageVals.ckpt) assertEq(t.params.checkpoint, pageVals.ckpt, 'checkpoint');
    assert(t.has_page_snapshot !== false, 'page snapshot stored');
    await host.call('DELETE', `/agent-scheduler/v1/task/${encodeURIComponent(id)}`);
  });
  await check(`${label}: the Control tab's Enqueue makes a control task with its units (captured request vs expected body)`, async () => {
    // The recorded page is static (no Gradio behind it): the unit and the input are set in
    // its DOM, as the live page would show them.
    const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const set = await page.evaluate((png) => {
      const tabs = document.getElementById('control-tabs');
      const first = tabs && tabs.querySelector(':scope > .tabitem');
      if (!first) return 'no Control Type tabs';
      const q = (id) => first.querySelector(`[id="${id}"]`);
      const put = (id, v) => { const i = q(id)?.querySelector('input'); if (!i) return false; i.value = v; return true; };
      const on = q('control_unit-0-enabled')?.querySelector('input[type=checkbox]');
      if (!on) return 'no unit 0';
      on.checked = true;
      if (!put('control_unit-0-process_name', 'Canny') || !put('control_unit-0-model_name', 'tiny-controlnet')) return 'no unit fields';
      const s = q('control_unit-0-strength')?.querySelector('input[type=number]');
      if (s) s.value = '0.7';
      const input = document.getElementById('control_input');
      if (!input) return 'no #control_input';
      const img = document.createElement('img');
      img.src = png;
      input.appendChild(img);
      const w = document.querySelector('#control_before_resize_width input[type=number]');
      if (w) w.value = '320';
      return 'ok';
    }, png);
    assertEq(set, 'ok', 'recorded page prepared');
    const [id] = await clickEnqueue(page, 'control', 'js');
    const t = await host.task(id);
    assertEq(t.type, 'control', 'type');
    assertEq(t.params.unit_type, 'controlnet', 'unit type');
    assertEq(t.params.width_before, 320, 'width_before');
    // Listings leave the unit image out; the stored request has it.
    assertEq(t.params.control[0].model, 'tiny-controlnet', 'unit model');
    assertEq(t.params.control[0].process, 'Canny', 'unit processor');
    assertEq(t.params.control[0].strength, 0.7, 'unit strength');
    const stored = await host.get(`/agent-scheduler/v1/task/${encodeURIComponent(id)}/request`);
    assertEq(stored.data.request.control[0].image, png, 'the unit gets the shared input');
    assert(!('init_control' in stored.data.request), 'no init image beside the unit');
    await host.call('DELETE', `/agent-scheduler/v1/task/${encodeURIComponent(id)}`);
  });
  await check(`${label}: what the kit cannot run live (a T2I Adapter unit, the Detailer's settings): captured request vs expected body`, async () => {
    const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const set = await page.evaluate(() => {
      // The second Control Type tab (T2I Adapter) selected, as a click would leave it.
      const tabs = document.getElementById('control-tabs');
      const btns = [...tabs.querySelector(':scope > .tab-nav').querySelectorAll('button')];
      btns.forEach((b, i) => b.classList.toggle('selected', i === 1));
      const item = tabs.querySelectorAll(':scope > .tabitem')[1];
      const q = (id) => item.querySelector(`[id="${id}"]`);
      const put = (id, v) => { const i = q(id)?.querySelector('input'); if (!i) return false; i.value = v; return true; };
      const on = q('control_unit-0-enabled')?.querySelector('input[type=checkbox]');
      if (!on) return 'no unit 0 in the T2I Adapter tab';
      on.checked = true;
      if (!put('control_unit-0-process_name', 'Canny') || !put('control_unit-0-model_name', 'Canny')) return 'no unit fields';
      const st = q('control_unit-0-strength')?.querySelector('input[type=number]');
      if (!st) return 'no unit strength';
      st.value = '0.8';
      const factor = [...item.querySelectorAll('.block')].find((b) => b.querySelector('[data-testid="block-info"]')?.textContent.trim() === 'Control factor');
      if (!factor) return 'no Control factor';
      factor.querySelector('input[type=number]').value = '0.65';
      // The Detailer of the Control tab: enabled, strength, classes, max detected, renoise.
      const num = (id, v) => { const i = document.querySelector(`#${id} input[type=number]`); if (!i) return false; i.value = v; return true; };
      const det = document.querySelector('#control_detailer_enabled input[type=checkbox]');
      if (!det) return 'no control_detailer_enabled';
      det.checked = true;
      if (!num('control_detailer_strength', '0.45') || !num('control_detailer_max', '3') || !num('control_detailer_renoise', '1.1')) return 'no detailer numbers';
      const cls = document.querySelector('#control_detailer_classes textarea, #control_detailer_classes input');
      if (!cls) return 'no detailer classes';
      cls.value = 'face';
      return 'ok';
    });
    assertEq(set, 'ok', 'recorded page prepared');
    const [id] = await clickEnqueue(page, 'control', 'js');
    try {
      const stored = (await host.get(`/agent-scheduler/v1/task/${encodeURIComponent(id)}/request`)).data.request;
      assertEq(stored.unit_type, 't2i adapter', 'unit type');
      assertEq(stored.control.length, 1, 'one unit');
      const u = stored.control[0];
      // The T2I Adapter tab's units have no mode/start/end (SD.Next's own page).
      assertEq(Object.keys(u).sort().join(','), 'factor,image,model,process,strength,unit_type', 'unit fields');
      assertEq(u.strength, 0.8, 'strength');
      assertEq(u.unit_type, 't2i adapter', 'unit_type');
      assertEq(u.process, 'Canny', 'process');
      assertEq(u.model, 'Canny', 'model');
      assertEq(u.factor, 0.65, 'factor (Control factor)');
      assertEq(u.image, png, 'the unit gets the shared input');
      assertEq(stored.detailer_enabled, true, 'detailer_enabled');
      assertEq(stored.detailer_strength, 0.45, 'detailer_strength');
      assertEq(stored.detailer_max, 3, 'detailer_max');
      assertEq(stored.detailer_sigma_adjust, 1.1, 'detailer_sigma_adjust (Renoise)');
      assertEq(stored.detailer_classes, 'face', 'detailer_classes');
    } finally {
      await host.call('DELETE', `/agent-scheduler/v1/task/${encodeURIComponent(id)}`);
    }
  });
  if (page) await page.close();
}

// ---- 1b. an SD.Next page at a non-loopback address, enabled from the extension's own UI ----
await check(`non-loopback page (${SITE_NAME}): nothing before it is enabled; the popup's "Enable Agent Scheduler on this site" enables it; Enqueue queues from it; a page there that is not SD.Next is left alone; Remove in the options takes it back`, async () => {
  const modern = env('MODERN_URL');
  if (!modern) throw new Error('MODERN_URL not given');
  const url = modern.replace('127.0.0.1', SITE_NAME);
  const pattern = `http://${SITE_NAME}/*`;
  const page = await b.newPage();
  await page.goto(url, { waitUntil: 'load' });
  const marks = () => page.evaluate(() => ({
    host: !!document.getElementById('sdq-host'),
    state: document.documentElement.dataset.sdqState ?? null,
    bridge: document.documentElement.hasAttribute('data-sdq-bridge'),
  }));
  assertEq(await marks(), { host: false, state: null, bridge: false }, 'nothing injected before the site is enabled');
  const tabId = await until('the page\'s tab', () => b.worker(async (g, u) => (await g.chrome.tabs.query({})).find((t) => t.url === u)?.id ?? null, url));
  // The popup, opened as a page over that tab (?tab=: a real toolbar click opens it over the
  // active tab).
  const pop = await b.newPage();
  await pop.setViewportSize({ width: 360, height: 300 });
  await pop.goto(b.ext(`popup.html?tab=${tabId}`));
  await pop.waitForSelector('#sdq-enable-site', { timeout: 30000 });
  const offer = await pop.textContent('#sdq-popup-site');
  assert(offer.includes('Enable Agent Scheduler on this site') && offer.includes(`grants ${pattern} (any port)`), `offer: ${offer}`);
  await pop.screenshot({ path: path.join(SHOT_DIR, `${BROWSER}-popup-enable-site.png`) });
  await pop.click('#sdq-enable-site');
  await pop.waitForSelector('#sdq-popup-site[data-site="enabled"]', { timeout: 30000 });
  await pop.screenshot({ path: path.join(SHOT_DIR, `${BROWSER}-popup-site-enabled.png`) });
  await pop.close();
  assert(await b.worker((g, p) => g.chrome.permissions.contains({ origins: [p] }), pattern), 'the origin\'s permission is granted');
  // The open tab got the content script at once; registered for every later page there.
  await page.bringToFront();
  await page.waitForFunction(() => document.documentElement.dataset.sdqState === 'ready', null, { timeout: 60000 });
  await until('content scripts registered for the site', () => b.worker(async (g, p) => {
    const r = await g.chrome.scripting.getRegisteredContentScripts();
    return r.length === 2 && r.every((x) => x.matches.length === 1 && x.matches[0] === p);
  }, pattern));
  // A page there that is not SD.Next (another app behind the same proxy): the registered
  // scripts run, see no SD.Next marker and add nothing (the test build says so in the console
  // when the content script gives up, after 10 s).
  const plain = await b.newPage();
  let gaveUp = false;
  plain.on('console', (m) => { if (m.text().includes('not an SD.Next page')) gaveUp = true; });
  await plain.goto(url.replace(/\/modern$/, '/plain'), { waitUntil: 'load' });
  await page.reload();
  await page.waitForFunction(() => document.documentElement.dataset.sdqState === 'ready', null, { timeout: 60000 });
  await page.screenshot({ path: path.join(SHOT_DIR, `${BROWSER}-${SITE_NAME}-page.png`) });
  const pl = await placement(page, 'txt2img');
  assert(pl.present && pl.besideModernGenerate, `txt2img: ${JSON.stringify(pl)}`);
  const prompt = await page.evaluate(() => document.querySelector('#txt2img_prompt textarea')?.value ?? '');
  const [id] = await clickEnqueue(page, 'txt2img', 'js');
  const t = await host.task(id);
  assertEq([t.type, t.params.prompt], ['txt2img', prompt], 'the task has the page\'s values');
  await host.call('DELETE', `/agent-scheduler/v1/task/${encodeURIComponent(id)}`);
  await until('the content script gave up on the plain page', () => gaveUp, 30000);
  assertEq(await plain.evaluate(() => ({
    host: !!document.getElementById('sdq-host'),
    attrs: [...document.documentElement.attributes].map((a) => a.name).filter((n) => n.startsWith('data-sdq')),
  })), { host: false, attrs: [] }, 'nothing added to a page that is not SD.Next');
  await plain.close();
  // The options page lists it with its pattern; Remove takes the site (and, where it was
  // optional, the permission) back and unregisters the scripts.
  const opt = await b.newPage();
  await opt.goto(b.ext('options.html'));
  await opt.waitForSelector(`#sdq-site-list li[data-pattern="${pattern}"]`);
  const row = await opt.textContent(`#sdq-site-list li[data-pattern="${pattern}"]`);
  assert(row.includes(`grants ${pattern} (any port)`), `options row: ${row}`);
  await opt.screenshot({ path: path.join(SHOT_DIR, `${BROWSER}-options-sites.png`) });
  await opt.click(`#sdq-site-list li[data-pattern="${pattern}"] button.remove`);
  await opt.waitForSelector(`#sdq-site-list li[data-pattern="${pattern}"]`, { state: 'detached' });
  await until('content scripts unregistered', () => b.worker(async (g) => (await g.chrome.scripting.getRegisteredContentScripts()).length === 0));
  if (BROWSER === 'firefox') {
    // (Chromium's test build holds the name as a required permission: it cannot go.)
    assert(!(await b.worker((g, p) => g.chrome.permissions.contains({ origins: [p] }), pattern)), 'permission given back');
  }
  await opt.close();
  await page.close();
});

// ---- 2. the project's mini SD.Next page ----
const mini = await openSdnext(env('MINI_URL'), 'mini');
const ids = [];
await check('mini: Enqueue appears beside Generate (after the late moves)', async () => {
  for (const p of ['txt2img', 'img2img', 'control']) {
    const pl = await placement(mini, p);
    assert(pl.present && pl.besideStandard, `${p}: ${JSON.stringify(pl)}`);
  }
  await mini.screenshot({ path: path.join(SHOT_DIR, 'mini-page.png') });
});

await check('mini: Enqueue creates a task whose params equal the page values', async () => {
  await mini.fill('#txt2img_prompt textarea', 'p1 a red fox');
  await mini.fill('#txt2img_neg_prompt textarea', 'blurry');
  await mini.fill('#txt2img_steps input[type=number]', '12');
  await mini.fill('#txt2img_cfg_scale input[type=number]', '7.5');
  await mini.fill('#txt2img_width input[type=number]', '640');
  await mini.fill('#txt2img_seed input', '1234');
  await mini.fill('#txt2img_batch_count input[type=number]', '2');
  await mini.check('#txt2img_enable_hr input');
  const [id] = await clickEnqueue(mini, 'txt2img');
  ids.push(id);
  const t = await host.task(id);
  const want = {
    prompt: 'p1 a red fox', negative_prompt: 'blurry', styles: [], steps: 12, sampler_name: 'Default',
    cfg_scale: 7.5, cfg_end: 1, cfg_rescale: -1, width: 640, height: 512, seed: 1234, subseed: -1,
    subseed_strength: 0, n_iter: 2, batch_size: 1, enable_hr: true, hr_resize_mode: 1, hr_upscaler: 'None',
    hr_scale: 2, denoising_strength: 0.3, refiner_steps: 20, checkpoint: 'a', clip_skip: 1, vae_type: 'Full',
  };
  for (const [k, v] of Object.entries(want)) assertEq(t.params[k], v, `param ${k}`);
  assertEq(t.type, 'txt2img', 'type');
  // Back to one image per task for the rest of the run.
  await mini.fill('#txt2img_batch_count input[type=number]', '1');
  await mini.uncheck('#txt2img_enable_hr input');
});

await check('mini: two more tasks (shortcut Ctrl+E and the button)', async () => {
  await mini.fill('#txt2img_prompt textarea', 'p2 a green owl');
  ids.push(...await clickEnqueue(mini, 'txt2img', async () => {
    await mini.focus('#txt2img_prompt textarea');
    await mini.keyboard.press('Control+KeyE');
  }));
  await mini.fill('#txt2img_prompt textarea', `p3 a blue whale ${RUN}`);
  ids.push(...await clickEnqueue(mini, 'txt2img'));
  const q = await host.queue();
  assertEq(q.pending_tasks.map((t) => t.id), ids, 'host order after enqueue');
});

const panel = await b.newPage();
await panel.goto(ext('panel.html'));
await check('panel: drag and drop changes the host order', async () => {
  await panel.waitForSelector('.panel[data-conn="online"]', { timeout: 30000 });
  await until('pending rows', async () => (await panel.$$('.prow[data-task-id]')).length === 3);
  const src = panel.locator(`.prow[data-task-id="${ids[2]}"]`);
  const dst = panel.locator(`.prow[data-task-id="${ids[0]}"]`);
  await src.dragTo(dst, { targetPosition: { x: 30, y: 4 } });
  await until('host order p3,p1,p2', async () => {
    const q = await host.queue();
    return JSON.stringify(q.pending_tasks.map((t) => t.id)) === JSON.stringify([ids[2], ids[0], ids[1]]);
  });
  await until('panel order', async () => JSON.stringify(await panel.$$eval('.prow[data-task-id]', (r) => r.map((x) => x.dataset.taskId))) === JSON.stringify([ids[2], ids[0], ids[1]]));
  await panel.screenshot({ path: path.join(SHOT_DIR, 'panel-queue.png') });
});

await check('panel: inline edit of a pending task (PUT params merge)', async () => {
  await panel.click(`.prow[data-task-id="${ids[0]}"] .edit`);
  await panel.fill('#sdq-edit [data-field="steps"]', '7');
  await panel.fill('#sdq-edit [data-field="@name"]', 'edited-one');
  await panel.click('#sdq-edit-save');
  await until('host params.steps == 7', async () => {
    const t = await host.task(ids[0]);
    return t.params.steps === 7 && t.name === 'edited-one' && t.params.prompt === 'p1 a red fox';
  });
});

await check('popup: resume runs the queue; counts and state follow the host', async () => {
  await popup.waitForSelector('#sdq-popup-counts [data-pending="3"]', { timeout: 10000 });
  await popup.screenshot({ path: path.join(SHOT_DIR, 'popup-paused.png') });
  await popup.click('#sdq-popup-pause');
  await until('host resumed', async () => (await host.queue()).paused === false);
  await popup.waitForSelector('.popup[data-paused="false"]');
  await until('three tasks done', async () => {
    const h = await host.history('&status=done');
    return ids.every((id) => h.tasks.some((t) => t.id === id));
  }, 60000);
  await popup.waitForSelector('#sdq-popup-counts [data-pending="0"]', { timeout: 10000 });
  await popup.screenshot({ path: path.join(SHOT_DIR, 'popup.png') });
});

await check('panel: the finished task\'s image shows in the detail view', async () => {
  await panel.click('#sdq-tab-history');
  await panel.waitForSelector(`.hrow[data-task-id="${ids[0]}"]`, { timeout: 30000 });
  await panel.click(`.hrow[data-task-id="${ids[0]}"] .summary`);
  await panel.waitForSelector('#sdq-gallery img', { timeout: 30000 });
  await until('image decoded', () => panel.$eval('#sdq-gallery img', (i) => i.complete && i.naturalWidth > 0));
  const info = await panel.inputValue('#sdq-infotext');
  assert(info.includes('p1 a red fox'), `infotext: ${info.slice(0, 120)}`);
  await panel.screenshot({ path: path.join(SHOT_DIR, 'panel-detail.png') });
  const [zip] = await Promise.all([panel.waitForEvent('download'), panel.click('#sdq-zip')]);
  const zipFile = path.join(SHOT_DIR, 'results.zip');
  await zip.saveAs(zipFile);
  assertEq(fs.readFileSync(zipFile).subarray(0, 2).toString(), 'PK', 'zip download');
  await panel.click('#sdq-detail .close');
});

await check('panel: bookmark and rename (double-click) go to the host', async () => {
  await panel.click(`.hrow[data-task-id="${ids[1]}"] .bm`);
  await until('bookmarked', async () => (await host.task(ids[1])).bookmarked === true);
  await panel.waitForSelector(`.hrow[data-task-id="${ids[1]}"] .bm[data-bookmarked="true"]`);
  await panel.dblclick(`.hrow[data-task-id="${ids[1]}"] .label`);
  await panel.fill(`.hrow[data-task-id="${ids[1]}"] input.rename`, 'renamed-two');
  await panel.press(`.hrow[data-task-id="${ids[1]}"] input.rename`, 'Enter');
  await until('renamed', async () => (await host.task(ids[1])).name === 'renamed-two');
  await panel.waitForSelector(`.hrow[data-task-id="${ids[1]}"] .label:text("renamed-two")`);
});

await check('panel: search is answered by the host', async () => {
  await panel.fill('#sdq-search', RUN);
  const h = await host.history(`&q=${RUN}`);
  const want = h.tasks.map((t) => t.id);
  assert(want.includes(ids[2]) && !want.includes(ids[0]) && !want.includes(ids[1]), `host search: ${want}`);
  await until('the panel shows the host\'s answer', async () => {
    const rows = await panel.$$eval('.hrow[data-task-id]', (r) => r.map((x) => x.dataset.taskId));
    return JSON.stringify(rows) === JSON.stringify(want);
  });
  await panel.screenshot({ path: path.join(SHOT_DIR, 'panel-history-search.png') });
});

await check('panel: requeue makes a new task; delete removes one', async () => {
  const before = (await host.queue()).total_pending_tasks + (await host.history()).total;
  await panel.click(`.hrow[data-task-id="${ids[2]}"] .requeue`);
  await until('a new task with the same prompt', async () => {
    const all = [...(await host.queue()).pending_tasks, ...(await host.history()).tasks];
    return all.length > before && all.some((t) => t.id !== ids[2] && t.params.prompt === `p3 a blue whale ${RUN}`);
  });
  // Delete from the history.
  await panel.click(`.hrow[data-task-id="${ids[2]}"] .delete`);
  await until('deleted from the host', async () => {
    const r = await fetch(`${host.base}/agent-scheduler/v1/task/${ids[2]}`);
    return r.status === 404;
  });
  await panel.waitForSelector(`.hrow[data-task-id="${ids[2]}"]`, { state: 'detached' });
  await panel.fill('#sdq-search', '');
});

await check('context-menu handler queues one task per checkpoint', async () => {
  await mini.bringToFront();
  const r = await b.worker((g) => g.sdq.queueAll());
  assert(r && r.ok, `queueAll: ${JSON.stringify(r)}`);
  const tids = r.data.task_ids;
  assertEq(tids.length, CHECKPOINTS.length, 'one task per checkpoint');
  const cks = [];
  for (const id of tids) cks.push((await host.task(id)).params.checkpoint);
  assertEq(cks.sort(), [...CHECKPOINTS].sort(), 'checkpoints');
});

await check('in-page right-click menu: Queue with all checkpoints', async () => {
  const before = await mini.getAttribute('button[data-sdq-tab="txt2img"]', 'data-sdq-task-ids');
  await mini.click('button[data-sdq-tab="txt2img"]', { button: 'right' });
  await mini.locator('#sdq-menu button[data-action="all"]').click();
  const now = await until('queued', async () => {
    const v = await mini.getAttribute('button[data-sdq-tab="txt2img"]', 'data-sdq-task-ids');
    return v && v !== before ? v : null;
  });
  assertEq(now.split(',').length, CHECKPOINTS.length, 'tasks from the in-page menu');
});

await check('in-page drawer: the panel opens beside SD.Next and "send to img2img" fills the page', async () => {
  await mini.locator('#sdq-toggle').click();
  const frame = mini.frameLocator('#sdq-panel-frame');
  await frame.locator('.panel[data-conn="online"]').waitFor({ timeout: 30000 });
  await frame.locator('#sdq-tab-history').click();
  await frame.locator(`.hrow[data-task-id="${ids[0]}"] .summary`).click();
  await frame.locator('#sdq-gallery img').first().waitFor({ timeout: 30000 });
  await mini.screenshot({ path: path.join(SHOT_DIR, 'panel-in-page.png') });
  await frame.locator('#sdq-send-img2img').click();
  await until('img2img prompt filled', () => mini.$eval('#img2img_prompt textarea', (t) => t.value === 'p1 a red fox'));
  assertEq(await mini.$eval('#img2img_steps input[type=number]', (i) => i.value), '7', 'steps filled');
});

await check('checkpoint dropdown: a chosen checkpoint and a folder-less "Runtime" go to the host', async () => {
  await mini.locator('#sdq-close').click(); // close the drawer
  await mini.click('#tabs .tab-nav button:text-is("Text")'); // "send to img2img" switched tabs
  await mini.waitForFunction(() => document.querySelectorAll('#sdq-txt2img-ckpt option').length >= 4);
  const labels = await mini.$$eval('#sdq-txt2img-ckpt option', (o) => o.map((x) => x.textContent));
  assert(labels[0] === 'Current checkpoint' && labels[1] === 'Runtime checkpoint' && CHECKPOINTS.every((c) => labels.includes(c)), `options: ${labels}`);
  await host.post('/agent-scheduler/v1/queue/pause');
  await mini.selectOption('#sdq-txt2img-ckpt', `t:${CHECKPOINTS[1]}`);
  const [a] = await clickEnqueue(mini, 'txt2img');
  assertEq((await host.task(a)).params.checkpoint, CHECKPOINTS[1], 'chosen checkpoint');
  await mini.selectOption('#sdq-txt2img-ckpt', '@runtime');
  const [b] = await clickEnqueue(mini, 'txt2img');
  const tb = await host.task(b);
  assert(tb.params.checkpoint == null, `runtime checkpoint is null: ${tb.params.checkpoint}`);
  await mini.selectOption('#sdq-txt2img-ckpt', '@current');
});
await host.post('/agent-scheduler/v1/queue/resume');

await check('service worker: notifications for a failed task and for the finished queue', async () => {
  await b.worker(async (g) => { for (const id of Object.keys(await g.chrome.notifications.getAll())) await g.chrome.notifications.clear(id); });
  const r = await host.post('/agent-scheduler/v1/queue/txt2img', { prompt: 'will fail', alwayson_scripts: { nope: { args: [] } }, steps: 2 });
  await until('task failed', async () => (await host.task(r.task_id)).status === 'failed', 30000);
  const log = await until('"Task failed" and "Queue finished" notifications', async () => {
    const l = await b.worker((g) => g.__sdqNotifications || []);
    const failedOne = l.some((n) => n.title === 'Task failed' && n.message === r.task_id);
    const finished = l.some((n) => n.title === 'Queue finished');
    return failedOne && finished ? l : null;
  }, 20000);
  // Headless Firefox has no notification display (its alerts service shows nothing, so
  // getAll() is empty there); the log above is written once create() has resolved.
  if (BROWSER === 'chromium') {
    const shown = await b.worker(async (g) => Object.keys(await g.chrome.notifications.getAll()));
    assert(shown.length >= 1, 'notifications.getAll has them');
  }
  results.figures.notifications = log.map((n) => n.title);
});

await check('options page: saving stores the options the content script and panel use', async () => {
  const opt = await b.newPage();
  await opt.goto(ext('options.html'));
  await opt.waitForSelector('#host_url');
  assertEq(await opt.inputValue('#host_url'), host.base, 'host url shown');
  await opt.fill('#page_size', '25');
  await opt.fill('#shortcut', 'Alt+KeyQ');
  await opt.click('#save');
  await opt.waitForSelector('#status:text("Saved.")');
  const stored = await b.worker((g) => g.chrome.storage.local.get('options'));
  assertEq([stored.options.page_size, stored.options.shortcut, stored.options.host_url], [25, 'Alt+KeyQ', host.base], 'stored');
  await opt.screenshot({ path: path.join(SHOT_DIR, 'options.png') });
  // The content script picks the new shortcut up at once.
  await mini.bringToFront();
  await mini.fill('#txt2img_prompt textarea', 'p4 via alt+q');
  await clickEnqueue(mini, 'txt2img', async () => {
    await mini.focus('#txt2img_prompt textarea');
    await mini.keyboard.press('Alt+KeyQ');
  });
  await opt.close();
});

await check('popup: host not reachable shows the command that starts it', async () => {
  await b.worker((g) => g.chrome.storage.local.get('options').then((o) => g.chrome.storage.local.set({ options: { ...o.options, host_url: 'http://127.0.0.1:9' } })));
  const p = await b.newPage();
  await p.setViewportSize({ width: 360, height: 240 });
  await p.goto(ext('popup.html'));
  await p.waitForSelector('.popup[data-conn="offline"]', { timeout: 30000 });
  const hint = await p.textContent('.hint');
  assert(hint.includes('cargo run --release -p agent-scheduler -- serve'), `hint: ${hint}`);
  await p.screenshot({ path: path.join(SHOT_DIR, 'popup-offline.png') });
  await p.close();
  await b.worker((g, url) => g.chrome.storage.local.get('options').then((o) => g.chrome.storage.local.set({ options: { ...o.options, host_url: url } })), host.base);
});

const FAKE_URL = env('FAKE_URL');
const Q = '/agent-scheduler/v1';
const pendingIds = async () => (await host.queue()).pending_tasks.filter((t) => t.status === 'pending').map((t) => t.id);

await check('in-page menu: "Queue with task name" asks for the name', async () => {
  await mini.bringToFront();
  mini.once('dialog', (d) => d.accept('named-from-menu'));
  const [id] = await clickEnqueue(mini, 'txt2img', async () => {
    await mini.click('button[data-sdq-tab="txt2img"]', { button: 'right' });
    await mini.locator('#sdq-menu button[data-action="name"]').click();
  });
  assertEq((await host.task(id)).name, 'named-from-menu', 'name');
});

await check('panel: live progress of the running task, then interrupt', async () => {
  if (!FAKE_URL) throw new Error('FAKE_URL not given');
  await until('queue idle', async () => (await host.queue()).pending_tasks.length === 0, 60000);
  await fetch(`${FAKE_URL}/fake/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ step_ms: 150 }) });
  await panel.bringToFront();
  await panel.click('#sdq-tab-queue');
  await mini.fill('#txt2img_prompt textarea', 'slow one');
  await mini.fill('#txt2img_steps input[type=number]', '40');
  const [id] = await clickEnqueue(mini, 'txt2img');
  await mini.fill('#txt2img_steps input[type=number]', '12');
  const pct = await until('progress shown in the panel', async () => {
    const v = await panel.getAttribute(`.running[data-task-id="${id}"] .meta`, 'data-progress', { timeout: 500 }).catch(() => null);
    return v && Number(v) > 0 ? Number(v) : null;
  }, 20000);
  results.figures.live_progress_seen_pct = pct;
  results.figures.live_preview_seen = !!(await panel.$(`.running[data-task-id="${id}"] img.preview`));
  await panel.screenshot({ path: path.join(SHOT_DIR, 'panel-running.png') });
  await panel.click(`.running[data-task-id="${id}"] .interrupt`);
  await until('interrupted', async () => (await host.task(id)).status === 'interrupted', 20000);
  await fetch(`${FAKE_URL}/fake/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ step_ms: 20 }) });
});

await check('panel: pause, delete, run now (paused), export, import, clear', async () => {
  await panel.click('#sdq-pause');
  await until('paused', async () => (await host.queue()).paused);
  await panel.waitForSelector('.panel[data-paused="true"]');
  await mini.fill('#txt2img_prompt textarea', 'to delete');
  const [del] = await clickEnqueue(mini, 'txt2img');
  await mini.fill('#txt2img_prompt textarea', 'to run now');
  const [run] = await clickEnqueue(mini, 'txt2img');
  await panel.click(`.prow[data-task-id="${del}"] .delete`);
  await until('deleted', async () => !(await pendingIds()).includes(del));
  await panel.click(`.prow[data-task-id="${run}"] .run`);
  await until('ran while paused', async () => (await host.task(run)).status === 'done', 30000);
  assert((await host.queue()).paused, 'still paused after run-now');
  // export → import → clear
  await mini.fill('#txt2img_prompt textarea', 'exported');
  const [exp] = await clickEnqueue(mini, 'txt2img');
  const [download] = await Promise.all([panel.waitForEvent('download'), panel.click('#sdq-export')]);
  const file = path.join(SHOT_DIR, 'export.json');
  await download.saveAs(file);
  const items = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert(Array.isArray(items) && items.some((t) => t.id === exp), `export has the pending task (${items.length})`);
  panel.once('dialog', (d) => d.accept());
  await panel.click('#sdq-queue-clear');
  await until('cleared', async () => (await pendingIds()).length === 0);
  await panel.setInputFiles('#sdq-import', file);
  await until('imported again', async () => (await pendingIds()).length >= 1);
  await panel.waitForSelector('.prow[data-task-id]');
  panel.once('dialog', (d) => d.accept());
  await panel.click('#sdq-queue-clear');
  await until('cleared again', async () => (await pendingIds()).length === 0);
  await panel.click('#sdq-pause');
  await until('resumed', async () => !(await host.queue()).paused);
});

await check('panel: history filter Failed, and requeue failed', async () => {
  await panel.click('#sdq-tab-history');
  await panel.fill('#sdq-search', '');
  await panel.selectOption('#sdq-filter', 'failed');
  await until('only failed rows', async () => {
    const st = await panel.$$eval('.hrow[data-task-id] .chip', (c) => c.map((x) => x.textContent));
    return st.length > 0 && st.every((x) => x === 'failed');
  });
  await host.post(`${Q}/queue/pause`);
  await panel.click('#sdq-requeue-failed');
  await until('no failed left', async () => (await host.history('&status=failed')).total === 0);
  await until('failed rows gone from the panel', async () => (await panel.$$('.hrow[data-task-id]')).length === 0);
  const q = await host.queue();
  await Promise.all(q.pending_tasks.map((t) => host.call('DELETE', `${Q}/task/${encodeURIComponent(t.id)}`)));
  await host.post(`${Q}/queue/resume`);
  await panel.selectOption('#sdq-filter', 'all');
});

await check('context menu "Queue with checkpoints in folder…" expands the folder', async () => {
  if (!FAKE_URL) throw new Error('FAKE_URL not given');
  const cks = [...CHECKPOINTS, 'anime/x', 'anime/y'];
  await fetch(`${FAKE_URL}/fake/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ checkpoints: cks }) });
  await until('host lists the new checkpoints', async () => (await host.get(`${Q}/sd-models`)).includes('anime/y'), 20000);
  await mini.bringToFront();
  const r = await b.worker((g) => g.sdq.queueAll('anime'));
  assert(r && r.ok, `queueAll(anime): ${JSON.stringify(r)}`);
  const got = [];
  for (const id of r.data.task_ids) got.push((await host.task(id)).params.checkpoint);
  assertEq(got.sort(), ['anime/x', 'anime/y'], 'folder expansion');
  // The page's dropdown lists the folder with its count after a refresh.
  await mini.click('[data-sdq-wrap="txt2img"] button[title="Refresh checkpoints"]');
  await mini.waitForSelector('#sdq-txt2img-ckpt option:text("anime (2)")', { state: 'attached' });
});

await check('token: the options token is sent as Authorization: Bearer', async () => {
  const url = env('TOKEN_HOST_URL');
  if (!url) throw new Error('TOKEN_HOST_URL not given');
  const setOpts = (o) => b.worker((g, o) => g.chrome.storage.local.get('options').then((x) => g.chrome.storage.local.set({ options: { ...x.options, ...o } })), o);
  const r = await fetch(`${url}/agent-scheduler/v1/queue`);
  assertEq(r.status, 401, 'the token host refuses requests without the token');
  const p = await b.newPage();
  await setOpts({ host_url: url, token: 'wrong' });
  await p.goto(ext('popup.html'));
  await p.waitForSelector('.popup[data-conn="offline"]', { timeout: 30000 });
  await setOpts({ host_url: url, token: env('TOKEN') });
  await p.reload();
  await p.waitForSelector('.popup[data-conn="online"]', { timeout: 30000 });
  await p.click('#sdq-popup-pause');
  await until('paused with the token', async () => {
    const q2 = await (await fetch(`${url}/agent-scheduler/v1/queue`, { headers: { authorization: `Bearer ${env('TOKEN')}` } })).json();
    return q2.paused === true;
  });
  // The open panel follows the option change to the other host (its queue is paused).
  await panel.waitForSelector('.panel[data-conn="online"][data-paused="true"]', { timeout: 30000 });
  await p.close();
  await setOpts({ host_url: host.base, token: '' });
  await panel.waitForSelector('.panel[data-conn="online"][data-paused="false"]', { timeout: 30000 });
});

await check('options: hide the checkpoint dropdown and place the button between the prompt and Generate', async () => {
  await mini.bringToFront();
  const setOpts = (o) => b.worker((g, o) => g.chrome.storage.local.get('options').then((x) => g.chrome.storage.local.set({ options: { ...x.options, ...o } })), o);
  await setOpts({ hide_checkpoint: true, placement: 'above_generate' });
  // "Between prompt and Generate": the prompt is on the left of the Standard Generate row.
  await until('re-placed before Generate without a dropdown', () => mini.evaluate(() => {
    const b = document.querySelector('button[data-sdq-tab="txt2img"]');
    const box = document.getElementById('txt2img_generate_box');
    return !document.querySelector('#sdq-txt2img-ckpt') && box.firstElementChild === b;
  }));
  await setOpts({ hide_checkpoint: false, placement: 'beside_generate' });
  await until('back beside Generate, the dropdown in the quicksettings row', () => mini.evaluate(() => {
    const b = document.querySelector('button[data-sdq-tab="txt2img"]');
    const w = document.querySelector('[data-sdq-wrap="txt2img"]');
    return !!w && !!w.querySelector('select') && !!w.closest('#quicksettings')
      && document.getElementById('txt2img_generate_box').lastElementChild === b;
  }));
});

await check('panel: live updates are correct after the host is killed and restarted', async () => {
  const pages = env('PAGES_URL');
  if (!pages) throw new Error('PAGES_URL not given');
  await panel.bringToFront();
  await panel.click('#sdq-tab-queue');
  await host.post(`${Q}/queue/pause`);
  await panel.waitForSelector('.panel[data-paused="true"]');
  const r0 = await fetch(`${pages}/control/restart-host`, { method: 'POST' });
  assertEq(r0.status, 204, 'host restarted');
  // Enqueued after the restart: only a reconnected stream (or its reload) shows it.
  const r = await host.post(`${Q}/queue/txt2img`, { prompt: 'after the restart', steps: 2 });
  await panel.waitForSelector(`.prow[data-task-id="${r.task_id}"]`, { timeout: 30000 });
  await panel.waitForSelector('.panel[data-conn="online"][data-paused="true"]');
  await host.post(`${Q}/queue/resume`);
  await panel.waitForSelector('.panel[data-paused="false"]');
  await until('ran after the restart', async () => (await host.task(r.task_id)).status === 'done');
  await panel.waitForSelector(`.prow[data-task-id="${r.task_id}"]`, { state: 'detached' });
});

// The history list is virtualised: 2,000 rows with thumbnails put under 100 rows in the DOM
// and ask only the first screen's thumbnails (Chromium; the Firefox run stays short). The
// 10,000-row figure (first render and scroll time) is a benchmark, not part of the test run:
// `E2E_BENCH=1` measures it instead (see tests/README or the README's benchmarks).
if (BROWSER === 'chromium') {
  const n = process.env.E2E_BENCH === '1' ? 10000 : 2000;
  await check(`history of ${n} rows with thumbnails: virtualised, first screen's thumbnails only`, async () => {
    const bp = await b.newPage();
    await bp.setViewportSize({ width: 1600, height: 900 });
    await bp.goto(ext(`panel.html?bench=${n}`));
    // The page scrolls the whole list a screen at a time, then writes its figures.
    await bp.waitForSelector('body[data-scroll-steps]', { timeout: 180000 });
    const f = await bp.evaluate(() => Object.fromEntries(Object.entries(document.body.dataset)));
    results.figures[`history_${n}`] = f;
    const rows = Number(f.renderedRows);
    assert(rows > 0 && rows < 100, `virtualised: ${rows} rows in the DOM`);
    assert(Number(f.thumbsFirstScreen) < 100, `only the first screen asks for thumbnails: ${f.thumbsFirstScreen}`);
    await bp.close();
  });
}

await check(BROWSER === 'firefox'
  ? 'page CSP blocking wasm: Firefox exempts the content script from it, Enqueue still works'
  : 'page CSP blocking wasm: the panel is still offered as an extension iframe', async () => {
  const url = env('CSP_URL');
  if (!url) throw new Error('CSP_URL not given');
  const p = await b.newPage();
  await p.goto(url);
  if (BROWSER === 'firefox') {
    // The page's CSP applies to the page's own scripts, not to an extension's content script.
    await p.waitForFunction(() => document.documentElement.dataset.sdqState === 'ready', null, { timeout: 20000 });
    const [id] = await clickEnqueue(p, 'txt2img');
    assertEq((await host.task(id)).type, 'txt2img', 'queued from the CSP page');
    await host.call('DELETE', `/agent-scheduler/v1/task/${encodeURIComponent(id)}`);
  } else {
    await p.waitForFunction(() => document.documentElement.dataset.sdqState === 'load-error', null, { timeout: 20000 });
    await p.locator('#sdq-toggle').click();
    await p.frameLocator('#sdq-panel-frame').locator('.panel[data-conn="online"]').waitFor({ timeout: 30000 });
  }
  await p.close();
});

await check('no uncaught errors in the pages and extension pages', async () => {
  assert(pageErrors.length === 0, pageErrors.join('\n'));
});

fs.writeFileSync(env('RESULTS', path.join(SHOT_DIR, 'e2e-results.json')), JSON.stringify(results, null, 2));
console.log('figures', JSON.stringify(results.figures));
await b.close();
process.exit(Math.min(failed(), 100));
