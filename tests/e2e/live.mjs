// The live tier's browser part: the BUILT extension in headless Chromium or Firefox ESR
// (`BROWSER`, see lib.mjs) on a REAL SD.Next page (the kit of ../shared/tools/sdnext), with
// the REAL host driving that SD.Next. Started by tests/tests/integration/live_capture.rs
// (opt-in: SDNEXT_URL), which passes:
//   EXT_DIR   target/extension     SDNEXT_URL  the SD.Next page     HOST_URL  the host
//   SHOT_DIR  screenshots          RESULTS     JSON written at the end
//   PARTS     comma list of: look, button, menu, fidelity, sendto (default: all)
//   SITE_NAME a made-up name for the machine (mapped to 127.0.0.1 by the browser): SD.Next
//             is then opened at that non-loopback address and enabled first from the
//             extension's popup (the test build: see frontend/build.sh)
// Like a person: values are set through the page's own widgets (typing, clicking options,
// uploading files, drawing on the canvas), never by writing the DOM. Every wait is a
// condition with a deadline. Exit status = number of failed checks (max 100).
import fs from 'node:fs';
import path from 'node:path';
import { launch, BROWSER, until, Host, check, failed, results, assert, assertEq } from './lib.mjs';

const env = (k, d) => process.env[k] ?? d;
const EXT_DIR = path.resolve(env('EXT_DIR', '../../target/extension'));
const SDNEXT = env('SDNEXT_URL', 'http://127.0.0.1:17860').replace(/\/$/, '');
const host = new Host(env('HOST_URL', 'http://127.0.0.1:7861'));
const SHOT_DIR = path.resolve(env('SHOT_DIR', '../../target/screenshots'));
const PARTS = new Set(env('PARTS', 'look,button,menu,fidelity,sendto').split(',').filter(Boolean));
const HERE = path.dirname(new URL(import.meta.url).pathname);
fs.mkdirSync(SHOT_DIR, { recursive: true });

// A 64×64 test image (a checkerboard of gradients) for the image inputs.
const INPUT_PNG = path.join(SHOT_DIR, 'live-input-64.png');
fs.writeFileSync(INPUT_PNG, Buffer.from(fs.readFileSync(path.join(HERE, 'pages', 'input-64.png.b64'), 'utf8'), 'base64'));

const SITE_NAME = env('SITE_NAME', '');
const b = await launch(EXT_DIR, { names: SITE_NAME ? [SITE_NAME] : [] });
results.figures.browser = BROWSER;
await b.worker(async (g, url) => { await g.chrome.storage.local.set({ options: { host_url: url } }); }, host.base);
const page = await b.newPage();
page.setDefaultTimeout(30000);
// The extension's errors (content script, panel) show in the output.
page.on('console', (m) => { if (m.type() === 'error' && /sdq|wasm|panicked|extension/i.test(m.text())) console.log(`page console: ${m.text().slice(0, 400)}`); });
page.on('pageerror', (e) => { if (/sdq|wasm|panicked/i.test(String(e))) console.log(`page error: ${String(e).slice(0, 400)}`); });
const t0 = Date.now();
const pageUrl = SITE_NAME ? SDNEXT.replace(/\/\/[^/:]+/, `//${SITE_NAME}`) : SDNEXT;
await page.goto(pageUrl + '/', { waitUntil: 'domcontentloaded', timeout: 120000 });
if (SITE_NAME) {
  // A non-loopback address: nothing runs there until the site is enabled from the popup.
  const tabId = await until('the page\'s tab', () => b.worker(async (g, u) => (await g.chrome.tabs.query({})).find((t) => t.url?.startsWith(u))?.id ?? null, pageUrl), 60000);
  const pop = await b.newPage();
  await pop.setViewportSize({ width: 360, height: 320 });
  await pop.goto(b.ext(`popup.html?tab=${tabId}`));
  await pop.waitForSelector('#sdq-enable-site', { timeout: 120000 });
  await pop.screenshot({ path: path.join(SHOT_DIR, `live-${BROWSER}-${SITE_NAME}-popup-enable-site.png`) });
  await pop.click('#sdq-enable-site');
  await pop.waitForSelector('#sdq-popup-site[data-site="enabled"]', { timeout: 30000 });
  await pop.close();
  await page.bringToFront();
  results.figures.site = SITE_NAME;
}
await page.waitForFunction(() => document.documentElement.dataset.sdqState === 'ready' && window.opts?.theme_type, null, { timeout: 240000, polling: 500 });
const theme = await page.evaluate(() => window.opts.theme_type);
results.figures.theme = theme;
results.figures.page_ready_ms = Date.now() - t0;
console.log(`SD.Next page ready in ${Date.now() - t0} ms, theme ${theme}`);
const modern = theme === 'Modern';
const pre = theme.toLowerCase();

// ---- acting on the page like a user ----

async function visible(sel) {
  return page.evaluate((sel) => {
    let e = document.querySelector(sel);
    if (!e) return false;
    const sized = (x) => { const q = x.getBoundingClientRect(); return q.width > 0 && q.height > 0; };
    // A Gradio block can be a 0×0 box around its field (Standard theme): judge the field.
    if (!sized(e)) e = [...e.querySelectorAll('textarea, input, select, canvas, img, button')].find(sized) || e;
    const r = e.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    for (let a = e; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.display === 'none' || cs.visibility === 'hidden') return false;
    }
    return true;
  }, sel);
}

async function openTab(p) {
  if (modern) {
    // The Modern UI builds its nav after the page reports ready (seconds later on a busy
    // machine): wait for the tab's nav button to exist.
    await until(`${p} nav built`, () => page.evaluate((p) => !!document.getElementById(`${p}_nav`), p), 30000);
    // The Modern UI hides its legacy T2I/I2I nav buttons unless `uiux_hide_legacy` is off:
    // press them the way the page's own code does.
    if (await visible(`#${p}_nav`)) await page.click(`#${p}_nav`);
    else await page.evaluate((p) => document.getElementById(`${p}_nav`).click(), p);
  } else {
    const label = { txt2img: 'Text', img2img: 'Image', control: 'Control' }[p];
    await page.locator('#tabs > .tab-nav > button', { hasText: new RegExp(`^\\s*${label}\\s*$`) }).first().click();
  }
  await until(`${p} tab shown`, () => visible(`#${p}_generate`), 15000);
}

/// Makes an element visible as a user would: the Modern UI's section tabs of the current
/// tab, then the closed accordions around it.
async function reveal(sel, p) {
  if (await visible(sel)) return;
  if (modern) {
    // The section (an `.xtabs-item`) that holds the element: press section buttons until
    // that section shows; the accordions inside it are opened below.
    const sectionShown = () => page.evaluate((sel) => {
      const e = document.querySelector(sel);
      const item = e && e.closest('.xtabs-item');
      return !item || item.getBoundingClientRect().width > 0;
    }, sel);
    const sections = await page.evaluate((p) => [...document.querySelectorAll('button.xtabs-tab')]
      .filter((b) => b.id.startsWith(p + '_') && !b.id.includes('mobile') && b.getBoundingClientRect().width > 0)
      .map((b) => b.id), p);
    for (const id of sections) {
      if (await sectionShown()) break;
      await page.click('#' + id);
    }
    if (await visible(sel)) return;
  }
  for (let i = 0; i < 5 && !(await visible(sel)); i++) {
    const lw = await page.evaluateHandle((sel) => {
      const e = document.querySelector(sel);
      for (let a = e && e.parentElement; a; a = a.parentElement) {
        if (a.classList.contains('gradio-accordion')) {
          const w = a.querySelector(':scope > .label-wrap');
          if (w && !w.classList.contains('open')) return w;
        }
      }
      return null;
    }, sel);
    const el = lw.asElement();
    if (!el) break;
    await el.click();
  }
  await until(`${sel} visible`, () => visible(sel), 5000);
}

async function setText(sel, value, p) {
  await reveal(sel, p);
  const t = page.locator(`${sel} textarea, ${sel} input[type=text]`).first();
  await t.fill(value);
  await t.blur();
}

async function setNumber(sel, value, p) {
  await reveal(sel, p);
  const input = page.locator(`${sel} input[type=number]`).first();
  await input.fill(String(value));
  await input.press('Enter');
  await input.blur();
}

async function setCheck(sel, on, p) {
  await reveal(sel, p);
  const c = page.locator(`${sel} input[type=checkbox]`).first();
  if ((await c.isChecked()) !== on) await c.click();
}

async function setRadio(sel, label, p) {
  await reveal(sel, p);
  await page.locator(`${sel} label`, { hasText: new RegExp(`^\\s*${label}\\s*$`) }).first().click();
}

async function setDropdown(sel, value, p) {
  await reveal(sel, p);
  const input = page.locator(`${sel} input`).first();
  await input.click();
  await input.fill(value);
  const idx = await until(`option ${value} in ${sel}`, () => page.evaluate(([sel, value]) => {
    const i = [...document.querySelectorAll(`${sel} ul.options li`)].findIndex((l) => l.innerText.replace('✓', '').trim() === value);
    return i >= 0 ? i + 1 : null;
  }, [sel, value]), 10000);
  await page.locator(`${sel} ul.options li`).nth(idx - 1).click();
  await until(`${sel} shows ${value}`, async () => (await page.locator(`${sel} input`).first().inputValue()) === value, 5000);
}

/// Picks a multiselect choice (styles) by typing and clicking it.
async function addToken(sel, value, p) {
  await reveal(sel, p);
  const input = page.locator(`${sel} input`).first();
  await input.click();
  await input.fill(value);
  const idx = await until(`option ${value}`, () => page.evaluate(([sel, value]) => {
    const i = [...document.querySelectorAll(`${sel} ul.options li`)].findIndex((l) => l.innerText.replace('✓', '').trim() === value);
    return i >= 0 ? i + 1 : null;
  }, [sel, value]), 10000);
  await page.locator(`${sel} ul.options li`).nth(idx - 1).click();
  await page.keyboard.press('Escape');
}

async function clearTokens(sel, p) {
  await reveal(sel, p);
  for (let i = 0; i < 10; i++) {
    const rm = page.locator(`${sel} .token-remove:not(.remove-all)`).first();
    if (!(await rm.count())) break;
    await rm.click();
  }
}

/// Uploads the test image into a Gradio image component (its file input).
async function uploadImage(sel, p) {
  await reveal(sel, p);
  await page.setInputFiles(`${sel} input[type=file]`, INPUT_PNG);
  await until(`${sel} holds the image`, () => page.evaluate((sel) => !!document.querySelector(`${sel} img[src], ${sel} canvas`), sel), 15000);
}

/// Draws a stroke across the middle of a sketch canvas (inpaint mask).
async function drawStroke(sel) {
  const box = await page.locator(`${sel} canvas`).last().boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx - box.width / 4, cy);
  await page.mouse.down();
  await page.mouse.move(cx, cy + box.height / 8, { steps: 6 });
  await page.mouse.move(cx + box.width / 4, cy, { steps: 6 });
  await page.mouse.up();
}

async function controlUpload() {
  await reveal('#kanvas-container-button-upload', 'control');
  const [fc] = await Promise.all([page.waitForEvent('filechooser'), page.click('#kanvas-container-button-upload')]);
  await fc.setFiles(INPUT_PNG);
  await until('Kanvas holds the input', () => page.evaluate(() => !!(window.getKanvasData && window.getKanvasData() && window.getKanvasData().image)), 15000);
}

// ---- Enqueue, Generate, infotexts ----

async function enqueue(p) {
  const sel = `button[data-sdq-tab="${p}"]`;
  const before = await page.getAttribute(sel, 'data-sdq-task-ids');
  await page.click(sel);
  const ids = await until(`Enqueue on ${p} answered`, async () => {
    const st = await page.getAttribute(sel, 'data-sdq-state');
    if (st === 'error') throw new Error(await page.getAttribute(sel, 'data-sdq-error'));
    const now = await page.getAttribute(sel, 'data-sdq-task-ids');
    return st === 'queued' && now && now !== before ? now : null;
  }, 60000);
  return ids.split(',');
}

async function runTask(id) {
  const t = await until(`task ${id} ends`, async () => {
    const t = await host.task(id);
    return ['done', 'failed', 'interrupted'].includes(t.status) ? t : null;
  }, 300000);
  if (t.status !== 'done') throw new Error(`task ${id} ${t.status}: ${t.error}`);
  const r = await host.get(`/agent-scheduler/v1/task/${encodeURIComponent(id)}/results`);
  return r.data;
}

async function pngInfo(bytesB64) {
  const r = await fetch(SDNEXT + '/sdapi/v1/png-info', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: bytesB64 }) });
  return (await r.json()).info;
}

function galleryImages(p) {
  return page.evaluate((p) => [...document.querySelectorAll(`#${p}_gallery img, #${p}-gallery img, #control_gallery img`)]
    .map((i) => i.src).filter((s) => s.includes('file=') && !/grid/i.test(decodeURIComponent(s.split('/').pop()))), p);
}

/// Presses Generate and returns the infotexts of the images it made (read from the files,
/// the same way the host's come from SD.Next's answer).
async function generate(p) {
  const before = new Set(await galleryImages(p));
  await reveal(`#${p}_generate`, p);
  await page.click(`#${p}_generate`);
  await until('Generate made images', async () => (await galleryImages(p)).some((s) => !before.has(s)), 300000);
  await until('Generate finished', () => page.evaluate((p) => !document.title.match(/SD\.Next \d+%/)
    && /Generate/.test(document.getElementById(`${p}_generate`).innerText), p), 120000);
  const srcs = [...new Set((await galleryImages(p)).filter((s) => !before.has(s)))];
  const out = [];
  for (const src of srcs) {
    const b64 = await page.evaluate(async (src) => {
      const u = new Uint8Array(await (await fetch(src)).arrayBuffer());
      let s = '';
      for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
      return btoa(s);
    }, src);
    const info = await pngInfo(b64);
    // The page's grid of a batch (its infotext has `Grid: CxR`) is a composite the API
    // does not return: not one of the generated images.
    if (parseInfotext(info).params.Grid === undefined) out.push(info);
  }
  return out;
}

// Infotext comparison: volatile keys dropped; numbers as numbers; Operations as a set.
const VOLATILE = new Set(['Time taken', 'Version', 'App', 'Index', 'Job', 'Batch', 'Seed resize from']);
function parseInfotext(t) {
  const lines = String(t || '').split('\n');
  const last = lines.pop() || '';
  const neg = lines.findIndex((l) => l.startsWith('Negative prompt:'));
  const prompt = (neg >= 0 ? lines.slice(0, neg) : lines).join('\n').trim();
  const params = {};
  const re = /\s*([\w ./()\-\[\]+]+?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;
  let m;
  while ((m = re.exec(last)) !== null) {
    if (!m[1]) break;
    params[m[1].trim()] = m[2].trim();
    if (re.lastIndex >= last.length) break;
  }
  const rest = neg >= 0 ? lines.slice(neg).join('\n') : '';
  const negative = rest.replace(/^Negative prompt:\s*/, '').split('\nTemplate:')[0].trim();
  return { prompt, negative, params };
}
function sameValue(a, b) {
  const na = Number(a);
  const nb = Number(b);
  if (a !== '' && b !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na === nb;
  return a === b;
}
/// The differences between two infotexts, ignoring what must be ignored; `opsAllowance` is
/// a set of Operations the page may add (the Control tab's `img2img`, see the kit README).
function diffInfotexts(ours, page, opsAllowance = new Set()) {
  const a = parseInfotext(ours);
  const b = parseInfotext(page);
  const diffs = [];
  if (a.prompt !== b.prompt) diffs.push(`prompt ${JSON.stringify(a.prompt)} != ${JSON.stringify(b.prompt)}`);
  if (a.negative !== b.negative) diffs.push(`negative ${JSON.stringify(a.negative)} != ${JSON.stringify(b.negative)}`);
  const keys = new Set([...Object.keys(a.params), ...Object.keys(b.params)]);
  for (const k of keys) {
    if (VOLATILE.has(k)) continue;
    const x = a.params[k];
    const y = b.params[k];
    if (k === 'Operations') {
      const sx = new Set((x || '').split(';').map((s) => s.trim()).filter(Boolean));
      const sy = new Set((y || '').split(';').map((s) => s.trim()).filter(Boolean));
      for (const o of opsAllowance) if (!sx.has(o)) sy.delete(o);
      const eq = sx.size === sy.size && [...sx].every((o) => sy.has(o));
      if (!eq) diffs.push(`Operations {${[...sx]}} != {${[...sy]}}`);
      continue;
    }
    if (x === undefined || y === undefined || !sameValue(x, y)) diffs.push(`${k}: ${x} != ${y}`);
  }
  return diffs;
}

// ---- 1. the button: geometry at every window size, each tab, each placement ----

const SIZES = [[1280, 800], [1600, 1000], [1920, 1080], [2560, 1440]];
async function geometry(p) {
  return page.evaluate((p) => {
    const b = document.querySelector(`button[data-sdq-tab="${p}"]`);
    const g = document.getElementById(`${p}_generate`);
    if (!b || !g) return { present: false };
    const sd = g.closest('.sd-button.generate') || g;
    const r = b.getBoundingClientRect();
    const gr = sd.getBoundingClientRect();
    const c = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    let clippedBy = null;
    for (let a = b.parentElement; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
        const ar = a.getBoundingClientRect();
        if (r.left < ar.left - 0.5 || r.right > ar.right + 0.5 || r.top < ar.top - 0.5 || r.bottom > ar.bottom + 0.5) { clippedBy = a.id || a.className; break; }
      }
    }
    const style = getComputedStyle(b);
    const label = b.innerText.trim();
    // The open tab's checkpoint dropdown: usable where it is.
    const k = document.getElementById(`sdq-${p}-ckpt`);
    const kr = k && k.getBoundingClientRect();
    const kc = kr && kr.width > 0 && document.elementFromPoint(kr.x + kr.width / 2, kr.y + kr.height / 2);
    const ckpt = !k ? null : kc === k ? 'usable' : `hidden or covered (${kc ? (kc.id || kc.className) : 'nothing'})`;
    // The other tabs' dropdowns do not show.
    const others = ['txt2img', 'img2img', 'control'].filter((o) => o !== p)
      .filter((o) => { const x = document.getElementById(`sdq-${o}-ckpt`); return x && x.getBoundingClientRect().width > 0; });
    // SD.Next's Styles row (when its section shows) is not pushed under anything.
    const st = document.querySelector(`#${p}_styles input`);
    const sr = st && st.getBoundingClientRect();
    const sc = sr && sr.width > 0 && document.elementFromPoint(sr.x + sr.width / 2, sr.y + sr.height / 2);
    const styles = !sr || sr.width === 0 ? 'not shown' : sc && sc.closest(`#${p}_styles`) ? 'free' : `covered by ${sc ? (sc.id || sc.className) : 'nothing'}`;
    const icon = b.querySelector('.mask-icon');
    return {
      present: true,
      rect: [r.x, r.y, r.width, r.height].map(Math.round),
      generate: [gr.x, gr.y, gr.width, gr.height].map(Math.round),
      // Distance from Generate's box to the button's (0 = touching; along the row or below).
      dx: Math.round(r.left - gr.right),
      dy: Math.round(r.top - gr.top),
      centre: c === b ? 'the button' : (c ? (c.id || c.className || c.tagName) : null),
      inViewport: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
      clippedBy,
      label,
      icon: !!icon && getComputedStyle(icon).display !== 'none',
      visible: style.visibility === 'visible' && Number(style.opacity) > 0.9 && r.width >= 24 && r.height >= 24,
      fit: b.dataset.sdqFit || null,
      inGroup: !!b.closest(`#${p}_generate_group`),
      inBox: !!b.closest(`#${p}_generate_box`),
      beforeGenerate: r.right <= gr.left + 0.5,
      ckpt,
      otherCkpts: others,
      styles,
    };
  }, p);
}

async function setOptions(o) {
  await b.worker((g, o) => g.chrome.storage.local.get('options').then((x) => g.chrome.storage.local.set({ options: { ...x.options, ...o } })), o);
}

// ---- 0. what a person sees: the Control tab with Enqueue, the panel, the popup ----

if (PARTS.has('look')) {
  await check(`${pre}: the Control tab with Enqueue beside Generate, the panel drawer and the popup (${BROWSER})`, async () => {
    await openTab('control');
    await until('Enqueue shown on Control', () => visible('button[data-sdq-tab="control"]'), 15000);
    await page.screenshot({ path: path.join(SHOT_DIR, `live-${pre}-control.png`) });
    await page.locator('#sdq-toggle').click();
    await page.frameLocator('#sdq-panel-frame').locator('.panel[data-conn="online"]').waitFor({ timeout: 30000 });
    await page.screenshot({ path: path.join(SHOT_DIR, `live-${pre}-panel.png`) });
    await page.locator('#sdq-close').click();
    const pop = await b.newPage();
    await pop.setViewportSize({ width: 360, height: 320 });
    await pop.goto(b.ext('popup.html'));
    await pop.waitForSelector('.popup[data-conn="online"]', { timeout: 30000 });
    await pop.screenshot({ path: path.join(SHOT_DIR, `live-${pre}-popup.png`) });
    await pop.close();
    await page.bringToFront();
  });
}

if (PARTS.has('button')) {
  results.figures.geometry = [];
  for (const placement of ['beside_generate', 'above_generate']) {
    await setOptions({ placement });
    for (const [w, h] of SIZES) {
      await page.setViewportSize({ width: w, height: h });
      for (const p of ['txt2img', 'img2img', 'control']) {
        await check(`${pre}: button usable at ${w}x${h} on ${p} (${placement})`, async () => {
          await openTab(p);
          // The page settles (the Modern UI fades tabs; the fit follows the toolbar's room)
          // before the button is judged: no animation or transition running, and the same
          // geometry on two animation frames in a row with the button at its centre (polled
          // until that holds, 10 s at most; then the last state is what is judged).
          let g = await geometry(p);
          try {
            g = await until(`${p}: the page settles`, async () => {
              const quiet = await page.evaluate(() => new Promise((res) =>
                requestAnimationFrame(() => requestAnimationFrame(() =>
                  res(document.getAnimations().filter((a) => a.playState === 'running').length === 0)))));
              const a = await geometry(p);
              const b = await geometry(p);
              return quiet && JSON.stringify(a) === JSON.stringify(b) && b.present && b.centre === 'the button' ? b : null;
            }, 10000);
          } catch {
            g = await geometry(p);
          }
          results.figures.geometry.push({ theme, placement, size: `${w}x${h}`, tab: p, ...g });
          await page.screenshot({ path: path.join(SHOT_DIR, `live-${pre}-${placement}-${w}x${h}-${p}.png`) });
          assert(g.present, 'no button');
          assert(g.centre === 'the button', `the element at its centre is ${g.centre}`);
          assert(g.inViewport && !g.clippedBy, `not inside the viewport/its column: ${JSON.stringify(g)}`);
          assert(g.visible && (g.label === 'Enqueue' || g.icon), `not visible or unlabelled: ${JSON.stringify(g)}`);
          assertEq(g.ckpt, 'usable', `the checkpoint dropdown: ${JSON.stringify(g)}`);
          assertEq(g.otherCkpts, [], 'other tabs\' dropdowns showing');
          assert(!g.styles.startsWith('covered'), `SD.Next's Styles row: ${g.styles}`);
          if (placement === 'beside_generate') {
            if (modern && g.fit !== 'below') assert(g.inGroup && Math.abs(g.dy) <= 2 && g.dx >= 0 && g.dx <= 8, `not beside Generate: ${JSON.stringify(g)}`);
            if (modern && g.fit === 'below') assert(g.dy > 0 && g.dy <= 60, `not right under the toolbar: ${JSON.stringify(g)}`);
            // Standard: in the Generate row, after Generate and Reprocess.
            if (!modern) assert(g.inBox && Math.abs(g.dy) <= 2 && g.dx >= 0, `not in the Generate row after Generate: ${JSON.stringify(g)}`);
          } else if (modern) {
            assert(g.dy < 0, `not above Generate: ${JSON.stringify(g)}`);
          } else {
            // "Between prompt and Generate": the prompt is on the row's left in Standard.
            assert(g.inBox && Math.abs(g.dy) <= 2 && g.beforeGenerate, `not between the prompt and Generate: ${JSON.stringify(g)}`);
          }
        });
      }
    }
  }
  await setOptions({ placement: 'beside_generate' });
  await page.setViewportSize({ width: 1600, height: 1000 });
}

// ---- 2. the menu closes only on trusted events; Ctrl+E enqueues ----

if (PARTS.has('menu')) {
  await check(`${pre}: the right-click menu outlives SD.Next's token-counter click; Escape and a click close it; Ctrl+E enqueues`, async () => {
    await host.post('/agent-scheduler/v1/queue/pause');
    await openTab('txt2img');
    await setText('#txt2img_prompt', 'menu check', 'txt2img');
    const menuOpen = () => page.evaluate(() => !!document.getElementById('sdq-host').shadowRoot.getElementById('sdq-menu'));
    await page.click('button[data-sdq-tab="txt2img"]', { button: 'right' });
    await until('menu open', menuOpen, 5000);
    // Typing triggers SD.Next's synthetic click on the token counter 800 ms later.
    await page.locator('#txt2img_prompt textarea').first().pressSequentially(' more', { delay: 20 });
    await page.click('button[data-sdq-tab="txt2img"]', { button: 'right' });
    await until('menu open again', menuOpen, 5000);
    // A scripted (untrusted) click on the token counter, as SD.Next's own: resolved once the
    // click has been dispatched and a frame has passed, so the menu had its chance to close.
    const clicks = await page.evaluate(() => new Promise((res) => {
      let n = 0;
      const b = document.getElementById('txt2img_token_button');
      b.addEventListener('click', (e) => {
        if (!e.isTrusted) n++;
        requestAnimationFrame(() => requestAnimationFrame(() => res(n)));
      }, { once: true });
      b.click();
    }));
    assertEq(clicks, 1, 'the token button was clicked by script once');
    assert(await menuOpen(), 'the menu closed on an untrusted click');
    await page.keyboard.press('Escape');
    await until('Escape closes the menu', async () => !(await menuOpen()), 5000);
    await page.click('button[data-sdq-tab="txt2img"]', { button: 'right' });
    await until('menu open', menuOpen, 5000);
    await page.mouse.click(5, 400);
    await until('a click closes the menu', async () => !(await menuOpen()), 5000);
    const before = (await host.queue()).total_pending_tasks;
    await page.locator('#txt2img_prompt textarea').focus();
    await page.keyboard.press('Control+KeyE');
    await until('Ctrl+E queued a task', async () => (await host.queue()).total_pending_tasks === before + 1, 20000);
    const q = await host.queue();
    await Promise.all(q.pending_tasks.map((t) => host.call('DELETE', `/agent-scheduler/v1/task/${encodeURIComponent(t.id)}`)));
    await host.post('/agent-scheduler/v1/queue/resume');
  });
}

// ---- 3. the fidelity table: Enqueue vs Generate, setting by setting ----

async function base(p) {
  await openTab(p);
  const prompt = `live ${p} fidelity`;
  await setText(`#${p}_prompt`, prompt, p);
  await setText(`#${p}_neg_prompt`, '', p);
  await setNumber(`#${p}_steps`, 2, p);
  await setNumber(`#${p}_seed`, 1234, p);
  if (p === 'control') {
    await setNumber('#control_before_resize_width', 64, p);
    await setNumber('#control_before_resize_height', 64, p);
  } else if (p === 'txt2img') {
    await setNumber('#txt2img_width', 64, p);
    await setNumber('#txt2img_height', 64, p);
  }
}

/// One row: a setting of the page, how to set it, how to put it back.
const ROWS = [
  // txt2img
  ['txt2img', 'prompt and negative prompt', async () => { await setText('#txt2img_prompt', 'a lighthouse at dusk, oil', 'txt2img'); await setText('#txt2img_neg_prompt', 'blurry, text', 'txt2img'); }, async () => base('txt2img')],
  ['txt2img', 'steps 3', () => setNumber('#txt2img_steps', 3, 'txt2img'), () => setNumber('#txt2img_steps', 2, 'txt2img')],
  ['txt2img', 'sampler Euler a', () => setDropdown('#txt2img_sampling', 'Euler a', 'txt2img'), () => setDropdown('#txt2img_sampling', 'Default', 'txt2img')],
  ['txt2img', 'sampler DDIM', () => setDropdown('#txt2img_sampling', 'DDIM', 'txt2img'), () => setDropdown('#txt2img_sampling', 'Default', 'txt2img')],
  ['txt2img', 'guidance scale 7', () => setNumber('#txt2img_cfg_scale', 7, 'txt2img'), () => setNumber('#txt2img_cfg_scale', -1, 'txt2img')],
  ['txt2img', 'guidance end 0.8', () => setNumber('#txt2img_cfg_end', 0.8, 'txt2img'), () => setNumber('#txt2img_cfg_end', 1, 'txt2img')],
  ['txt2img', 'guidance rescale 0.5', () => setNumber('#txt2img_image_cfg_rescale', 0.5, 'txt2img'), () => setNumber('#txt2img_image_cfg_rescale', -1, 'txt2img')],
  ['txt2img', 'size 96x64', () => setNumber('#txt2img_width', 96, 'txt2img'), () => setNumber('#txt2img_width', 64, 'txt2img')],
  ['txt2img', 'seed 98765', () => setNumber('#txt2img_seed', 98765, 'txt2img'), () => setNumber('#txt2img_seed', 1234, 'txt2img')],
  ['txt2img', 'variation seed 5 at 0.3', async () => { await setNumber('#txt2img_subseed', 5, 'txt2img'); await setNumber('#txt2img_subseed_strength', 0.3, 'txt2img'); }, async () => { await setNumber('#txt2img_subseed', -1, 'txt2img'); await setNumber('#txt2img_subseed_strength', 0, 'txt2img'); }],
  ['txt2img', 'batch count 2', () => setNumber('#txt2img_batch_count', 2, 'txt2img'), () => setNumber('#txt2img_batch_count', 1, 'txt2img')],
  ['txt2img', 'batch size 2', () => setNumber('#txt2img_batch_size', 2, 'txt2img'), () => setNumber('#txt2img_batch_size', 1, 'txt2img')],
  ['txt2img', 'a style', async () => addToken('#txt2img_styles', await firstStyle(), 'txt2img'), () => clearTokens('#txt2img_styles', 'txt2img')],
  ['txt2img', 'texture tiling', () => setCheck('#txt2img_tiling', true, 'txt2img'), () => setCheck('#txt2img_tiling', false, 'txt2img')],
  ['txt2img', 'refine (hires) pass 1.5x, 2 steps, strength 0.4', async () => { await setCheck('#txt2img_enable_hr', true, 'txt2img'); await setNumber('#txt2img_scale', 1.5, 'txt2img'); await setNumber('#txt2img_steps_alt', 2, 'txt2img'); await setNumber('#txt2img_denoising_strength', 0.4, 'txt2img'); }, async () => { await setCheck('#txt2img_enable_hr', false, 'txt2img'); await setNumber('#txt2img_scale', 1, 'txt2img'); await setNumber('#txt2img_steps_alt', 20, 'txt2img'); await setNumber('#txt2img_denoising_strength', 0.3, 'txt2img'); }],
  ['txt2img', 'latent brightness 1 (HDR)', () => setNumber('#txt2img_hdr_brightness', 1, 'txt2img'), () => setNumber('#txt2img_hdr_brightness', 0, 'txt2img')],
  ['txt2img', 'colour grading contrast 0.3', () => setNumber('#txt2img_grading_contrast', 0.3, 'txt2img'), () => setNumber('#txt2img_grading_contrast', 0, 'txt2img')],
  // (Prompt matrix cannot be the script row: on this snapshot SD.Next's API answers 500
  // "list index out of range" to it whatever the request; see the kit notes in the report.)
  ['txt2img', 'script Prompts from file (two lines)', async () => { await setDropdown('#txt2img_script_list', 'Prompts from file', 'txt2img'); await setText('#script_txt2img_prompts_from_file_prompt_txt', 'a red house\na blue boat', 'txt2img'); }, async () => { await setText('#script_txt2img_prompts_from_file_prompt_txt', '', 'txt2img'); await setDropdown('#txt2img_script_list', 'None', 'txt2img'); }],
  // img2img (the input image uploaded in the base)
  ['img2img', 'the input image (denoising 0.3)', async () => {}, async () => {}],
  ['img2img', 'denoising strength 0.6', () => setNumber('#img2img_denoising_strength', 0.6, 'img2img'), () => setNumber('#img2img_denoising_strength', 0.3, 'img2img')],
  ['img2img', 'steps 3', () => setNumber('#img2img_steps', 3, 'img2img'), () => setNumber('#img2img_steps', 2, 'img2img')],
  ['img2img', 'sampler Euler a', () => setDropdown('#img2img_sampling', 'Euler a', 'img2img'), () => setDropdown('#img2img_sampling', 'Default', 'img2img')],
  ['img2img', 'guidance scale 5.5', () => setNumber('#img2img_cfg_scale', 5.5, 'img2img'), () => setNumber('#img2img_cfg_scale', -1, 'img2img')],
  ['img2img', 'seed 4242', () => setNumber('#img2img_seed', 4242, 'img2img'), () => setNumber('#img2img_seed', 1234, 'img2img')],
  ['img2img', 'variation seed 9 at 0.5', async () => { await setNumber('#img2img_subseed', 9, 'img2img'); await setNumber('#img2img_subseed_strength', 0.5, 'img2img'); }, async () => { await setNumber('#img2img_subseed', -1, 'img2img'); await setNumber('#img2img_subseed_strength', 0, 'img2img'); }],
  ['img2img', 'batch count 2', () => setNumber('#img2img_batch_count', 2, 'img2img'), () => setNumber('#img2img_batch_count', 1, 'img2img')],
  ['img2img', 'negative prompt', () => setText('#img2img_neg_prompt', 'grainy', 'img2img'), () => setText('#img2img_neg_prompt', '', 'img2img')],
  ['img2img', 'guidance end 0.7', () => setNumber('#img2img_cfg_end', 0.7, 'img2img'), () => setNumber('#img2img_cfg_end', 1, 'img2img')],
  ['img2img', 'inpaint: a mask drawn on the image, blur 8, padding 16', async () => {
    await reveal('#mode_img2img', 'img2img');
    await page.locator('#mode_img2img .tab-nav button', { hasText: /^\s*Inpaint\s*$/ }).first().click();
    await uploadImage('#img2img_inpaint', 'img2img');
    await drawStroke('#img2img_inpaint');
    await setNumber('#img2img_mask_blur', 8, 'img2img');
    await setNumber('#img2img_inpaint_full_res_padding', 16, 'img2img');
  }, async () => {
    await setNumber('#img2img_mask_blur', 4, 'img2img');
    await setNumber('#img2img_inpaint_full_res_padding', 32, 'img2img');
    await page.locator('#mode_img2img .tab-nav button', { hasText: /^\s*Image\s*$/ }).first().click();
  }],
  ['img2img', 'inpaint area "masked", mode "invert"', async () => {
    await page.locator('#mode_img2img .tab-nav button', { hasText: /^\s*Inpaint\s*$/ }).first().click();
    await setRadio('#img2img_inpaint_full_res', 'masked', 'img2img');
    await setRadio('#img2img_mask_mode', 'invert', 'img2img');
  }, async () => {
    await setRadio('#img2img_inpaint_full_res', 'full', 'img2img');
    await setRadio('#img2img_mask_mode', 'masked', 'img2img');
    await page.locator('#mode_img2img .tab-nav button', { hasText: /^\s*Image\s*$/ }).first().click();
  }],
  // Control (a tiny-controlnet unit with the Canny processor on the uploaded input)
  ['control', 'a ControlNet unit (Canny + tiny-controlnet) on the input', async () => {}, async () => {}],
  ['control', 'unit strength 0.5', () => setNumber('#control-tabs [id="control_unit-0-strength"]', 0.5, 'control'), () => setNumber('#control-tabs [id="control_unit-0-strength"]', 1, 'control')],
  ['control', 'unit start 0.2', () => setNumber('#control-tabs [id="control_unit-0-start"]', 0.2, 'control'), () => setNumber('#control-tabs [id="control_unit-0-start"]', 0, 'control')],
  ['control', 'unit end 0.8', () => setNumber('#control-tabs [id="control_unit-0-end"]', 0.8, 'control'), () => setNumber('#control-tabs [id="control_unit-0-end"]', 1, 'control')],
  ['control', 'steps 3', () => setNumber('#control_steps', 3, 'control'), () => setNumber('#control_steps', 2, 'control')],
  ['control', 'sampler Euler a', () => setDropdown('#control_sampling', 'Euler a', 'control'), () => setDropdown('#control_sampling', 'Default', 'control')],
  ['control', 'seed 777', () => setNumber('#control_seed', 777, 'control'), () => setNumber('#control_seed', 1234, 'control')],
  ['control', 'guidance scale 7', () => setNumber('#control_cfg_scale', 7, 'control'), () => setNumber('#control_cfg_scale', -1, 'control')],
  ['control', 'size 96x96', async () => { await setNumber('#control_before_resize_width', 96, 'control'); await setNumber('#control_before_resize_height', 96, 'control'); }, async () => { await setNumber('#control_before_resize_width', 64, 'control'); await setNumber('#control_before_resize_height', 64, 'control'); }],
  ['control', 'batch count 2', () => setNumber('#control_batch_count', 2, 'control'), () => setNumber('#control_batch_count', 1, 'control')],
  ['control', 'negative prompt', () => setText('#control_neg_prompt', 'noise', 'control'), () => setText('#control_neg_prompt', '', 'control')],
  ['control', 'variation seed 3 at 0.4', async () => { await setNumber('#control_subseed', 3, 'control'); await setNumber('#control_subseed_strength', 0.4, 'control'); }, async () => { await setNumber('#control_subseed', -1, 'control'); await setNumber('#control_subseed_strength', 0, 'control'); }],
  ['control', 'Canny thresholds 50/150', async () => { await setNumber(await procSetting('Canny', 'Low threshold'), 50, 'control'); await setNumber(await procSetting('Canny', 'High threshold'), 150, 'control'); }, async () => { await setNumber(await procSetting('Canny', 'Low threshold'), 100, 'control'); await setNumber(await procSetting('Canny', 'High threshold'), 200, 'control'); }],
];

async function firstStyle() {
  return page.evaluate(() => {
    const c = window.gradio_config.components.find((x) => x.props.elem_id === 'txt2img_styles');
    return c.props.choices.map((x) => (Array.isArray(x) ? x[0] : x)).find((x) => x && !x.startsWith('Reference/')) || c.props.choices[0];
  });
}

/// A processor setting's block (no id: by its accordion title and label).
async function procSetting(acc, label) {
  const id = await page.evaluate(([acc, label]) => {
    for (const a of document.querySelectorAll('.processor-settings')) {
      if (a.querySelector('.label-wrap > span')?.textContent.trim() !== acc) continue;
      for (const b of a.querySelectorAll('.block')) {
        if (b.querySelector('[data-testid="block-info"]')?.textContent.trim() === label) return b.id;
      }
    }
    return null;
  }, [acc, label]);
  if (!id) throw new Error(`no processor setting ${acc}/${label}`);
  return '#' + id;
}

async function controlBase() {
  await base('control');
  await setDropdown('#control-tabs [id="control_unit-0-process_name"]', 'Canny', 'control');
  await page.click('#controlnet_models_0_refresh');
  await until('tiny-controlnet listed', () => page.evaluate(() => {
    const c = window.gradio_config.components.find((x) => x.props.elem_id === 'control_unit-0-model_name');
    return (c.instance.$$.ctx[c.instance.$$.props.choices] || []).some((x) => (Array.isArray(x) ? x[0] : x) === 'tiny-controlnet');
  }), 30000).catch(() => {});
  await setDropdown('#control-tabs [id="control_unit-0-model_name"]', 'tiny-controlnet', 'control');
  await controlUpload();
}

if (PARTS.has('fidelity')) {
  await host.post('/agent-scheduler/v1/queue/resume');
  results.figures.fidelity = [];
  const counts = { txt2img: 0, img2img: 0, control: 0 };
  let current = null;
  for (const [p, name, set, unset] of ROWS) {
    await check(`${pre}: fidelity ${p}: ${name}`, async () => {
      if (current !== p) {
        if (p === 'control') await controlBase();
        else {
          await base(p);
          if (p === 'img2img') await uploadImage('#img2img_image', 'img2img');
        }
        current = p;
      }
      await set();
      let row;
      try {
        const ids = await enqueue(p);
        const ours = (await runTask(ids[0])).map((x) => x.infotext).filter((t) => !t.startsWith('Control preprocessor map'));
        const theirs = await generate(p);
        const allowance = p === 'control' ? new Set(['img2img']) : new Set();
        const diffs = diffInfotexts(ours[0], theirs[0], allowance);
        if (ours.length !== theirs.length) diffs.push(`images: ${ours.length} != ${theirs.length}`);
        row = { theme, tab: p, setting: name, equal: diffs.length === 0, diffs, ours: ours[0], page: theirs[0] };
      } finally {
        await unset();
      }
      results.figures.fidelity.push(row);
      counts[p]++;
      assert(row.equal, `${name}: ${row.diffs.join('; ')}\n  ours: ${row.ours}\n  page: ${row.page}`);
    });
  }
  results.figures.fidelity_counts = counts;
}

// ---- 4. "Send to": images, the checkpoint and the script come back ----

if (PARTS.has('sendto')) {
  await check(`${pre}: "Send to img2img" from the panel fills the prompt, the image, the checkpoint and the script`, async () => {
    await host.post('/agent-scheduler/v1/queue/resume');
    await base('img2img');
    await uploadImage('#img2img_image', 'img2img');
    await setText('#img2img_prompt', 'send me back', 'img2img');
    await setDropdown('#img2img_script_list', 'Prompts from file', 'img2img');
    await setText('#script_img2img_prompts_from_file_prompt_txt', 'back one\nback two', 'img2img');
    const [id] = await enqueue('img2img');
    await runTask(id);
    const stored = (await host.get(`/agent-scheduler/v1/task/${encodeURIComponent(id)}/request`)).data;
    assertEq(stored.request.script_name, 'Prompts from file', 'stored script');
    assert(stored.request.script_arg_labels.includes('Prompts'), `script labels: ${stored.request.script_arg_labels}`);
    // Change the page, as a user would have since (the image is cleared through its component).
    await setText('#script_img2img_prompts_from_file_prompt_txt', 'changed', 'img2img');
    await setDropdown('#img2img_script_list', 'None', 'img2img');
    await setText('#img2img_prompt', 'something else', 'img2img');
    await page.evaluate(() => {
      const c = window.gradio_config.components.find((x) => x.props.elem_id === 'img2img_image');
      c.instance.$set({ value: null });
    });
    await page.locator('#sdq-toggle').click();
    const frame = page.frameLocator('#sdq-panel-frame');
    await frame.locator('.panel[data-conn="online"]').waitFor({ timeout: 30000 });
    await frame.locator('#sdq-tab-history').click();
    await frame.locator(`.hrow[data-task-id="${id}"] .summary`).click();
    await frame.locator('#sdq-send-img2img').click();
    const filled = await until('the page says it was filled', () => page.evaluate(() => document.getElementById('sdq-host').shadowRoot.querySelector('.toasts').innerText.trim()), 30000);
    console.log(`  send to: ${filled}`);
    await until('prompt back', async () => (await page.locator('#img2img_prompt textarea').first().inputValue()) === 'send me back', 15000)
      .catch(async (e) => {
        await page.screenshot({ path: path.join(SHOT_DIR, `live-${pre}-send-to-failed.png`) });
        const toasts = await page.evaluate(() => document.getElementById('sdq-host').shadowRoot.querySelector('.toasts').innerText);
        const panelToasts = await frame.locator('body').innerText().catch(() => '');
        throw new Error(`${e.message}; page toasts: ${JSON.stringify(toasts)}; panel: ${JSON.stringify(panelToasts.slice(-300))}`);
      });
    await until('script back', async () => (await page.locator('#img2img_script_list input').first().inputValue()) === 'Prompts from file', 15000);
    await until('script argument back', async () => (await page.locator('#script_img2img_prompts_from_file_prompt_txt textarea').first().inputValue()) === 'back one\nback two', 15000);
    const image = await page.evaluate(() => {
      const c = window.gradio_config.components.find((x) => x.props.elem_id === 'img2img_image');
      return c.instance.$$.ctx[c.instance.$$.props.value];
    });
    assert(typeof image === 'string' && image === stored.request.init_images[0], 'the input image is back');
    const ck = await page.locator('#sdq-img2img-ckpt').inputValue();
    assert(ck === `t:${stored.checkpoint}`, `checkpoint dropdown: ${ck} (task: ${stored.checkpoint})`);
    await page.screenshot({ path: path.join(SHOT_DIR, `live-${pre}-send-to.png`) });
    await page.locator('#sdq-close').click();
    await setText('#script_img2img_prompts_from_file_prompt_txt', '', 'img2img');
    await setDropdown('#img2img_script_list', 'None', 'img2img');
  });
}

fs.writeFileSync(env('RESULTS', path.join(SHOT_DIR, `live-${pre}-results.json`)), JSON.stringify(results, null, 2));
if (results.figures.fidelity) {
  console.log('\nfidelity table (setting → equal?)');
  for (const r of results.figures.fidelity) console.log(`  ${r.theme} ${r.tab.padEnd(8)} ${r.setting.padEnd(60)} ${r.equal ? 'equal' : 'DIFFERENT: ' + r.diffs.join('; ')}`);
}
if (results.figures.geometry) {
  console.log('\nbutton geometry (theme placement size tab: dx dy centre fit)');
  for (const g of results.figures.geometry) console.log(`  ${g.theme} ${g.placement} ${g.size} ${g.tab}: dx=${g.dx} dy=${g.dy} centre=${g.centre} label=${g.label || '(icon)'} fit=${g.fit}`);
}
await b.close();
process.exit(Math.min(failed(), 100));
