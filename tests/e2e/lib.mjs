// Helpers for the extension e2e runs: launching a browser with the extension, waiting on
// conditions with deadlines, and talking to the host over HTTP (as a program: no Origin).
// `BROWSER` picks the browser: `chromium` (Debian's, driven by playwright-core) or `firefox`
// (Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi: see firefox.mjs).
// Either way `launch` gives one session shape:
//   name, origin (the extension's), ext(path) (its page URL), newPage(), onPage(fn),
//   worker(fn, arg) (runs fn(backgroundGlobal, arg) in the service worker / background page),
//   close(); and `ctx` (Playwright's context) in Chromium.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchFirefox } from './firefox.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const BROWSER = process.env.BROWSER || 'chromium';

/// Launches `BROWSER` with the extension at `extDir`. `names`: made-up host names that
/// resolve to 127.0.0.1 (a non-loopback address for the page, served on this machine).
export async function launch(extDir, { names = [] } = {}) {
  if (BROWSER === 'firefox') return launchFirefox(extDir, { names });
  const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'sdq-e2e-'));
  const rules = names.length ? [`--host-resolver-rules=${names.map((n) => `MAP ${n} 127.0.0.1`).join(',')}`] : [];
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    ignoreDefaultArgs: ['--disable-extensions'],
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`, ...rules,
    ],
  });
  const sw = await serviceWorker(ctx);
  const origin = `chrome-extension://${new URL(sw.url()).host}`;
  return {
    name: 'chromium',
    ctx,
    udd,
    origin,
    ext: (p) => `${origin}/${p}`,
    newPage: () => ctx.newPage(),
    onPage: (fn) => ctx.on('page', fn),
    // The worker may have been stopped while idle: taken anew for each call.
    worker: async (fn, arg) => (await serviceWorker(ctx)).evaluate(`(${fn.toString()})(self, ${JSON.stringify(arg ?? null)})`),
    async close() {
      await ctx.close();
      fs.rmSync(udd, { recursive: true, force: true });
    },
  };
}

export async function serviceWorker(ctx) {
  const sws = ctx.serviceWorkers().filter((w) => w.url().startsWith('chrome-extension://'));
  if (sws.length) return sws[0];
  return ctx.waitForEvent('serviceworker', { timeout: 15000 });
}

/** Polls `fn` until it returns a truthy value or `ms` passes (then throws `what`). */
export async function until(what, fn, ms = 30000) {
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
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 200);
  }
}

export class Host {
  constructor(base) { this.base = base.replace(/\/$/, ''); }
  async call(method, p, body) {
    const r = await fetch(this.base + p, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = text; }
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text.slice(0, 200)}`);
    return json;
  }
  get(p) { return this.call('GET', p); }
  post(p, b) { return this.call('POST', p, b); }
  queue() { return this.get('/agent-scheduler/v1/queue?limit=1000'); }
  history(q = '') { return this.get('/agent-scheduler/v1/history?limit=1000' + q); }
  task(id) { return this.get(`/agent-scheduler/v1/task/${encodeURIComponent(id)}`).then((r) => r.data); }
}

let failures = 0;
export const results = { checks: [], figures: {} };
export async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.checks.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    results.checks.push({ name, ok: false, error: String(e && e.stack || e) });
    console.log(`FAIL ${name}: ${e && e.stack || e}`);
  }
}
export function failed() { return failures; }
export function assert(cond, msg) { if (!cond) throw new Error(msg); }
export function assertEq(a, b, msg) {
  const ja = JSON.stringify(a), jb = JSON.stringify(b);
  if (ja !== jb) throw new Error(`${msg}: ${ja} !== ${jb}`);
}
