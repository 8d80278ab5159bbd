// Classic content script (MV3 content scripts cannot be modules): loads the wasm and starts
// the Rust side, which detects SD.Next by its page markers and does everything else.
(async () => {
  try {
    const mod = await import(chrome.runtime.getURL('pkg/scheduler.js'));
    await mod.default({ module_or_path: chrome.runtime.getURL('pkg/scheduler_bg.wasm') });
    mod.start_content();
  } catch (e) {
    // e.g. a page CSP without 'wasm-unsafe-eval' (SD.Next sends none).
    document.documentElement.setAttribute('data-sdq-state', 'load-error');
    console.error('[agent-scheduler] content script failed to load:', e);
  }
})();
