// The ganforensics page: upload images to /v1/detect, one card per image. No dependencies.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const results = [];          // every answer, in upload order: {filename, result|error}
  const CONCURRENT = 4;        // uploads in flight at once
  let pending = 0;

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const kid of kids) if (kid) node.append(kid);
    return node;
  }
  const svgEl = (tag, attrs) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };
  const fmt = (p) => (p === null || p === undefined ? "–" : p.toFixed(3));

  function setStatus(text) { $("status").textContent = text; }
  function refreshButtons() {
    const any = results.length > 0;
    $("dl-json").disabled = !any; $("dl-csv").disabled = !any;
    $("clear").disabled = !any && pending === 0;
  }

  function bar(p, thr, label) {
    const b = el("div", {class: "bar", role: "img",
      "aria-label": `P(fake) ${fmt(p)}, threshold ${fmt(thr)}: ${label || "no score"}`});
    if (p !== null && p !== undefined) {
      const f = el("div", {class: "fill " + (label === "fake" ? "fake" : "real")});
      f.style.width = (100 * p).toFixed(1) + "%";
      b.append(f);
    }
    const t = el("div", {class: "thr", title: "threshold " + fmt(thr)});
    t.style.left = `calc(${(100 * thr).toFixed(1)}% - 1px)`;
    b.append(t);
    return b;
  }

  function verdict(name, v) {
    const lab = v.label ? el("span", {class: "label-" + v.label, text: v.label}) : null;
    const right = v.error ? el("span", {class: "error", text: "error"})
      : el("span", {}, lab, ` ${fmt(v.p_fake)} (threshold ${fmt(v.threshold)})`);
    const box = el("div", {class: "verdict"},
      el("div", {class: "line"}, el("span", {text: name}), right),
      bar(v.p_fake, v.threshold, v.label));
    if (v.error) box.append(el("div", {class: "error", text: v.error}));
    return box;
  }

  function spectrumPlot(s) {
    // Each curve divided by its first bin (as the spectral-profile detector normalises):
    // 20 ln|F| grows with image size, so only the shapes compare across sizes.
    const W = 320, H = 170, L = 38, B = 22, T = 8, R = 8;
    const norm = (arr, by) => arr.map((v) => v / (by || 1));
    const prof = norm(s.profile, s.profile[0]);
    let ref = null;
    if (s.reference) {
      const m0 = s.reference.mean[0];
      ref = {freq: s.reference.freq, mean: norm(s.reference.mean, m0),
             std: norm(s.reference.std, m0)};
    }
    const ys = prof.slice();
    if (ref) ref.mean.forEach((m, i) => ys.push(m - ref.std[i], m + ref.std[i]));
    const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
    const X = (f) => L + f * (W - L - R), Y = (v) => T + (1 - (v - lo) / span) * (H - T - B);
    const svg = svgEl("svg", {viewBox: `0 0 ${W} ${H}`, class: "spectrum", role: "img",
      "aria-label": "Azimuthal spectrum of the image" + (ref ? " against the real images" : "")});
    svg.append(svgEl("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999"}));
    svg.append(svgEl("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#999"}));
    const axis = (x, y, text, anchor) => {
      const t = svgEl("text", {x, y, "font-size": 10, fill: "#555", "text-anchor": anchor});
      t.textContent = text; svg.append(t);
    };
    axis(L, H - 6, "0", "middle"); axis(W - R, H - 6, "Nyquist", "end");
    axis(L - 3, T + 8, hi.toFixed(2), "end"); axis(L - 3, H - B, lo.toFixed(2), "end");
    if (ref) {
      const up = ref.freq.map((f, i) => `${X(f)},${Y(ref.mean[i] + ref.std[i])}`);
      const dn = ref.freq.map((f, i) => `${X(f)},${Y(ref.mean[i] - ref.std[i])}`).reverse();
      svg.append(svgEl("polygon", {points: up.concat(dn).join(" "), fill: "#1e844933"}));
      svg.append(svgEl("polyline", {points: ref.freq.map((f, i) => `${X(f)},${Y(ref.mean[i])}`)
        .join(" "), fill: "none", stroke: "#1e8449", "stroke-width": 1.5}));
    }
    svg.append(svgEl("polyline", {points: s.freq.map((f, i) => `${X(f)},${Y(prof[i])}`)
      .join(" "), fill: "none", stroke: "#c0392b", "stroke-width": 2}));
    const cap = ref ? "Red: this image; green: the run's real images (mean ± sd). "
      : "This image (no reference spectrum: not a study run). ";
    return el("figure", {}, svg, el("figcaption",
      {text: cap + "20 ln|F| per radius over its first bin; frequency as a fraction of " +
       "Nyquist."}));
  }

  function newCard(file) {
    const card = el("article", {class: "card pending", "data-filename": file.name,
                                "aria-busy": "true"});
    const thumb = el("img", {class: "thumb", alt: ""});
    thumb.addEventListener("error", () => { thumb.style.display = "none"; });
    if (file.type.startsWith("image/")) thumb.src = URL.createObjectURL(file);
    card.append(el("div", {class: "head"}, thumb,
      el("div", {}, el("h2", {text: file.name}),
        el("div", {class: "facts", text: `${(file.size / 1024).toFixed(1)} kB · scoring…`}))));
    $("cards").append(card);
    return card;
  }

  function fillCard(card, r) {
    card.classList.remove("pending"); card.classList.add("ok");
    card.removeAttribute("aria-busy");
    card.querySelector(".facts").textContent =
      `${r.width}×${r.height} px · sha256 ${r.sha256.slice(0, 12)}…`;
    const body = el("div", {class: "body"});
    for (const v of r.detectors) body.append(verdict(`${v.name} (${v.kind})`, v));
    if (r.ensemble) {
      const e = verdict(`ensemble of ${r.ensemble.n_detectors}`, r.ensemble);
      e.classList.add("ensemble"); body.append(e);
    }
    if (r.spectrum) body.append(spectrumPlot(r.spectrum));
    for (const v of r.detectors) {
      if (v.gradcam_png) {
        body.append(el("figure", {}, el("img", {class: "heat",
          src: "data:image/png;base64," + v.gradcam_png,
          alt: `Grad-CAM heat-map of ${v.name} over the image`}),
          el("figcaption", {text: `Grad-CAM of ${v.name}: where the fake logit looks.`})));
      }
    }
    card.append(body);
  }

  function rejectCard(card, problem) {
    card.classList.remove("pending"); card.classList.add("rejected");
    card.removeAttribute("aria-busy");
    card.querySelector(".facts").textContent = `rejected (${problem.status} ${problem.title})`;
    card.append(el("p", {class: "error", role: "alert", text: problem.detail}));
  }

  async function upload(file, card) {
    const form = new FormData();
    form.append("files[]", file, file.name);
    const headers = {};
    const key = $("apikey").value;
    if (key) headers["X-API-Key"] = key;
    const url = "/v1/detect" + ($("explain").checked ? "?explain=true" : "");
    let body = null, status = 0;
    try {
      const resp = await fetch(url, {method: "POST", body: form, headers});
      status = resp.status;
      body = await resp.json();
    } catch (err) {
      body = {status: status || 0, title: "Network error", detail: String(err)};
    }
    if (status === 200 && body.results) {
      const r = body.results[0];
      if (r.error) { rejectCard(card, r.error); results.push({filename: file.name, error: r.error}); }
      else { fillCard(card, r); results.push({filename: file.name, result: r}); }
    } else {
      const problem = {status: body.status || status, title: body.title || "Error",
                       detail: body.detail || "the server refused this file"};
      if (status === 401) $("keybox").open = true;
      rejectCard(card, problem);
      results.push({filename: file.name, error: problem});
    }
  }

  async function handle(fileList) {
    const files = Array.from(fileList);
    if (!files.length) return;
    const queue = files.map((f) => [f, newCard(f)]);
    pending += files.length; refreshButtons();
    setStatus(`Scoring ${pending} image(s)…`);
    const worker = async () => {
      while (queue.length) {
        const [f, card] = queue.shift();
        await upload(f, card);
        pending -= 1;
        setStatus(pending ? `Scoring ${pending} image(s)…` : `Done: ${results.length} result(s).`);
        refreshButtons();
      }
    };
    await Promise.all(Array.from({length: Math.min(CONCURRENT, files.length)}, worker));
  }

  function download(name, text, type) {
    const a = el("a", {href: URL.createObjectURL(new Blob([text], {type})), download: name});
    document.body.append(a); a.click(); a.remove();
  }
  const csvCell = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  function toCsv() {
    const rows = [["filename", "sha256", "width", "height", "detector", "kind", "p_fake",
                   "threshold", "label", "error"]];
    for (const x of results) {
      if (x.error) { rows.push([x.filename, "", "", "", "", "", "", "", "",
                                `${x.error.status}: ${x.error.detail}`]); continue; }
      const r = x.result;
      const dets = r.detectors.concat(r.ensemble ? [{name: "ensemble", kind: "ensemble",
                                                      ...r.ensemble}] : []);
      for (const v of dets) rows.push([x.filename, r.sha256, r.width, r.height, v.name, v.kind,
                                       v.p_fake, v.threshold, v.label, v.error]);
    }
    return rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
  }

  const drop = $("drop"), input = $("files");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  $("pick").addEventListener("click", () => input.click());
  input.addEventListener("change", () => { handle(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => handle(e.dataTransfer.files));
  $("dl-json").addEventListener("click", () =>
    download("ganforensics-results.json", JSON.stringify(results, null, 2), "application/json"));
  $("dl-csv").addEventListener("click", () =>
    download("ganforensics-results.csv", toCsv(), "text/csv"));
  $("clear").addEventListener("click", () => {
    results.length = 0; $("cards").replaceChildren(); setStatus(""); refreshButtons();
  });

  fetch("/v1/models", {headers: $("apikey").value ? {"X-API-Key": $("apikey").value} : {}})
    .then((r) => r.json().then((b) => [r.status, b]))
    .then(([status, b]) => {
      if (status === 200) {
        $("models").textContent = "Detectors: " + b.models.map((m) =>
          `${m.name} (${m.kind}, threshold ${fmt(m.threshold)})`).join(", ");
      } else if (status === 401) {
        $("keybox").open = true;
        $("models").textContent = "This server needs an API key.";
      } else {
        $("models").textContent = b.detail || "The detectors are not ready yet.";
      }
    }).catch(() => { $("models").textContent = "Cannot reach the server."; });
})();
