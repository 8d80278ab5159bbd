// Page-world bridge (manifest content script with "world": "MAIN"): the content script runs in
// an isolated world and cannot see the page's own globals, so it asks this file, through a
// synchronous `sdq-bridge` CustomEvent on document, for what only the page knows:
//   kanvas            window.getKanvasData(): the Control tab's Kanvas image and mask
//   get {id}          the live value of the Gradio component with elem_id (or component id) `id`
//   set {id, value}   sets it the way the page's own code does (the component's `$set`)
//   script {tab}      the selected script of a tab and its arguments, in the order SD.Next
//                     passes them, each with its label (from the page's Gradio config)
//   group {tab, id}   the same for an always-on script's group (e.g. `<tab>_script_ip_adapters`)
//   choices {id}      a dropdown's or radio's choices
// Answers go back as a JSON string in the `sdq-bridge-answer` event. Everything else (what to
// capture, how to map it) is Rust.
// It adds nothing to a page that is not SD.Next (a site the user enabled may serve other
// pages too): it waits for SD.Next's markers, as the content script does, and gives up after
// 10 s. It runs once per page (it may be both registered and injected into an open tab).
(() => {
  if (document.documentElement.hasAttribute('data-sdq-bridge')) return;
  // content.rs `is_sdnext`: the same markers.
  const isSdnext = () => document.title.startsWith('SD.Next')
    || !!document.getElementById('txt2img_prompt')
    || (!!document.querySelector('gradio-app') && !!document.getElementById('tabs'));
  const t0 = Date.now();
  const wait = () => {
    if (isSdnext()) install();
    else if (Date.now() - t0 < 10000) setTimeout(wait, 250);
  };
  wait();

  function install() {
    if (document.documentElement.hasAttribute('data-sdq-bridge')) return;
    const cfg = () => window.gradio_config;
    const byElemId = (id) => {
      const c = cfg();
      if (!c) return null;
      if (typeof id === 'number') return c.components.find((x) => x.id === id) || null;
      return c.components.find((x) => x.props && x.props.elem_id === id) || null;
    };
    const liveValue = (comp) => {
      const $$ = comp && comp.instance && comp.instance.$$;
      if ($$ && $$.props && 'value' in $$.props) return $$.ctx[$$.props.value];
      return comp ? comp.props.value : null;
    };
    // Sets a component's value as the page's own code does. Gradio's Blocks keeps each
    // component's props in its config and passes them down again whenever it re-renders (the
    // token counter, any event): a value given only to the instance is undone then, back to what
    // the user last typed. So the config's copy changes too.
    const setValue = (comp, value) => {
      if (comp.props) comp.props.value = value;
      comp.instance.$set({ value });
    };
    // JSON-safe copy (drops DOM nodes, functions, blobs; keeps data URLs and plain data).
    const plain = (v, depth = 0) => {
      if (v === null || v === undefined) return null;
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      if (depth > 6) return null;
      if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1));
      if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
        const o = {};
        for (const [k, x] of Object.entries(v)) o[k] = plain(x, depth + 1);
        return o;
      }
      return null;
    };
    const descendants = (node, want, out) => {
      if (!node) return false;
      if (node.id === want) {
        const walk = (n) => { out.push(n.id); (n.children || []).forEach(walk); };
        (node.children || []).forEach(walk);
        return true;
      }
      return (node.children || []).some((ch) => descendants(ch, want, out));
    };
    const submitInputs = (tab) => {
      const dep = cfg().dependencies.find((d) => d.js === `submit_${tab}`);
      return dep ? dep.inputs : [];
    };
    const groupArgs = (tab, groupElemId) => {
      const group = byElemId(groupElemId);
      if (!group) return null;
      const ids = [];
      descendants(cfg().layout, group.id, ids);
      const inputs = submitInputs(tab);
      const inGroup = new Set(ids);
      const args = [];
      inputs.forEach((cid, pos) => {
        if (!inGroup.has(cid)) return;
        const comp = byElemId(cid);
        args.push({ id: cid, pos, label: comp.props.label ?? '', type: comp.type, value: plain(liveValue(comp)) });
      });
      return { group: groupElemId, args };
    };
    const ops = {
      ping: () => ({ config: !!cfg(), kanvas: typeof window.getKanvasData === 'function' }),
      kanvas: () => (typeof window.getKanvasData === 'function' ? plain(window.getKanvasData()) : null),
      kanvas_load: ({ url }) => (typeof window.loadFromURL === 'function' ? (window.loadFromURL(url), true) : null),
      get: ({ id }) => {
        const comp = byElemId(id);
        return comp ? { type: comp.type, label: comp.props.label ?? '', value: plain(liveValue(comp)) } : null;
      },
      set: ({ id, value }) => {
        const comp = byElemId(id);
        if (!comp || !comp.instance || typeof comp.instance.$set !== 'function') return false;
        setValue(comp, value);
        return true;
      },
      choices: ({ id }) => {
        const comp = byElemId(id);
        if (!comp) return null;
        return (comp.props.choices || []).map((c) => (Array.isArray(c) ? c[0] : c));
      },
      script: ({ tab }) => {
        const list = byElemId(`${tab}_script_list`);
        if (!list) return null;
        const title = liveValue(list);
        if (!title || title === 'None') return { title: null, args: [] };
        // SD.Next names each script's group `<tab>_script_<title, lower case, spaces as _>`.
        const slug = String(title).toLowerCase().split(' ').join('_');
        const g = groupArgs(tab, `${tab}_script_${slug}`);
        return { title, args: g ? g.args : [], found: !!g };
      },
      group: ({ tab, id }) => groupArgs(tab, id),
      // Sets a script's arguments: by label (the k-th argument of a label takes the k-th value
      // given with it), by position when a value has no label.
      set_script_args: ({ tab, title, args }) => {
        const slug = String(title).toLowerCase().split(' ').join('_');
        const g = groupArgs(tab, `${tab}_script_${slug}`);
        if (!g) return 0;
        const seen = {};
        let n = 0;
        args.forEach((a, pos) => {
          let target;
          if (a.label != null) {
            const k = seen[a.label] = (seen[a.label] ?? -1) + 1;
            target = g.args.filter((x) => x.label === a.label)[k];
          } else {
            target = g.args[pos];
          }
          const comp = target && byElemId(target.id);
          if (comp && comp.instance && typeof comp.instance.$set === 'function') {
            setValue(comp, a.value);
            n += 1;
          }
        });
        return n;
      },
    };
    document.addEventListener('sdq-bridge', (e) => {
      let answer;
      try {
        const req = JSON.parse(e.detail);
        const op = ops[req.op];
        answer = op ? { ok: true, value: cfg() || req.op.startsWith('kanvas') || req.op === 'ping' ? op(req.args || {}) : null } : { ok: false, error: `unknown op ${req.op}` };
      } catch (err) {
        answer = { ok: false, error: String(err && err.message || err) };
      }
      document.dispatchEvent(new CustomEvent('sdq-bridge-answer', { detail: JSON.stringify(answer) }));
    });
    document.documentElement.setAttribute('data-sdq-bridge', 'ready');
  }
})();
