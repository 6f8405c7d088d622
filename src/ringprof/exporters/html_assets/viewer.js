/* ringprof flame graph viewer: vanilla JS, no dependencies, no network.
 *
 * Safety rule for this file: profile strings (function names, file names,
 * thread names, labels, meta) are only ever shown with textContent, option
 * text, setAttribute("href") of a URL whose scheme was checked, or canvas
 * fillText. Never innerHTML / insertAdjacentHTML / document.write.
 *
 * Data model (see ringprof/exporters/html.py): a trie of frames ("raw" nodes,
 * parent before child) plus time-bucketed sample records. The viewer merges raw
 * nodes into a "display" tree keyed by function (one box per function and
 * call path) once; every filter change then costs one pass over the records
 * and one reverse pass over the nodes. Only boxes at least a fraction of a
 * pixel wide are laid out, so drawing cost follows what is visible, not the
 * profile's size.
 */
(() => {
  "use strict";

  const T0 = performance.now();
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function fail(err) {
    const box = $("error");
    if (box) {
      box.hidden = false;
      box.textContent = "ringprof viewer error: " + (err && err.stack ? err.stack : String(err));
    }
    console.error(err);
  }

  // ------------------------------------------------------------------ formatting
  function fmtNs(ns) {
    if (!isFinite(ns)) return "?";
    if (ns >= 3600e9) return (ns / 3600e9).toFixed(2) + " h";
    if (ns >= 60e9) {
      const m = Math.floor(ns / 60e9);
      return m + " min " + Math.round((ns - m * 60e9) / 1e9) + " s";
    }
    if (ns >= 1e9) return (ns / 1e9).toFixed(ns >= 10e9 ? 1 : 2) + " s";
    if (ns >= 1e6) return (ns / 1e6).toFixed(ns >= 100e6 ? 0 : 1) + " ms";
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + " \u00b5s";
    return Math.round(ns) + " ns";
  }

  function fmtPct(frac) {
    const p = frac * 100;
    if (!isFinite(p) || p <= 0) return "0%";
    if (p >= 99.995) return "100%";
    if (p < 0.1) return p.toFixed(2) + "%";
    return p.toFixed(1) + "%";
  }

  const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  function fnv(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return h >>> 0;
  }

  // Packed integer column: unsigned LEB128 varints, base64 (see html.py).
  function unpack(b64, T) {
    const Ctor = T || Int32Array;
    if (!b64) return new Ctor(0);
    const bin = atob(b64);
    const len = bin.length;
    let n = 0;
    for (let i = 0; i < len; i++) if (bin.charCodeAt(i) < 128) n++;
    const out = new Ctor(n);
    let v = 0;
    let mul = 1;
    for (let i = 0, j = 0; i < len; i++) {
      const c = bin.charCodeAt(i);
      v += (c & 127) * mul;
      if (c < 128) {
        out[j++] = v;
        v = 0;
        mul = 1;
      } else mul *= 128;
    }
    return out;
  }

  function main() {
    // ---------------------------------------------------------------- data
    const D = JSON.parse($("ringprof-data").textContent);
    const tParsed = performance.now();
    if (D.version !== 1) throw new Error("unsupported ringprof HTML data version " + D.version);
    const S = D.strings;
    const IV = D.interval_ns;
    const meta = D.meta || {};

    const strs = (b64) => Array.from(unpack(b64), (i) => S[i]);
    const fileShort = strs(D.files.short);
    const filePath = strs(D.files.path);
    const fileAbs = strs(D.files.abspath);
    const nFiles = fileShort.length;
    const fileLib = new Uint8Array(nFiles); // 1: outside the project (stdlib, site-packages)
    for (let i = 0; i < nFiles; i++) fileLib[i] = fileAbs[i] !== "" && filePath[i] === fileAbs[i] ? 1 : 0;

    const fName = strs(D.funcs.name);
    const nFuncs = fName.length;
    const fFile = unpack(D.funcs.file);
    const fFirst = unpack(D.funcs.first);
    const frFunc = unpack(D.frames.func);
    const frLine = unpack(D.frames.line);

    // Raw trie (frames), node 0 = root, rebuilt from chains.
    const chainAttach = unpack(D.nodes.attach);
    const chainLen = unpack(D.nodes.length);
    const nodeFrames = unpack(D.nodes.frame);
    const nRaw = nodeFrames.length + 1;
    const rFrame = new Int32Array(nRaw);
    const rParent = new Int32Array(nRaw);
    {
      const nf = nodeFrames;
      rParent[0] = -1;
      rFrame[0] = -1;
      let r = 1;
      for (let k = 0; k < chainLen.length; k++) {
        let p = chainAttach[k];
        for (let j = 0; j < chainLen[k]; j++, r++) {
          rParent[r] = p;
          rFrame[r] = nf[r - 1];
          p = r;
        }
      }
    }

    // Display tree (functions): same shape with siblings of one function merged.
    const dispOf = new Int32Array(nRaw);
    const dParentA = new Int32Array(nRaw);
    const dFuncA = new Int32Array(nRaw);
    const dDepthA = new Int32Array(nRaw);
    dParentA[0] = -1;
    dFuncA[0] = -1;
    let nDisp = 1;
    {
      // Open-addressing hash from (display parent, function) to display node.
      // Slots hold the node id only: its parent and function are in
      // dParentA / dFuncA. (A Map with ~2M numeric keys is ~3x slower.)
      let cap = 1024;
      while (cap < nRaw * 1.5) cap *= 2;
      const mask = cap - 1;
      const slots = new Int32Array(cap); // 0: empty (node 0, the root, is never a child)
      for (let r = 1; r < nRaw; r++) {
        const p = dispOf[rParent[r]];
        const f = frFunc[rFrame[r]];
        let h = Math.imul(p, 0x9e3779b1) ^ Math.imul(f + 0x7f4a7c15, 0x85ebca77);
        h ^= h >>> 15;
        h = Math.imul(h, 0x2c1b3c6d);
        h = (h ^ (h >>> 13)) & mask;
        let d = slots[h];
        while (d !== 0 && (dParentA[d] !== p || dFuncA[d] !== f)) {
          h = (h + 1) & mask;
          d = slots[h];
        }
        if (d === 0) {
          d = nDisp++;
          slots[h] = d;
          dParentA[d] = p;
          dFuncA[d] = f;
          dDepthA[d] = dDepthA[p] + 1;
        }
        dispOf[r] = d;
      }
    }
    const dParent = dParentA.subarray(0, nDisp);
    const dFunc = dFuncA.subarray(0, nDisp);
    const dDepth = dDepthA.subarray(0, nDisp);

    // Diff mode (D.diff, see html.py): BASE as a trie over (name, file). Each
    // display node of NEW is paired with BASE's node on the same function path
    // (-1: BASE never sampled that path); boxes are coloured by the change of
    // their total share.
    const DF = D.diff || null;
    let baseOf = null;
    let bSelf = null;
    let bTot = null;
    let baseW = 0;
    if (DF) {
      const fNameId = unpack(D.funcs.name);
      const bParent = unpack(DF.nodes.parent);
      const bName = unpack(DF.nodes.name);
      const bFile = unpack(DF.nodes.file);
      const nB = bParent.length + 1;
      bSelf = new Float64Array(nB);
      bTot = new Float64Array(nB);
      bSelf.set(unpack(DF.nodes.self, Float64Array), 1);
      bTot.set(unpack(DF.nodes.total, Float64Array), 1);
      baseW = Number(DF.base_weight) || 0;
      bTot[0] = baseW;
      const child = new Map();
      for (let i = 0; i < bParent.length; i++) child.set(bParent[i] + "," + bName[i] + "," + bFile[i], i + 1);
      baseOf = new Int32Array(nDisp);
      for (let d = 1; d < nDisp; d++) {
        const p = baseOf[dParent[d]];
        const f = dFunc[d];
        const b = p < 0 ? undefined : child.get(p + "," + fNameId[f] + "," + fFile[f]);
        baseOf[d] = b === undefined ? -1 : b;
      }
    }

    // Children of each display node (CSR), sorted by function name then file:
    // a stable, filter-independent order, like classic flame graphs.
    const fRank = new Int32Array(nFuncs);
    {
      const order = Array.from({ length: nFuncs }, (_, i) => i);
      order.sort((a, b) => cmp(fName[a], fName[b]) || cmp(fileShort[fFile[a]], fileShort[fFile[b]]) || fFirst[a] - fFirst[b]);
      order.forEach((f, r) => { fRank[f] = r; });
    }
    const cStart = new Int32Array(nDisp + 1);
    const cList = new Int32Array(Math.max(nDisp - 1, 0));
    {
      for (let d = 1; d < nDisp; d++) cStart[dParent[d] + 1]++;
      for (let i = 0; i < nDisp; i++) cStart[i + 1] += cStart[i];
      const pos = cStart.slice(0, nDisp);
      for (let d = 1; d < nDisp; d++) cList[pos[dParent[d]]++] = d;
      const byRank = (x, y) => fRank[dFunc[x]] - fRank[dFunc[y]];
      for (let d = 0; d < nDisp; d++) {
        if (cStart[d + 1] - cStart[d] > 1) cList.subarray(cStart[d], cStart[d + 1]).sort(byRank);
      }
    }
    // Raw nodes of each display node (CSR), for the per-line breakdown.
    const rStart = new Int32Array(nDisp + 1);
    const rList = new Int32Array(nRaw);
    {
      for (let r = 0; r < nRaw; r++) rStart[dispOf[r] + 1]++;
      for (let i = 0; i < nDisp; i++) rStart[i + 1] += rStart[i];
      const pos = rStart.slice(0, nDisp);
      for (let r = 0; r < nRaw; r++) rList[pos[dispOf[r]]++] = r;
    }

    // Sample records.
    const sm = D.samples;
    const recNode = unpack(sm.node);
    const nRec = recNode.length;
    const recThr = unpack(sm.thread);
    const recW = unpack(sm.weight, Float64Array);
    const recN = sm.count ? unpack(sm.count, Float64Array) : recW;
    const recLab = sm.labels ? unpack(sm.labels) : null;
    const recBucket = unpack(sm.bucket_delta);
    for (let i = 1; i < nRec; i++) recBucket[i] += recBucket[i - 1];
    const nBuckets = Math.max(1, D.nbuckets | 0);
    const bucketNs = D.bucket_ns;

    const tIds = D.threads.id;
    const tNames = D.threads.name.map((i) => S[i]);
    const tWeight = new Float64Array(tIds.length);
    let grandW = 0;
    let grandN = 0;
    for (let i = 0; i < nRec; i++) {
      tWeight[recThr[i]] += recW[i];
      grandW += recW[i];
      grandN += recN[i];
    }

    // Label key=value pairs present in the samples.  An asyncio task's two
    // labels (task = its name, task_id = its id) make one entry, "task=name #id",
    // listed first: names need not be unique, ids are.
    const labelSets = D.label_sets;
    const pairs = [];
    {
      const seen = new Map();
      const add = (k, v, ls) => {
        const key = k + "\u0000" + v;
        let p = seen.get(key);
        if (!p) {
          p = { k, v, sets: [] };
          seen.set(key, p);
          pairs.push(p);
        }
        p.sets.push(ls);
      };
      labelSets.forEach((flat, ls) => {
        let taskName = null;
        let taskId = null;
        for (let j = 0; j + 1 < flat.length; j += 2) {
          const k = S[flat[j]];
          const v = S[flat[j + 1]];
          if (k === "task") taskName = v;
          else if (k === "task_id") taskId = v;
          else add(k, v, ls);
        }
        if (taskId !== null) add("task", (taskName === null ? "?" : taskName) + " #" + taskId, ls);
        else if (taskName !== null) add("task", taskName, ls);
      });
      const isTask = (p) => (p.k === "task" ? 0 : 1);
      pairs.sort((a, b) => isTask(a) - isTask(b) || cmp(a.k, b.k) || cmp(a.v, b.v));
    }
    const labelOk = new Uint8Array(Math.max(labelSets.length, 1));
    // Async profiles: samples labelled state=waiting are tasks waiting at an
    // await (weighted by wall time); the others were taken on CPU.
    const waitingSet = new Uint8Array(Math.max(labelSets.length, 1));
    let hasWaiting = false;
    let hasOnCpu = !recLab;
    labelSets.forEach((flat, ls) => {
      for (let j = 0; j + 1 < flat.length; j += 2) {
        if (S[flat[j]] === "state" && S[flat[j + 1]] === "waiting") waitingSet[ls] = 1;
      }
    });
    if (recLab) {
      for (let i = 0; i < nRec; i++) {
        if (waitingSet[recLab[i]]) hasWaiting = true;
        else hasOnCpu = true;
        if (hasWaiting && hasOnCpu) break;
      }
    }
    const tBuilt = performance.now();

    // ---------------------------------------------------------------- state
    const st = {
      view: "flame",
      state: "all", // "all", "cpu" (on-CPU samples only) or "waiting"
      thread: -1,
      pair: -1,
      range: null, // [first bucket, last bucket], inclusive
      query: "",
      regex: false,
      zoom: 0,
      hover: -1,
      selected: -1,
    };

    // Per-filter sums. Counts alias weights when every record's count equals
    // its weight (the usual case), halving the work.
    const sameN = recN === recW;
    const rSelfW = new Float64Array(nRaw);
    const rSelfN = sameN ? rSelfW : new Float64Array(nRaw);
    const dSelfW = new Float64Array(nDisp);
    const dTotW = new Float64Array(nDisp);
    const dSelfN = sameN ? dSelfW : new Float64Array(nDisp);
    const dTotN = sameN ? dTotW : new Float64Array(nDisp);
    // Raw nodes are in depth-first order, so a raw subtree is the range
    // [r, rEnd[r]) and its total is a difference of prefix sums of self
    // weights; only the tooltip's per-line breakdown needs raw totals, so the
    // prefix sums are built lazily.
    const rEnd = new Int32Array(nRaw);
    for (let r = 0; r < nRaw; r++) rEnd[r] = r + 1;
    for (let r = nRaw - 1; r > 0; r--) if (rEnd[r] > rEnd[rParent[r]]) rEnd[rParent[r]] = rEnd[r];
    const rPrefix = new Float64Array(nRaw + 1);
    let rPrefixDirty = true;
    function rawTotal(r) {
      if (rPrefixDirty) {
        for (let i = 0; i < nRaw; i++) rPrefix[i + 1] = rPrefix[i] + rSelfW[i];
        rPrefixDirty = false;
      }
      return rPrefix[rEnd[r]] - rPrefix[r];
    }
    const hist = new Float64Array(nBuckets);
    const histMatch = new Float64Array(nBuckets);

    const fMatch = new Uint8Array(nFuncs);
    const dMatch = new Uint8Array(nDisp);
    const dIn = new Uint8Array(nDisp); // this node or an ancestor matches
    let searchOn = false;
    let searchErr = "";
    let nMatchFuncs = 0;
    let searchW = 0;

    function updateSearch() {
      fMatch.fill(0);
      dMatch.fill(0);
      dIn.fill(0);
      searchErr = "";
      nMatchFuncs = 0;
      searchOn = false;
      const q = st.query;
      if (q) {
        let test = null;
        if (st.regex) {
          try {
            const re = new RegExp(q, "i");
            test = (s) => re.test(s);
          } catch (e) {
            searchErr = "invalid regular expression";
          }
        } else {
          const ql = q.toLowerCase();
          test = (s) => s.toLowerCase().includes(ql);
        }
        if (test) {
          searchOn = true;
          const fileHit = new Int8Array(nFiles).fill(-1);
          for (let f = 0; f < nFuncs; f++) {
            const fi = fFile[f];
            if (fileHit[fi] < 0) fileHit[fi] = fileShort[fi] && test(fileShort[fi]) ? 1 : 0;
            if (fileHit[fi] || test(fName[f])) {
              fMatch[f] = 1;
              nMatchFuncs++;
            }
          }
        }
      }
      if (searchOn) {
        for (let d = 1; d < nDisp; d++) {
          dMatch[d] = fMatch[dFunc[d]];
          dIn[d] = dMatch[d] | dIn[dParent[d]];
        }
      }
    }

    // Shares are fractions of all samples (of BASE; of NEW under the current filters).
    let diffScale = 0.005;
    function baseShare(d, self) {
      const b = baseOf[d];
      if (b < 0 || !baseW) return 0;
      return (self ? bSelf[b] : bTot[b]) / baseW;
    }
    function newShare(d, self) {
      return dTotW[0] > 0 ? (self ? dSelfW[d] : dTotW[d]) / dTotW[0] : 0;
    }
    function shareDelta(d) {
      return newShare(d, false) - baseShare(d, false);
    }
    // Binomial standard error of a share difference (see ringprof/diff.py).
    function shareNoise(pb, pn) {
      if (!(baseW > 0) || !(dTotW[0] > 0)) return NaN;
      return Math.sqrt((pb * (1 - pb)) / baseW + (pn * (1 - pn)) / dTotW[0]);
    }
    function fmtPp(frac) {
      const p = frac * 100;
      return (p > 0 ? "+" : p < 0 ? "\u2212" : "\u00b1") + Math.abs(p).toFixed(2) + " pp";
    }
    function diffColor(d) {
      const delta = shareDelta(d);
      const t = Math.min(1, Math.abs(delta) / diffScale);
      if (t < 0.02) return theme.dark ? "hsl(220 6% 62%)" : "hsl(220 8% 87%)";
      const hue = delta > 0 ? 2 : 214;
      return "hsl(" + hue + " " + Math.round(45 + 40 * t) + "% " + Math.round(88 - 36 * t) + "%)";
    }

    function compute() {
      rSelfW.fill(0);
      if (!sameN) rSelfN.fill(0);
      hist.fill(0);
      histMatch.fill(0);
      const th = st.thread;
      const lok = st.pair >= 0 ? labelOk : null;
      const sf = hasWaiting && st.state !== "all" ? (st.state === "waiting" ? 1 : 0) : -1;
      const lo = st.range ? st.range[0] : 0;
      const hi = st.range ? st.range[1] : nBuckets - 1;
      for (let i = 0; i < nRec; i++) {
        if (th >= 0 && recThr[i] !== th) continue;
        if (lok && !lok[recLab ? recLab[i] : 0]) continue;
        if (sf >= 0 && waitingSet[recLab[i]] !== sf) continue;
        const b = recBucket[i];
        const w = recW[i];
        const node = recNode[i];
        hist[b] += w;
        if (searchOn && dIn[dispOf[node]]) histMatch[b] += w;
        if (b < lo || b > hi) continue;
        rSelfW[node] += w;
        if (!sameN) rSelfN[node] += recN[i];
      }
      rPrefixDirty = true;
      dSelfW.fill(0);
      if (!sameN) dSelfN.fill(0);
      for (let r = 0; r < nRaw; r++) {
        const w = rSelfW[r];
        if (w === 0) continue;
        dSelfW[dispOf[r]] += w;
        if (!sameN) dSelfN[dispOf[r]] += rSelfN[r];
      }
      dTotW.set(dSelfW);
      if (!sameN) dTotN.set(dSelfN);
      for (let d = nDisp - 1; d > 0; d--) {
        dTotW[dParent[d]] += dTotW[d];
        if (!sameN) dTotN[dParent[d]] += dTotN[d];
      }
      searchW = 0;
      if (searchOn) {
        for (let d = 1; d < nDisp; d++) if (dMatch[d] && !dIn[dParent[d]]) searchW += dTotW[d];
      }
      if (DF) {
        // Colour scale: the largest change on screen is full colour, but never
        // less than half a point, so noise-sized changes stay pale.
        let m = 0;
        for (let d = 1; d < nDisp; d++) if (dTotW[d] > 0) m = Math.max(m, Math.abs(shareDelta(d)));
        diffScale = Math.max(m, 0.005);
      }
      while (st.zoom > 0 && !(dTotW[st.zoom] > 0)) st.zoom = dParent[st.zoom];
      if (st.selected >= 0 && !(dTotW[st.selected] > 0)) st.selected = -1;
    }

    // ---------------------------------------------------------------- theme + palette
    let theme = {};
    let palette = [];

    function isDark() {
      const t = document.documentElement.dataset.theme;
      if (t) return t === "dark";
      return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
    }

    function refreshTheme() {
      const cs = getComputedStyle(document.documentElement);
      const v = (name) => cs.getPropertyValue(name).trim();
      const dark = isDark();
      theme = {
        dark,
        bg: v("--graph-bg"), fg: v("--fg"), muted: v("--muted"), text: v("--frame-text"),
        root: v("--root"), match: v("--match"), tlBar: v("--tl-bar"), tlShade: v("--tl-shade"),
        accent: v("--accent"), line: v("--line"),
      };
      palette = new Array(nFuncs);
      for (let f = 0; f < nFuncs; f++) {
        const fi = fFile[f];
        const file = fileShort[fi];
        if (!file || file.charAt(0) === "<") {
          palette[f] = dark ? "hsl(225 7% 50%)" : "hsl(35 10% 74%)"; // synthetic / no source
          continue;
        }
        // Hue from the file (one colour family per module), a little lightness
        // jitter from the function so neighbours stay distinguishable. Project
        // code sits in red-orange, libraries and the stdlib in amber-yellow.
        const hf = fnv(file);
        const hn = fnv(fName[f]);
        const lib = fileLib[fi];
        const hue = lib ? 34 + (hf % 20) : 2 + (hf % 30);
        const sat = lib ? 70 + ((hf >>> 9) % 18) : 78 + ((hf >>> 9) % 17);
        const light = (dark ? 52 : 60) + ((hn >>> 5) % 11) - ((hf >>> 17) % 5);
        palette[f] = "hsl(" + hue + " " + sat + "% " + light + "%)";
      }
    }

    // ---------------------------------------------------------------- header
    function chip(k, v) {
      const c = el("span", "chip");
      c.append(el("span", null, k), el("b", null, v));
      return c;
    }

    function buildHeader() {
      $("title").textContent = D.title || "ringprof profile";
      document.title = D.title || "ringprof profile";
      const m = $("meta");
      m.replaceChildren();
      if (DF) {
        m.append(chip("diff", DF.base_name + " \u2192 " + DF.new_name));
        m.append(chip("base samples", fmtInt(baseW)));
      }
      if (meta.mode) m.append(chip("mode", String(meta.mode)));
      m.append(chip("interval", fmtNs(IV)));
      if (typeof meta.duration === "number") m.append(chip("duration", fmtNs(meta.duration * 1e9)));
      m.append(chip("samples", fmtInt(grandN)));
      m.append(chip("sampled time", fmtNs(grandW * IV)));
      m.append(chip("threads", String(tIds.length)));
      const stats = meta.stats && typeof meta.stats === "object" ? meta.stats : null;
      if (stats && stats.dropped) m.append(chip("dropped", fmtInt(stats.dropped)));
      if (meta.python) m.append(chip("python", String(meta.python).split(" ")[0]));
      if (meta.pid !== undefined && meta.pid !== null) m.append(chip("pid", String(meta.pid)));
      if (typeof meta.start_time === "number") {
        m.append(chip("started", new Date(meta.start_time * 1000).toLocaleString()));
      }
    }

    // ---------------------------------------------------------------- selectors
    const threadSel = $("thread");
    const labelSel = $("labels");

    function buildSelectors() {
      threadSel.replaceChildren();
      const all = el("option", null, "All threads (" + tIds.length + ")");
      all.value = "-1";
      threadSel.append(all);
      tIds.forEach((id, i) => {
        const o = el("option", null, tNames[i] + " (tid " + id + ") \u00b7 " + fmtPct(grandW ? tWeight[i] / grandW : 0));
        o.value = String(i);
        threadSel.append(o);
      });
      threadSel.disabled = tIds.length < 2;

      labelSel.replaceChildren();
      const any = el("option", null, pairs.length ? "All samples" : "no labels");
      any.value = "-1";
      labelSel.append(any);
      pairs.forEach((p, i) => {
        const o = el("option", null, p.k + "=" + p.v);
        o.value = String(i);
        labelSel.append(o);
      });
      $("labels-field").hidden = pairs.length === 0;
    }

    // ---------------------------------------------------------------- flame graph
    const canvas = $("flame");
    const ctx = canvas.getContext("2d");
    const ROW = 18;
    const MINW = 0.35; // px: narrower boxes (and their subtrees) are not laid out
    const FONT = '12px ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
    let cssW = 0;
    let cssH = 0;
    let maxDepth = 0;
    const R = { n: 0, x: new Float64Array(4096), w: new Float64Array(4096), node: new Int32Array(4096), depth: new Int32Array(4096), anc: new Uint8Array(4096) };
    let rowStart = new Int32Array(1);
    let rowIdx = new Int32Array(0);

    function pushRect(x, w, d, depth, anc) {
      if (R.n === R.x.length) {
        const grow = (a, T) => { const b = new T(a.length * 2); b.set(a); return b; };
        R.x = grow(R.x, Float64Array);
        R.w = grow(R.w, Float64Array);
        R.node = grow(R.node, Int32Array);
        R.depth = grow(R.depth, Int32Array);
        R.anc = grow(R.anc, Uint8Array);
      }
      const i = R.n++;
      R.x[i] = x;
      R.w[i] = w;
      R.node[i] = d;
      R.depth[i] = depth;
      R.anc[i] = anc;
    }

    function layout() {
      R.n = 0;
      maxDepth = 0;
      const z = st.zoom;
      const total = dTotW[z];
      if (total > 0 && cssW > 0) {
        const scale = cssW / total;
        const anc = [];
        for (let a = dParent[z]; a >= 0; a = dParent[a]) anc.push(a);
        for (let i = anc.length - 1; i >= 0; i--) pushRect(0, cssW, anc[i], dDepth[anc[i]], 1);
        const sN = [z];
        const sX = [0];
        while (sN.length) {
          const d = sN.pop();
          const x = sX.pop();
          pushRect(x, dTotW[d] * scale, d, dDepth[d], 0);
          if (dDepth[d] > maxDepth) maxDepth = dDepth[d];
          // Children pushed right to left so they are popped (laid out) left to
          // right: each row's boxes then come out sorted by x, for hit testing.
          let end = x + (dTotW[d] - dSelfW[d]) * scale;
          for (let i = cStart[d + 1] - 1; i >= cStart[d]; i--) {
            const c = cList[i];
            const cw = dTotW[c] * scale;
            if (cw <= 0) continue;
            end -= cw;
            if (cw >= MINW) {
              sN.push(c);
              sX.push(end);
            }
          }
        }
      }
      rowStart = new Int32Array(maxDepth + 2);
      for (let i = 0; i < R.n; i++) rowStart[R.depth[i] + 1]++;
      for (let i = 0; i <= maxDepth; i++) rowStart[i + 1] += rowStart[i];
      rowIdx = new Int32Array(R.n);
      const pos = rowStart.slice(0, maxDepth + 1);
      for (let i = 0; i < R.n; i++) rowIdx[pos[R.depth[i]]++] = i;
    }

    const yOf = (depth) => (st.view === "flame" ? (maxDepth - depth) * ROW : depth * ROW);

    const widthCache = new Map();
    function fitText(label, avail) {
      let full = widthCache.get(label);
      if (full === undefined) {
        full = ctx.measureText(label).width;
        if (widthCache.size < 100000) widthCache.set(label, full);
      }
      if (full <= avail) return label;
      const n = Math.floor((label.length * avail) / full) - 1;
      return n >= 2 ? label.slice(0, n) + "\u2026" : null;
    }

    function nameOf(d) {
      return d === 0 ? "all" : fName[dFunc[d]];
    }

    function drawGraph() {
      const dpr = window.devicePixelRatio || 1;
      cssH = R.n ? (maxDepth + 1) * ROW : 0;
      canvas.style.height = cssH + "px";
      const pw = Math.max(1, Math.round(cssW * dpr));
      const ph = Math.max(1, Math.round(cssH * dpr));
      if (canvas.width !== pw) canvas.width = pw;
      if (canvas.height !== ph) canvas.height = ph;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.globalAlpha = 1;
      ctx.fillStyle = theme.bg;
      ctx.fillRect(0, 0, cssW, cssH);
      $("empty").hidden = R.n > 0;
      if (!R.n) return;

      for (let i = 0; i < R.n; i++) {
        const d = R.node[i];
        const w = R.w[i];
        let alpha = R.anc[i] ? 0.55 : 1;
        let color;
        if (d === 0) color = theme.root;
        else if (searchOn && dMatch[d]) color = theme.match;
        else {
          color = DF ? diffColor(d) : palette[dFunc[d]];
          if (searchOn) alpha *= 0.3;
        }
        ctx.globalAlpha = alpha;
        ctx.fillStyle = color;
        ctx.fillRect(R.x[i], yOf(R.depth[i]), w > 2 ? w - 1 : w, ROW - 1);
      }

      ctx.font = FONT;
      ctx.textBaseline = "middle";
      for (let i = 0; i < R.n; i++) {
        const w = R.w[i];
        if (w < 24) continue;
        const d = R.node[i];
        const text = fitText(d === 0 ? "all \u00b7 " + fmtNs(dTotW[0] * IV) : nameOf(d), w - 8);
        if (!text) continue;
        const matched = searchOn && d > 0 && dMatch[d];
        const dimmed = d > 0 && (R.anc[i] || (searchOn && !matched));
        // Dimmed boxes are blended toward the background: on a dark theme
        // they turn dark too, so their labels switch to the light text colour.
        ctx.globalAlpha = dimmed ? (theme.dark ? 0.75 : 0.6) : 1;
        ctx.fillStyle = matched ? "#ffffff" : d === 0 || (dimmed && theme.dark) ? theme.fg : theme.text;
        ctx.fillText(text, R.x[i] + 4, yOf(R.depth[i]) + ROW / 2);
      }
      ctx.globalAlpha = 1;

      const h = rectIndexOf(st.hover);
      if (h >= 0) {
        ctx.strokeStyle = theme.fg;
        ctx.lineWidth = 1.5;
        ctx.strokeRect(R.x[h] + 0.75, yOf(R.depth[h]) + 0.75, Math.max(R.w[h] - 2.5, 1), ROW - 2.5);
      }
    }

    function rectIndexOf(d) {
      if (d < 0) return -1;
      const depth = dDepth[d];
      if (depth > maxDepth) return -1;
      for (let j = rowStart[depth]; j < rowStart[depth + 1]; j++) if (R.node[rowIdx[j]] === d) return rowIdx[j];
      return -1;
    }

    function hit(px, py) {
      if (!R.n || py < 0 || py >= cssH) return -1;
      const row = Math.floor(py / ROW);
      const depth = st.view === "flame" ? maxDepth - row : row;
      if (depth < 0 || depth > maxDepth) return -1;
      let lo = rowStart[depth];
      let hi = rowStart[depth + 1] - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (R.x[rowIdx[mid]] <= px) {
          found = rowIdx[mid];
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (found >= 0 && px < R.x[found] + Math.max(R.w[found], 1)) return R.node[found];
      return -1;
    }

    function renderGraph() {
      cssW = canvas.clientWidth || canvas.parentElement.clientWidth;
      layout();
      drawGraph();
    }

    // ---------------------------------------------------------------- details, tooltip
    const SAFE_URL = /^(https?|file|vscode|vscode-insiders|vscodium|cursor|idea|pycharm|jetbrains|subl|txmt|mvim):/i;
    const tmpl = typeof D.source_url === "string" && SAFE_URL.test(D.source_url) ? D.source_url : null;
    const encPath = (p) => p.split("/").map((s) => encodeURIComponent(s).replace(/%3A/gi, ":")).join("/");

    function sourceUrl(d, line) {
      if (!tmpl || d <= 0) return null;
      const fi = fFile[dFunc[d]];
      if (!fileAbs[fi]) return null;
      const url = tmpl.replace(/\{(path|abspath|line)\}/g, (_, k, at) => {
        if (k === "line") return String(line);
        let p = k === "path" ? filePath[fi] : fileAbs[fi];
        // "vscode://file/{abspath}" must give vscode://file/home/..., not
        // file//home (which VS Code rejects); "file://{abspath}" keeps its "/".
        if (at > 1 && tmpl[at - 1] === "/" && tmpl[at - 2] !== "/") p = p.replace(/^\/+/, "");
        return encPath(p);
      });
      return SAFE_URL.test(url) ? url : null;
    }

    function lineBreakdown(d) {
      const m = new Map();
      for (let i = rStart[d]; i < rStart[d + 1]; i++) {
        const r = rList[i];
        const w = r > 0 ? rawTotal(r) : 0;
        if (w > 0) {
          const ln = frLine[rFrame[r]];
          m.set(ln, (m.get(ln) || 0) + w);
        }
      }
      return Array.from(m.entries()).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    }

    function location(d, lines) {
      if (d <= 0) return "";
      const f = dFunc[d];
      const file = fileShort[fFile[f]];
      if (!file) return "";
      const line = lines.length && lines[0][0] ? lines[0][0] : fFirst[f];
      return file + ":" + line;
    }

    function pathOf(d) {
      const p = [];
      for (let a = d; a > 0; a = dParent[a]) p.push(a);
      return p.reverse();
    }

    const tip = $("tooltip");

    function showTooltip(d, cx, cy) {
      const root = dTotW[0] || 1;
      const lines = lineBreakdown(d);
      tip.replaceChildren();
      tip.append(el("div", "tt-name", nameOf(d)));
      const loc = location(d, lines);
      if (loc) tip.append(el("div", "tt-loc", loc + (fFirst[dFunc[d]] ? "  (def line " + fFirst[dFunc[d]] + ")" : "")));
      const grid = el("div", "tt-grid");
      grid.append(
        el("span", "k", "Total"), el("span", "v", fmtNs(dTotW[d] * IV)), el("span", "p", fmtPct(dTotW[d] / root)),
        el("span", "k", "Self"), el("span", "v", fmtNs(dSelfW[d] * IV)), el("span", "p", fmtPct(dSelfW[d] / root)),
        el("span", "k", "Samples"), el("span", "v", fmtInt(dTotN[d])), el("span", "p", fmtInt(dSelfN[d]) + " self"),
      );
      tip.append(grid);
      if (DF) {
        tip.append(el("div", "tt-diffhead", DF.base_name + " \u2192 " + DF.new_name + " (share of samples)"));
        const g2 = el("div", "tt-grid tt-diff");
        for (const [k, self] of [["Total", false], ["Self", true]]) {
          const pb = baseShare(d, self);
          const pn = newShare(d, self);
          g2.append(el("span", "k", k), el("span", "v", fmtPct(pb) + " \u2192 " + fmtPct(pn)),
            el("span", pn > pb ? "p up" : pn < pb ? "p down" : "p", fmtPp(pn - pb)));
        }
        tip.append(g2);
        const pb = baseShare(d, false);
        const pn = newShare(d, false);
        tip.append(el("div", "tt-lines", (baseOf[d] < 0 ? "not sampled in " + DF.base_name + " \u00b7 " : "") +
          "sampling noise (1 SE) \u00b1" + (shareNoise(pb, pn) * 100).toFixed(2) + " pp"));
      }
      if (d > 0 && lines.length > 1) {
        const tot = dTotW[d] || 1;
        tip.append(el("div", "tt-lines", "lines: " + lines.slice(0, 4).map(([ln, w]) => ln + " (" + fmtPct(w / tot) + ")").join(" \u00b7 ") + (lines.length > 4 ? " \u2026" : "")));
      }
      if (d > 0) {
        const path = pathOf(d);
        const box = el("div", "tt-stack");
        const HEAD = 5;
        const TAIL = 20;
        path.forEach((a, i) => {
          if (path.length > HEAD + TAIL + 1 && i >= HEAD && i < path.length - TAIL) {
            if (i === HEAD) box.append(el("div", "gap", "\u2026 " + (path.length - HEAD - TAIL) + " more frames \u2026"));
            return;
          }
          const row = el("div", a === d ? "here" : null, (i ? "\u2192 " : "") + nameOf(a));
          const fl = fileShort[fFile[dFunc[a]]];
          if (fl) row.title = fl;
          box.append(row);
        });
        tip.append(box);
      }
      tip.append(el("div", "tt-hint", d === st.zoom ? "click a frame to zoom \u00b7 Esc to zoom out" : "click to zoom"));
      tip.hidden = false;
      placeTooltip(cx, cy);
    }

    function placeTooltip(cx, cy) {
      const pad = 14;
      const tw = tip.offsetWidth;
      const th = tip.offsetHeight;
      let x = cx + pad;
      let y = cy + pad;
      if (x + tw > window.innerWidth - 8) x = Math.max(8, cx - tw - pad);
      if (y + th > window.innerHeight - 8) y = Math.max(8, cy - th - pad);
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    }

    function hideTooltip() {
      tip.hidden = true;
    }

    function updateDetails() {
      let d = st.hover >= 0 ? st.hover : st.selected >= 0 ? st.selected : st.zoom;
      if (!(d >= 0 && d < nDisp)) d = 0;
      const root = dTotW[0] || 1;
      const lines = d > 0 ? lineBreakdown(d) : [];
      $("d-name").textContent = d === 0 ? "all samples" : nameOf(d);
      $("d-loc").textContent = d === 0 ? nFuncs + " functions \u00b7 " + nRaw + " call-tree nodes" : location(d, lines);
      const stats = $("d-stats");
      stats.replaceChildren(
        el("span", null, "total "), el("b", null, fmtNs(dTotW[d] * IV)), el("span", null, " (" + fmtPct(dTotW[d] / root) + ")  \u00b7  self "),
        el("b", null, fmtNs(dSelfW[d] * IV)), el("span", null, " (" + fmtPct(dSelfW[d] / root) + ")"),
      );
      if (DF) {
        stats.append(el("span", null, "  \u00b7  " + DF.base_name + " total " + fmtPct(baseShare(d, false)) + ", "),
          el("b", null, fmtPp(shareDelta(d))));
      }
      const a = $("d-source");
      const url = sourceUrl(d, lines.length && lines[0][0] ? lines[0][0] : d > 0 ? fFirst[dFunc[d]] : 0);
      if (url) {
        a.setAttribute("href", url);
        a.title = url;
        a.hidden = false;
      } else {
        a.removeAttribute("href");
        a.hidden = true;
      }
    }

    // ---------------------------------------------------------------- breadcrumb, totals, search result
    function updateBreadcrumb() {
      const nav = $("breadcrumb");
      nav.replaceChildren();
      if (st.zoom === 0) {
        nav.hidden = true;
        return;
      }
      nav.hidden = false;
      const chain = [0].concat(pathOf(st.zoom));
      chain.forEach((d, i) => {
        if (i) nav.append(el("span", "sep", "\u203a"));
        const b = el("button", d === st.zoom ? "current" : null, nameOf(d));
        b.type = "button";
        b.title = d === 0 ? "Reset zoom" : nameOf(d);
        b.dataset.depth = String(i);
        b.addEventListener("click", () => setZoom(d));
        nav.append(b);
      });
    }

    function updateTotals() {
      if (DF) {
        $("legend").textContent = "Click a frame to zoom \u00b7 Esc zooms out \u00b7 / search \u00b7 red: share of samples grew since " +
          DF.base_name + ", blue: shrank (total share; full colour at " + fmtPp(diffScale).slice(1) + ")";
      }
      const box = $("total");
      box.replaceChildren(el("b", null, fmtNs(dTotW[0] * IV)), el("span", null, " \u00b7 " + fmtInt(dTotN[0]) + " samples"));
      if (grandW && dTotW[0] !== grandW) box.append(el("span", null, " \u00b7 " + fmtPct(dTotW[0] / grandW) + " of profile"));
    }

    function updateSearchResult() {
      const out = $("search-result");
      out.classList.toggle("bad", !!searchErr);
      if (searchErr) out.textContent = searchErr;
      else if (!searchOn) out.textContent = "";
      else if (!nMatchFuncs) out.textContent = "no match";
      else out.textContent = fmtPct(dTotW[0] ? searchW / dTotW[0] : 0) + " of samples \u00b7 " + nMatchFuncs + (nMatchFuncs === 1 ? " function" : " functions");
    }

    // ---------------------------------------------------------------- timeline
    const tl = $("timeline");
    const tctx = tl.getContext("2d");
    let drag = null;

    function secLabel(b) {
      return b > 0 ? fmtNs(b * bucketNs) : "0";
    }

    function drawTimeline(sel) {
      const dpr = window.devicePixelRatio || 1;
      const W = tl.clientWidth;
      const H = tl.clientHeight || 56;
      if (!W) return;
      tl.width = Math.round(W * dpr);
      tl.height = Math.round(H * dpr);
      tctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      tctx.clearRect(0, 0, W, H);
      const ncol = Math.max(1, Math.min(nBuckets, Math.floor(W / 2)));
      const colW = new Float64Array(ncol);
      const colM = new Float64Array(ncol);
      for (let b = 0; b < nBuckets; b++) {
        const c = Math.min(ncol - 1, Math.floor((b * ncol) / nBuckets));
        colW[c] += hist[b];
        colM[c] += histMatch[b];
      }
      let maxv = 0;
      for (let c = 0; c < ncol; c++) if (colW[c] > maxv) maxv = colW[c];
      const bw = W / ncol;
      const top = 14;
      const usable = H - top - 2;
      if (maxv > 0) {
        const grad = tctx.createLinearGradient(0, H, 0, top);
        grad.addColorStop(0, "#ea580c");
        grad.addColorStop(1, "#fbbf24");
        tctx.fillStyle = grad;
        for (let c = 0; c < ncol; c++) {
          if (!colW[c]) continue;
          const h = Math.max(1, (colW[c] / maxv) * usable);
          tctx.fillRect(c * bw, H - 1 - h, Math.max(bw - (bw > 3 ? 1 : 0), 1), h);
        }
        if (searchOn) {
          tctx.fillStyle = theme.match;
          for (let c = 0; c < ncol; c++) {
            if (!colM[c]) continue;
            const h = Math.max(1, (colM[c] / maxv) * usable);
            tctx.fillRect(c * bw, H - 1 - h, Math.max(bw - (bw > 3 ? 1 : 0), 1), h);
          }
        }
      }
      tctx.font = "10.5px " + FONT.slice(FONT.indexOf(" ") + 1);
      tctx.textBaseline = "top";
      tctx.fillStyle = theme.muted;
      tctx.textAlign = "left";
      tctx.fillText("0", 5, 2);
      tctx.textAlign = "right";
      tctx.fillText(secLabel(nBuckets), W - 5, 2);
      tctx.textAlign = "left";
      const r = sel || st.range;
      if (r) {
        const x0 = (r[0] / nBuckets) * W;
        const x1 = ((r[1] + 1) / nBuckets) * W;
        tctx.fillStyle = theme.tlShade;
        tctx.fillRect(0, 0, x0, H);
        tctx.fillRect(x1, 0, W - x1, H);
        tctx.strokeStyle = theme.accent;
        tctx.lineWidth = 1.5;
        tctx.strokeRect(x0 + 0.75, 0.75, Math.max(x1 - x0 - 1.5, 1), H - 1.5);
      }
      const label = $("range");
      const clear = $("range-clear");
      if (r) {
        label.textContent = secLabel(r[0]) + " \u2013 " + secLabel(r[1] + 1) + "  (" + fmtNs((r[1] + 1 - r[0]) * bucketNs) + ")";
        clear.hidden = false;
      } else {
        label.textContent = "";
        clear.hidden = true;
      }
    }

    function bucketAt(clientX) {
      const rect = tl.getBoundingClientRect();
      const x = Math.min(Math.max(clientX - rect.left, 0), rect.width - 0.001);
      return Math.min(nBuckets - 1, Math.max(0, Math.floor((x / rect.width) * nBuckets)));
    }

    // ---------------------------------------------------------------- actions
    function refresh() {
      compute();
      renderGraph();
      drawTimeline(null);
      updateTotals();
      updateSearchResult();
      updateBreadcrumb();
      updateDetails();
    }

    function setZoom(d) {
      st.zoom = d >= 0 && d < nDisp && dTotW[d] > 0 ? d : 0;
      st.selected = st.zoom;
      st.hover = -1;
      hideTooltip();
      renderGraph();
      updateBreadcrumb();
      updateDetails();
    }

    function setRange(r) {
      st.range = r;
      hideTooltip();
      refresh();
    }

    function setState(v) {
      st.state = v;
      for (const k of ["all", "cpu", "waiting"]) $("state-" + k).classList.toggle("on", v === k);
      refresh();
    }

    function setView(v) {
      st.view = v;
      $("view-flame").classList.toggle("on", v === "flame");
      $("view-icicle").classList.toggle("on", v === "icicle");
      renderGraph();
    }

    let searchTimer = 0;
    function applySearch() {
      searchTimer = 0;
      st.query = $("search").value;
      updateSearch();
      refresh();
    }

    // ---------------------------------------------------------------- events
    let pending = 0;
    let lastMouse = null;
    canvas.addEventListener("mousemove", (e) => {
      lastMouse = e;
      if (pending) return;
      pending = requestAnimationFrame(() => {
        pending = 0;
        const ev = lastMouse;
        const rect = canvas.getBoundingClientRect();
        const d = hit(ev.clientX - rect.left, ev.clientY - rect.top);
        if (d !== st.hover) {
          st.hover = d;
          drawGraph();
          updateDetails();
        }
        if (d >= 0) showTooltip(d, ev.clientX, ev.clientY);
        else hideTooltip();
      });
    });
    canvas.addEventListener("mouseleave", () => {
      if (pending) cancelAnimationFrame(pending);
      pending = 0;
      st.hover = -1;
      hideTooltip();
      drawGraph();
      updateDetails();
    });
    canvas.addEventListener("click", (e) => {
      const rect = canvas.getBoundingClientRect();
      const d = hit(e.clientX - rect.left, e.clientY - rect.top);
      if (d >= 0) setZoom(d);
    });

    $("view-flame").addEventListener("click", () => setView("flame"));
    $("view-icicle").addEventListener("click", () => setView("icicle"));
    $("state-field").hidden = !hasWaiting;
    for (const k of ["all", "cpu", "waiting"]) $("state-" + k).addEventListener("click", () => setState(k));
    threadSel.addEventListener("change", () => {
      st.thread = parseInt(threadSel.value, 10);
      refresh();
    });
    labelSel.addEventListener("change", () => {
      st.pair = parseInt(labelSel.value, 10);
      labelOk.fill(0);
      if (st.pair >= 0) for (const ls of pairs[st.pair].sets) labelOk[ls] = 1;
      refresh();
    });
    $("search").addEventListener("input", () => {
      if (searchTimer) clearTimeout(searchTimer);
      searchTimer = setTimeout(applySearch, 60);
    });
    $("regex").addEventListener("click", () => {
      st.regex = !st.regex;
      $("regex").setAttribute("aria-pressed", String(st.regex));
      applySearch();
    });
    $("range-clear").addEventListener("click", () => setRange(null));
    tl.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      const b = bucketAt(e.clientX);
      drag = { x: e.clientX, b0: b, b1: b };
      e.preventDefault();
    });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      drag.b1 = bucketAt(e.clientX);
      if (Math.abs(e.clientX - drag.x) >= 3) drawTimeline([Math.min(drag.b0, drag.b1), Math.max(drag.b0, drag.b1)]);
    });
    window.addEventListener("mouseup", (e) => {
      if (!drag) return;
      const g = drag;
      drag = null;
      g.b1 = bucketAt(e.clientX);
      if (Math.abs(e.clientX - g.x) >= 3) setRange([Math.min(g.b0, g.b1), Math.max(g.b0, g.b1)]);
      else if (st.range) setRange(null);
    });
    document.addEventListener("keydown", (e) => {
      const inField = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
      if (e.key === "/" && !inField) {
        e.preventDefault();
        $("search").focus();
      } else if (e.key === "Escape") {
        if (e.target === $("search")) {
          if ($("search").value) {
            $("search").value = "";
            applySearch();
          } else $("search").blur();
        } else if (st.zoom > 0) setZoom(dParent[st.zoom]);
      }
    });
    $("theme").addEventListener("click", () => {
      document.documentElement.dataset.theme = isDark() ? "light" : "dark";
      refreshTheme();
      renderGraph();
      drawTimeline(null);
    });
    if (window.matchMedia) {
      const mq = window.matchMedia("(prefers-color-scheme: dark)");
      const onScheme = () => {
        refreshTheme();
        renderGraph();
        drawTimeline(null);
      };
      if (mq.addEventListener) mq.addEventListener("change", onScheme);
    }
    // Redraw when the page's width changes. A ResizeObserver also catches the
    // case the window's resize event misses: a page in an iframe (a notebook's
    // output) laid out at width 0 first and sized afterwards without the
    // viewport ever being resized.
    let resizeFrame = 0;
    let resizeForced = false;
    const onResize = (force) => {
      resizeForced = resizeForced || force === true;
      if (resizeFrame) return;
      resizeFrame = requestAnimationFrame(() => {
        resizeFrame = 0;
        const w = canvas.clientWidth || canvas.parentElement.clientWidth;
        const tlStale = tl.width !== Math.round(tl.clientWidth * (window.devicePixelRatio || 1));
        // The observer also fires when a redraw changes the canvas's height: skip those.
        if (!resizeForced && w === cssW && !tlStale) return;
        resizeForced = false;
        renderGraph();
        drawTimeline(null);
      });
    };
    window.addEventListener("resize", () => onResize(true));
    if (typeof ResizeObserver === "function") {
      const ro = new ResizeObserver(() => onResize(false));
      ro.observe(canvas.parentElement);
      ro.observe(tl);
    }

    // ---------------------------------------------------------------- first paint
    refreshTheme();
    buildHeader();
    buildSelectors();
    updateSearch();
    const tBeforePaint = performance.now();
    compute();
    const tComputed = performance.now();
    renderGraph();
    const tGraph = performance.now();
    drawTimeline(null);
    updateTotals();
    updateSearchResult();
    updateBreadcrumb();
    updateDetails();
    const tDone = performance.now();
    const timings = Object.freeze({
      parse_ms: tParsed - T0,
      build_ms: tBuilt - tParsed,
      first_paint_ms: tDone - tBuilt,
      setup_ms: tBeforePaint - tBuilt,
      compute_ms: tComputed - tBeforePaint,
      graph_ms: tGraph - tComputed,
      total_ms: tDone - T0,
      nodes: nRaw,
      functions: nFuncs,
      records: nRec,
    });
    $("timing").textContent = "rendered in " + Math.round(timings.total_ms) + " ms";

    // Read-only automation hook (used by the browser tests; handy for scripting).
    window.ringprof = Object.freeze({
      timings,
      state: () => ({
        view: st.view,
        state: st.state,
        hasWaiting,
        thread: st.thread,
        label: st.pair >= 0 ? pairs[st.pair].k + "=" + pairs[st.pair].v : null,
        range: st.range ? st.range.slice() : null,
        query: st.query,
        zoom: nameOf(st.zoom),
        zoomPath: [0].concat(pathOf(st.zoom)).map(nameOf),
        totalWeight: dTotW[0],
        totalSamples: dTotN[0],
        searchFraction: searchOn && dTotW[0] ? searchW / dTotW[0] : 0,
        matchedFunctions: nMatchFuncs,
        rects: R.n,
      }),
      // Diff mode: shares (fractions) of the nth drawn box named `name`, and the
      // colour it is drawn with; null when not drawn or not in diff mode.
      diffOf: (name, nth) => {
        if (!DF) return null;
        let k = nth || 0;
        for (let i = 0; i < R.n; i++) {
          if (R.anc[i] || nameOf(R.node[i]) !== name || k-- > 0) continue;
          const d = R.node[i];
          return { baseTotal: baseShare(d, false), newTotal: newShare(d, false), baseSelf: baseShare(d, true),
            newSelf: newShare(d, true), color: diffColor(d), inBase: baseOf[d] >= 0 };
        }
        return null;
      },
      // Client coordinates of the nth drawn box named `name` (optionally only
      // at call depth `depth`, 0 = "all"), in layout order; null if not drawn.
      rectOf: (name, nth, depth) => {
        const cr = canvas.getBoundingClientRect();
        let k = nth || 0;
        for (let i = 0; i < R.n; i++) {
          if (R.anc[i] || nameOf(R.node[i]) !== name) continue;
          if (depth !== undefined && depth !== null && R.depth[i] !== depth) continue;
          if (k-- > 0) continue;
          const x = cr.left + R.x[i];
          const y = cr.top + yOf(R.depth[i]);
          return { x, y, w: R.w[i], h: ROW - 1, cx: x + Math.min(R.w[i], 200) / 2, cy: y + (ROW - 1) / 2 };
        }
        return null;
      },
    });
    document.body.dataset.ready = "1";
  }

  try {
    main();
  } catch (err) {
    fail(err);
  }
})();
