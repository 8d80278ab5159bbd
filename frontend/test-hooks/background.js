
// ---- Test build only (frontend/build.sh appends this to background.js of
// target/extension-test; the shipped extension has none of it) ----
// The context-menu handler without a native menu, and the worker's message handler, for the
// browser tests (they call these through the worker).
self.sdq = {
  ensure,
  queueAll: (folder) => ensure().then((w) => w.sw_queue_all(folder ?? undefined)),
  message: (msg) => ensure().then((w) => w.sw_on_message(msg, {})),
};
