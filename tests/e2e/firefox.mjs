// Firefox ESR (Debian's /usr/bin/firefox-esr) driven by puppeteer-core over WebDriver BiDi,
// with the extension installed as a temporary add-on, behind the small part of Playwright's
// Page API the e2e scripts use (Chromium runs them on Playwright itself: see lib.mjs). Why a
// second driver: Playwright drives only its own patched Firefox build, which cannot be
// downloaded here; puppeteer-core drives the stock one.
//
// What differs from Playwright, and how it is covered here:
// - selectors: CSS that pierces open shadow roots (as Playwright's does), plus the
//   `:text("…")` (contains, case-insensitive) and `:text-is("…")` (equals) suffixes;
// - actions wait for the element (attached; for clicks visible and the element a click at its
//   centre hits, as Playwright's actionability checks do) with a deadline, then act
//   with real input (puppeteer's pointer and keyboard: trusted events) or, for `fill` and
//   `selectOption`, set the value and fire `input`/`change` as Playwright's fill does;
// - extension pages: WebDriver BiDi refuses `moz-extension://` navigations unless Firefox
//   runs with `--remote-allow-system-access`, and then reports no load event for them, so
//   they are navigated with readiness "complete" directly;
// - drag and drop: DragEvents dispatched in the page (see Locator.dragTo);
// - downloads: the page's `<a download>` click is caught in the page (the blob is read there),
//   as BiDi has no download events in this Firefox;
// - network routes: puppeteer's request interception (`route` with `fetch`, `continue` and
//   `fulfill`), the original request sent again from node for `fetch`.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
/// The extension's internal UUID in the test profile: fixed (pref
/// `extensions.webextensions.uuids`), so the host can be told the origin in advance.
export const FIREFOX_UUID = process.env.FIREFOX_UUID || '5d9c2b7e-0a41-4c63-9f1e-3b8a6d2c4e10';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function poll(what, fn, ms) {
  const end = Date.now() + ms;
  let pause = 20;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(pause);
    pause = Math.min(pause * 2, 200);
  }
}

// ---- in-page helpers (serialised into the page with each call) ----

// Every element matching `sel` in the document and in every open shadow root under it,
// filtered by a `:text(...)` / `:text-is(...)` suffix.
function deepQuery(sel) {
  const m = /^(.*?):(text|text-is)\("((?:[^"\\]|\\.)*)"\)$/.exec(sel);
  const css = m ? (m[1] || '*') : sel;
  const out = [];
  const walk = (root) => {
    out.push(...root.querySelectorAll(css));
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  if (!m) return out;
  const want = m[3].replace(/\\(.)/g, '$1');
  const norm = (s) => s.replace(/\s+/g, ' ').trim();
  return out.filter((e) => (m[2] === 'text-is'
    ? norm(e.textContent) === want
    : norm(e.textContent).toLowerCase().includes(want.toLowerCase())));
}

const IN_PAGE = `const deepQuery = ${deepQuery.toString()};
const isVisible = (e) => { if (!e || !e.isConnected) return false; const r = e.getBoundingClientRect();
  if (r.width <= 0 || r.height <= 0) return false; const cs = getComputedStyle(e);
  return cs.visibility !== 'hidden' && cs.display !== 'none'; };`;

// `fn(arg)` evaluated with deepQuery/isVisible in scope.
function inPage(fnSrc, arg) {
  return `(() => { ${IN_PAGE} return (${fnSrc})(${JSON.stringify(arg)}); })()`;
}

/// A locator: a selector (with `hasText`, `first`) resolved on each use in a frame.
class Locator {
  constructor(frame, page, sel, opts = {}) {
    this.frame = frame; this.page = page; this.sel = sel; this.opts = opts;
  }
  first() { return new Locator(this.frame, this.page, this.sel, { ...this.opts, nth: 0 }); }
  nth(n) { return new Locator(this.frame, this.page, this.sel, { ...this.opts, nth: n }); }
  last() { return new Locator(this.frame, this.page, this.sel, { ...this.opts, nth: -1 }); }
  locator(sel) { return new Locator(this.frame, this.page, `${this.sel} ${sel}`, this.opts); }
  async handle() {
    const h = await this.frame.evaluateHandle(inPage(`({ sel, hasText, nth }) => {
      let els = deepQuery(sel);
      if (hasText) { const re = new RegExp(hasText.source, hasText.flags); els = els.filter((e) => re.test(e.innerText ?? e.textContent)); }
      return els.at(nth ?? 0) || null;
    }`, { sel: this.sel, nth: this.opts.nth, hasText: toRe(this.opts.hasText) }));
    const el = h.asElement();
    if (!el) { await h.dispose(); return null; }
    return el;
  }
  async waitFor({ state = 'visible', timeout = this.page.timeout } = {}) {
    return poll(`${this.sel} ${state}`, async () => {
      const h = await this.handle();
      if (state === 'detached') return !h;
      if (state === 'hidden') return !h || !(await visibleHandle(h));
      if (!h) return null;
      if (state === 'attached' || await visibleHandle(h)) return h;
      return null;
    }, timeout);
  }
  async click(opts = {}) {
    await this.page.front();
    await this.waitFor({ timeout: opts.timeout });
    // As Playwright does: wait until the element itself is what a click at its centre hits
    // (not a toast or an overlay above it). The element is found again on every try: a
    // re-render may have replaced the one found first (a stale handle never receives it).
    let h = null;
    await poll(`${this.sel} receives the click`, async () => {
      const cur = await this.handle();
      if (!cur) return false;
      const hits = await cur.evaluate((e) => {
        e.scrollIntoView({ block: 'center', inline: 'center' });
        const r = e.getBoundingClientRect();
        const x = r.x + r.width / 2;
        const y = r.y + r.height / 2;
        let hit = document.elementFromPoint(x, y);
        while (hit && hit.shadowRoot) {
          const inner = hit.shadowRoot.elementFromPoint(x, y);
          if (!inner || inner === hit) break;
          hit = inner;
        }
        for (let n = hit; n; n = n.parentNode || n.host) if (n === e) return true;
        const name = (n) => n ? `${n.tagName.toLowerCase()}${n.id ? '#' + n.id : ''}${n.className && typeof n.className === 'string' ? '.' + n.className.trim().split(/\s+/).join('.') : ''}` : 'nothing';
        return `${name(hit)} at (${Math.round(x)}, ${Math.round(y)}), the element at ${JSON.stringify([r.x, r.y, r.width, r.height].map(Math.round))}, connected ${e.isConnected}`;
      });
      if (hits === true) {
        h = cur;
        return true;
      }
      await cur.dispose();
      // Thrown, so a timeout names what was hit instead.
      throw new Error(`a click at its centre hits ${hits}`);
    }, opts.timeout ?? this.page.timeout);
    const kb = this.page.rawPage.keyboard;
    for (const m of opts.modifiers ?? []) await kb.down(m);
    await h.click({ button: opts.button, count: opts.clickCount });
    for (const m of (opts.modifiers ?? []).slice().reverse()) await kb.up(m);
  }
  async inputValue() { const h = await this.waitFor({ state: 'attached' }); return h.evaluate((e) => e.value); }
  async focus() { const h = await this.waitFor({ state: 'attached' }); await h.evaluate((e) => e.focus()); }
  async blur() { const h = await this.waitFor({ state: 'attached' }); await h.evaluate((e) => e.blur()); }
  async press(key) { await this.focus(); await this.page.keyboard.press(key); }
  /// Types like a person, key by key (trusted key events).
  async pressSequentially(text, { delay } = {}) { await this.focus(); await this.page.front(); await this.page.rawPage.keyboard.type(text, { delay }); }
  async isChecked() { const h = await this.waitFor({ state: 'attached' }); return h.evaluate((e) => e.checked); }
  async evaluate(fn, arg) { const h = await this.waitFor({ state: 'attached' }); return h.evaluate(fn, arg); }
  async dblclick() { await this.page.front(); const h = await this.waitFor(); await h.click({ count: 2 }); }
  async fill(v) { const h = await this.waitFor(); await fillHandle(h, v); }
  async isVisible() { const h = await this.handle(); return !!h && visibleHandle(h); }
  async boundingBox() { const h = await this.waitFor({ state: 'attached' }); return h.boundingBox(); }
  async innerText() { const h = await this.waitFor({ state: 'attached' }); return h.evaluate((e) => e.innerText); }
  async textContent() { const h = await this.waitFor({ state: 'attached' }); return h.evaluate((e) => e.textContent); }
  async getAttribute(name) { const h = await this.waitFor({ state: 'attached' }); return h.evaluate((e, n) => e.getAttribute(n), name); }
  async count() {
    return this.frame.evaluate(inPage('(s) => deepQuery(s).length', this.sel));
  }
  // HTML5 drag and drop as DragEvents dispatched in the page (one DataTransfer through the
  // whole gesture, at the target point): WebDriver's pointer actions start no native drag
  // session in this Firefox.
  async dragTo(target, { targetPosition } = {}) {
    const src = await this.waitFor();
    const dst = await target.waitFor();
    const tb = await dst.boundingBox();
    const to = targetPosition
      ? { x: tb.x + targetPosition.x, y: tb.y + targetPosition.y }
      : { x: tb.x + tb.width / 2, y: tb.y + tb.height / 2 };
    await src.evaluate((s, d, to) => {
      const dt = new DataTransfer();
      const fire = (el, type, x, y) => el.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, composed: true, dataTransfer: dt, clientX: x, clientY: y }));
      const r = s.getBoundingClientRect();
      fire(s, 'dragstart', r.x + r.width / 2, r.y + r.height / 2);
      fire(d, 'dragenter', to.x, to.y);
      fire(d, 'dragover', to.x, to.y);
      fire(d, 'drop', to.x, to.y);
      fire(s, 'dragend', to.x, to.y);
    }, dst, to);
  }
}

function toRe(t) {
  if (!t) return null;
  if (t instanceof RegExp) return { source: t.source, flags: t.flags };
  return { source: t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), flags: 'i' };
}

async function visibleHandle(h) {
  return h.evaluate((e) => {
    if (!e.isConnected) return false;
    const r = e.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    const cs = getComputedStyle(e);
    return cs.visibility !== 'hidden' && cs.display !== 'none';
  });
}

async function fillHandle(h, v) {
  await h.evaluate((e, v) => {
    e.focus();
    if (e.isContentEditable) e.textContent = v;
    else {
      const proto = e instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
      Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, v);
    }
    e.dispatchEvent(new Event('input', { bubbles: true }));
    e.dispatchEvent(new Event('change', { bubbles: true }));
  }, String(v));
}

/// A frame (the page's main frame or an iframe) with the selector-based methods.
class FrameApi {
  constructor(frame, page) { this.raw = frame; this.page = page; }
  locator(sel, opts) { return new Locator(this.raw, this.page, sel, opts); }
  frameLocator(sel) { return new FrameLocator(this, sel); }
  async evaluate(fn, arg) { return this.raw.evaluate(fn, arg); }
  async waitForSelector(sel, { state = 'visible', timeout } = {}) {
    return this.locator(sel).waitFor({ state, timeout });
  }
  async $(sel) { return this.locator(sel).handle(); }
  async $$(sel) {
    const arr = await this.raw.evaluateHandle(inPage('(s) => deepQuery(s)', sel));
    const props = await arr.getProperties();
    const out = [];
    for (const p of props.values()) { const e = p.asElement(); if (e) out.push(e); }
    return out;
  }
  async $eval(sel, fn, arg) {
    const h = await this.locator(sel).handle();
    if (!h) throw new Error(`no element for ${sel}`);
    return h.evaluate(fn, arg);
  }
  async $$eval(sel, fn, arg) {
    const arr = await this.raw.evaluateHandle(inPage('(s) => deepQuery(s)', sel));
    return arr.evaluate(fn, arg);
  }
  click(sel, opts) { return this.locator(sel).click(opts); }
  dblclick(sel) { return this.locator(sel).dblclick(); }
  fill(sel, v) { return this.locator(sel).fill(v); }
  async check(sel) { const h = await this.locator(sel).waitFor(); if (!(await h.evaluate((e) => e.checked))) await h.click(); }
  async uncheck(sel) { const h = await this.locator(sel).waitFor(); if (await h.evaluate((e) => e.checked)) await h.click(); }
  async focus(sel) { const h = await this.locator(sel).waitFor({ state: 'attached' }); await h.evaluate((e) => e.focus()); }
  async press(sel, key) { await this.focus(sel); await this.page.keyboard.press(key); }
  getAttribute(sel, name, { timeout } = {}) {
    return this.locator(sel).waitFor({ state: 'attached', timeout }).then((h) => h.evaluate((e, n) => e.getAttribute(n), name));
  }
  async inputValue(sel) { const h = await this.locator(sel).waitFor({ state: 'attached' }); return h.evaluate((e) => e.value); }
  async textContent(sel) { return this.locator(sel).textContent(); }
  async isVisible(sel) { return this.locator(sel).isVisible(); }
  async selectOption(sel, value) {
    const h = await this.locator(sel).waitFor({ state: 'attached' });
    const ok = await h.evaluate((e, v) => {
      const o = [...e.options].find((x) => x.value === v || x.label === v);
      if (!o) return false;
      e.value = o.value;
      e.dispatchEvent(new Event('input', { bubbles: true }));
      e.dispatchEvent(new Event('change', { bubbles: true }));
      return true;
    }, value);
    if (!ok) throw new Error(`${sel}: no option ${value}`);
  }
  async setInputFiles(sel, file) {
    const h = await this.locator(sel).waitFor({ state: 'attached' });
    await h.uploadFile(file);
  }
  async waitForFunction(fn, arg, { timeout = this.page.timeout, polling } = {}) {
    return this.raw.waitForFunction(fn, { timeout, polling: polling ?? 100 }, arg);
  }
}

class FrameLocator {
  constructor(parent, sel) { this.parent = parent; this.sel = sel; }
  async frame() {
    return poll(`frame ${this.sel}`, async () => {
      const h = await this.parent.locator(this.sel).handle();
      const f = h && await h.contentFrame();
      return f ? new FrameApi(f, this.parent.page) : null;
    }, this.parent.page.timeout);
  }
  locator(sel) {
    const fl = this;
    const lazy = (method) => async (...args) => (await fl.frame()).locator(sel)[method](...args);
    return {
      click: lazy('click'), waitFor: lazy('waitFor'), fill: lazy('fill'), innerText: lazy('innerText'),
      first: () => ({ waitFor: async (o) => (await fl.frame()).locator(sel).first().waitFor(o),
        click: async (o) => (await fl.frame()).locator(sel).first().click(o) }),
    };
  }
}

/// A page with Playwright's method names.
export class FirefoxPage extends FrameApi {
  constructor(raw, session) {
    super(raw.mainFrame(), null);
    this.page = this;
    this.rawPage = raw;
    this.session = session;
    this.timeout = 30000;
    this.keyboard = {
      press: async (combo) => {
        await this.front();
        const keys = combo.split('+');
        const key = keys.pop();
        for (const k of keys) await raw.keyboard.down(k);
        await raw.keyboard.press(key);
        for (const k of keys.reverse()) await raw.keyboard.up(k);
      },
      type: (t) => raw.keyboard.type(t),
      down: (k) => raw.keyboard.down(k),
      up: (k) => raw.keyboard.up(k),
    };
    this.mouse = raw.mouse;
  }
  get raw() { return this.rawPage.mainFrame(); }
  set raw(_) {}
  url() { return this.rawPage.url(); }
  setDefaultTimeout(ms) { this.timeout = ms; this.rawPage.setDefaultTimeout(ms); }
  on(ev, fn) {
    // Firefox reports a blocked network load ("Cross-Origin Request Blocked: …", e.g. a
    // recorded page's preload of SD.Next's assets) through the channel of uncaught errors.
    if (ev === 'pageerror') this.rawPage.on(ev, (e) => { if (!String(e?.message ?? e).startsWith('Cross-Origin Request Blocked')) fn(e); });
    else this.rawPage.on(ev, fn);
    return this;
  }
  once(ev, fn) { this.rawPage.once(ev, fn); return this; }
  off(ev, fn) { this.rawPage.off(ev, fn); return this; }
  async goto(url, { timeout = 60000 } = {}) {
    if (url.startsWith('moz-extension://')) {
      await this.rawPage.mainFrame().browsingContext.navigate(url, 'complete');
      return null;
    }
    return this.rawPage.goto(url, { waitUntil: 'load', timeout });
  }
  async reload() {
    const url = await this.rawPage.evaluate(() => location.href);
    if (url.startsWith('moz-extension://')) return this.goto(url);
    return this.rawPage.reload({ waitUntil: 'load' });
  }
  async setViewportSize({ width, height }) { await this.rawPage.setViewport({ width, height }); }
  async screenshot(o) { return this.rawPage.screenshot(o); }
  async bringToFront() { await this.rawPage.bringToFront(); this.session.front = this; }
  /// Real input goes to the selected tab only: select this one first (Playwright's Chromium
  /// delivers input to any page).
  async front() { if (this.session.front !== this) await this.bringToFront(); }
  async close() { await this.rawPage.close(); }
  async title() { return this.rawPage.title(); }
  async evaluateHandle(fn, arg) { return this.rawPage.evaluateHandle(fn, arg); }
  async waitForTimeout(ms) { await sleep(ms); }
  /// The next `<a download>` click in this page (Playwright's `waitForEvent('download')`).
  async waitForEvent(ev, { timeout = this.timeout } = {}) {
    if (ev === 'filechooser') {
      const fc = await this.rawPage.waitForFileChooser({ timeout });
      return { setFiles: (f) => fc.accept([].concat(f)) };
    }
    if (ev !== 'download') throw new Error(`waitForEvent(${ev}) is not offered in Firefox`);
    await this.rawPage.evaluate(() => {
      globalThis.__sdqDownloads = [];
      if (globalThis.__sdqDownloadHook) return;
      globalThis.__sdqDownloadHook = true;
      const click = HTMLAnchorElement.prototype.click;
      HTMLAnchorElement.prototype.click = function () {
        if (this.hasAttribute('download')) {
          const exts = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'application/zip': 'zip', 'application/json': 'json' };
          const blob = globalThis.__sdqBlobs?.get(this.href);
          let name = this.getAttribute('download');
          if (blob && !name.includes('.') && exts[blob.type]) name += `.${exts[blob.type]}`;
          // From the blob when the page made it (no fetch: a page's CSP may forbid it), else
          // fetched (an extension page, which the preload script does not reach).
          (blob ? blob.arrayBuffer() : fetch(this.href).then((r) => r.arrayBuffer())).then((b) => {
            const bytes = new Uint8Array(b);
            let s = '';
            for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
            globalThis.__sdqDownloads.push({ name, data: btoa(s) });
          }, () => globalThis.__sdqDownloads.push({ name, data: null }));
          return undefined;
        }
        return click.call(this);
      };
    });
    const d = await poll('a download', () => this.rawPage.evaluate(() => globalThis.__sdqDownloads.shift() || null), timeout);
    const bytes = d.data === null ? null : Buffer.from(d.data, 'base64');
    return {
      suggestedFilename: () => d.name,
      saveAs: async (file) => {
        if (d.data === null) throw new Error(`the page's CSP kept the bytes of ${d.name} from the test`);
        fs.writeFileSync(file, bytes);
      },
    };
  }
  /// Playwright's `route` for `fetch`/`continue`/`fulfill` (puppeteer's request
  /// interception; the original request is sent again from node for `fetch`).
  async route(glob, handler) {
    const re = new RegExp('^' + glob.split('**').map((part) => part.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*') + '$');
    this.routes ??= [];
    this.routes.push({ glob, re, handler });
    if (!this.intercepting) {
      this.intercepting = true;
      // As Playwright's Chromium does for a routed page: no HTTP cache.
      await this.rawPage.setCacheEnabled(false).catch(() => {});
      await this.rawPage.setRequestInterception(true);
      this.rawPage.on('request', async (req) => {
        const r = (this.routes ?? []).find((x) => x.re.test(req.url()));
        if (!r) return req.continue();
        await r.handler({
          request: () => req,
          continue: () => req.continue(),
          fetch: async () => {
            const sent = req.hasPostData() ? await req.fetchPostData().catch(() => undefined) : undefined;
            const resp = await fetch(req.url(), { method: req.method(), headers: req.headers(), body: sent });
            const body = Buffer.from(await resp.arrayBuffer());
            return { status: () => resp.status, headers: () => Object.fromEntries(resp.headers), json: async () => JSON.parse(body.toString('utf8')), body: async () => body };
          },
          fulfill: async ({ response, json, status, body, contentType }) => {
            const headers = response ? { ...response.headers() } : {};
            delete headers['content-length'];
            delete headers['content-encoding'];
            delete headers['transfer-encoding'];
            if (json !== undefined) headers['content-type'] = 'application/json';
            else if (contentType) headers['content-type'] = contentType;
            await req.respond({ status: status ?? (response ? response.status() : 200), headers, body: json !== undefined ? JSON.stringify(json) : body ?? (response ? await response.body() : '') });
          },
        });
      });
    }
  }
  async unroute(glob) {
    this.routes = (this.routes ?? []).filter((r) => r.glob !== glob);
  }
}

/// Launches Firefox ESR with the extension (`extDir`) installed as a temporary add-on.
/// `names`: made-up host names resolved to 127.0.0.1 (pref `network.dns.localDomains`).
export async function launchFirefox(extDir, { names = [], viewport = { width: 1400, height: 900 } } = {}) {
  const manifest = JSON.parse(fs.readFileSync(path.join(extDir, 'manifest.json'), 'utf8'));
  const geckoId = manifest.browser_specific_settings.gecko.id;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sdq-ff-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    // Allows BiDi to open moz-extension:// pages (the popup, panel and options).
    args: ['--remote-allow-system-access'],
    defaultViewport: viewport,
    extraPrefsFirefox: {
      // Optional host permissions granted without the prompt (tests only).
      'extensions.webextOptionalPermissionPrompts': false,
      // The extension's internal UUID, so its origin is known before it is installed.
      'extensions.webextensions.uuids': JSON.stringify({ [geckoId]: FIREFOX_UUID }),
      'network.dns.localDomains': names.join(','),
      // Keep the background page alive across idle minutes in a test.
      'extensions.background.idle.timeout': 300000,
      'browser.download.dir': profile,
      // Timers of background tabs run as in the front one (the scripts switch between
      // pages; Playwright's Chromium runs with --disable-background-timer-throttling).
      'dom.min_background_timeout_value': 4,
      'dom.min_background_timeout_value_without_budget_throttling': 4,
      'dom.timeout.enable_budget_timer_throttling': false,
      'dom.suspend_inactive.enabled': false,
      'browser.tabs.unloadOnLowMemory': false,
    },
  });
  const id = await browser.installExtension(extDir);
  if (id !== geckoId) throw new Error(`installed ${id}, expected ${geckoId}`);
  const origin = `moz-extension://${FIREFOX_UUID}`;
  const pageListeners = [];
  const session = {
    name: 'firefox',
    browser,
    origin,
    profile,
    ext: (p) => `${origin}/${p}`,
    front: null,
    async newPage() {
      const raw = await browser.newPage();
      // Each blob URL the page makes, with its blob: a download reads its bytes from it (no
      // fetch, which a page's CSP may forbid), and one named without an extension gets one
      // from its type, as the browser's own download does.
      await raw.evaluateOnNewDocument(() => {
        const make = URL.createObjectURL;
        const blobs = new Map();
        globalThis.__sdqBlobs = blobs;
        URL.createObjectURL = function (o) {
          const u = make.call(this, o);
          if (o instanceof Blob) blobs.set(u, o);
          return u;
        };
      }).catch(() => {});
      const p = new FirefoxPage(raw, session);
      session.front = p;
      for (const l of pageListeners) l(p);
      return p;
    },
    onPage(fn) { pageListeners.push(fn); },
    /// Every request of the pages opened from now on (Playwright's `context.on('request')`).
    /// The request as Playwright gives it; its body is read first (BiDi hands it out
    /// asynchronously), so `fn` runs a moment after the request left.
    onRequest(fn) {
      pageListeners.push((p) => p.rawPage.on('request', async (r) => {
        const body = r.hasPostData() ? await r.fetchPostData().catch(() => undefined) : undefined;
        fn({ url: () => r.url(), method: () => r.method(), headers: () => r.headers(), postData: () => body });
      }));
    },
    async cookies(url) {
      const host = new URL(url).hostname;
      return (await browser.cookies()).filter((c) => c.domain.replace(/^\./, '') === host);
    },
    control: null,
    /// Runs `fn(background, arg)` with the extension's background page (`background.js`'s
    /// global), from an extension page kept open for it.
    async worker(fn, arg) {
      if (!session.control) {
        const raw = await browser.newPage();
        session.control = new FirefoxPage(raw, session);
        await session.control.goto(session.ext('options.html'));
        // A new tab is the selected one: the next input selects its page again.
        session.front = null;
      }
      const src = `(async () => { const api = globalThis.browser ?? globalThis.chrome;
        const bg = await api.runtime.getBackgroundPage();
        return await (${fn.toString()})(bg, ${JSON.stringify(arg ?? null)}); })()`;
      return session.control.rawPage.evaluate(src);
    },
    async close() {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
  return session;
}
