// Classic content script (MV3 content scripts cannot be modules): loads the wasm and starts
// the Rust side, which detects SD.Next by its page markers before it adds anything, and does
// everything else. Declared for loopback by the manifest, registered for the sites the user
// enabled, and injected once into the tab a site is enabled from: it runs once per page.
(async () => {
  if (globalThis.__sdqContent) return;
  globalThis.__sdqContent = true;
  const api = globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome;
  try {
    const mod = await import(api.runtime.getURL('pkg/content.js'));
    await mod.default({ module_or_path: api.runtime.getURL('pkg/content_bg.wasm') });
    mod.start_content(api);
  } catch (e) {
    // A page CSP without 'wasm-unsafe-eval' blocks wasm here (SD.Next sends none). The task
    // panel still works as an extension-page iframe, where the extension's CSP applies.
    if (!document.title.startsWith('SD.Next')) return;
    document.documentElement.setAttribute('data-sdq-state', 'load-error');
    console.error('[agent-scheduler] content script could not start wasm:', e);
    panelOnly(api);
  }
})();

function panelOnly(api) {
  const host = document.createElement('div');
  host.id = 'sdq-host';
  const root = host.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>
    .toggle { position: fixed; right: 0; top: 40%; z-index: 2147483646; writing-mode: vertical-rl; background: #334;
      color: #fff; border: 0; border-radius: 6px 0 0 6px; padding: 10px 5px; cursor: pointer; font: 12px system-ui, sans-serif; }
    .drawer { position: fixed; top: 0; right: 0; height: 100vh; width: min(560px, 96vw); z-index: 2147483646; display: none; }
    .drawer.open { display: block; } iframe { border: 0; width: 100%; height: 100%; background: #15161a; }
  </style>
  <button class="toggle" id="sdq-toggle" title="Agent Scheduler task panel (Enqueue is unavailable: this page's CSP blocks WebAssembly)">☰ Queue</button>
  <div class="drawer" id="sdq-drawer"><iframe id="sdq-panel-frame"></iframe></div>`;
  root.getElementById('sdq-toggle').addEventListener('click', () => {
    const frame = root.getElementById('sdq-panel-frame');
    if (!frame.src) frame.src = api.runtime.getURL('panel.html?embedded=1');
    root.getElementById('sdq-drawer').classList.toggle('open');
  });
  document.documentElement.appendChild(host);
}
