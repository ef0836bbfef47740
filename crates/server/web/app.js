// The aqiqat page: upload, follow the job, show the result. Texts come from /ui/i18n/LANG.json.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let texts = {};
  let lang = localStorage.getItem("aqiqat.lang") || (navigator.language || "en").slice(0, 2);
  if (!["kk", "ru", "en"].includes(lang)) lang = "en";
  let job = null;
  // The jobs of a link's media items, in the post's order, and which one is shown.
  let items = [];
  let shown = null;
  // The picture being scanned, when it was uploaded from this page: the heat map is drawn over it.
  let picture = null;

  async function setLang(l) {
    lang = l;
    localStorage.setItem("aqiqat.lang", l);
    texts = await (await fetch(`/ui/i18n/${l}.json`)).json();
    document.documentElement.lang = l;
    document.querySelectorAll("[data-t]").forEach((el) => {
      const t = texts[el.dataset.t];
      if (t !== undefined) el.textContent = t;
    });
    document.querySelectorAll("[data-lang]").forEach((b) => b.classList.toggle("active", b.dataset.lang === l));
    if (job && job.state === "done") showResult(job);
    else if (job) showState(job.state);
    loadVoiceprints();
  }

  // The voiceprints this key (or this machine's user) may compare with.
  async function loadVoiceprints(select) {
    const r = await fetch("/v1/voiceprints", { headers: headers() });
    if (!r.ok) return;
    const list = (await r.json()).voiceprints || [];
    const box = $("claimed");
    const keep = select || box.value;
    box.replaceChildren(box.options[0] || document.createElement("option"));
    box.options[0].value = "";
    box.options[0].textContent = texts.compare_none || "";
    for (const v of list) {
      const o = document.createElement("option");
      o.value = v.id;
      o.textContent = `${v.name} (${fmt(v.speech_s, 0)} ${texts.seconds})`;
      box.appendChild(o);
    }
    box.value = list.some((v) => v.id === keep) ? keep : "";
  }

  async function enrol() {
    const name = $("enrol-name").value.trim();
    const files = $("enrol-files").files;
    const state = $("enrol-state");
    if (!name || !files.length) { state.textContent = texts.enrol_missing; return; }
    const form = new FormData();
    form.append("name", name);
    for (const f of files) form.append("file", f, f.name);
    state.textContent = texts.enrolling;
    const r = await fetch("/v1/voiceprints", { method: "POST", headers: headers(), body: form });
    const j = await r.json().catch(() => ({}));
    if (r.status !== 201) { state.textContent = (j.error && j.error.message) || `HTTP ${r.status}`; return; }
    state.textContent = (texts.enrolled || "").replace("{name}", j.name).replace("{s}", fmt(j.speech_s, 1))
      + (j.warnings && j.warnings.length ? ` ${texts.enrol_warning}` : "");
    state.dataset.id = j.id;
    await loadVoiceprints(j.id);
  }

  function headers() {
    const key = $("apikey").value.trim();
    if (key) localStorage.setItem("aqiqat.key", key);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function showState(state) {
    $("progress").hidden = false;
    $("state").textContent = texts[state] || state;
  }

  function fail(message) {
    $("progress").hidden = true;
    $("error").hidden = false;
    $("error-text").textContent = message;
  }

  function reset() {
    $("result").hidden = true;
    $("error").hidden = true;
    job = null;
    items = [];
    shown = null;
    $("items").hidden = true;
    $("item-buttons").replaceChildren();
    if (picture) URL.revokeObjectURL(picture);
    picture = null;
  }

  // A link: the server fetches the post and its media, and makes one job per item.
  async function scanLink(url) {
    reset();
    showState("resolving");
    const body = { url };
    const claimed = $("claimed").value;
    if (claimed) body.claimed = claimed;
    const r = await fetch("/v1/scans", {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      body: JSON.stringify(body),
    }).catch(() => null);
    if (!r) return fail("network error");
    const j = await r.json().catch(() => ({}));
    if (r.status !== 202) return fail((j.error && j.error.message) || `HTTP ${r.status}`);
    items = j.items.map((i) => i.id);
    if (items.length > 1) {
      const box = $("item-buttons");
      items.forEach((id, n) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = `${n + 1}`;
        b.dataset.item = id;
        b.addEventListener("click", () => show(id));
        box.appendChild(b);
      });
      $("items").hidden = false;
    }
    show(items[0]);
  }

  // Shows one item's job (following it until it ends).
  function show(id) {
    shown = id;
    document.querySelectorAll("#item-buttons button").forEach((b) => b.classList.toggle("active", b.dataset.item === id));
    $("result").hidden = true;
    $("error").hidden = true;
    poll(id);
  }

  function upload(file) {
    reset();
    picture = file.type.startsWith("image/") ? URL.createObjectURL(file) : null;
    showState("uploading");
    const xhr = new XMLHttpRequest();
    const claimed = $("claimed").value;
    const claim = claimed ? `&claimed=${encodeURIComponent(claimed)}` : "";
    xhr.open("POST", `/v1/scans?name=${encodeURIComponent(file.name)}${claim}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) $("bar").style.width = `${(100 * e.loaded) / e.total}%`; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status !== 202) return fail((body.error && body.error.message) || `HTTP ${xhr.status}`);
      poll(body.id);
    };
    xhr.onerror = () => fail("network error");
    xhr.send(file);
  }

  async function poll(id) {
    const r = await fetch(`/v1/scans/${id}`, { headers: headers() });
    const j = await r.json();
    if (shown && id !== shown) return; // another item was chosen meanwhile
    if (!r.ok) return fail((j.error && j.error.message) || `HTTP ${r.status}`);
    job = j;
    if (j.state === "done") return showResult(j);
    if (j.state === "failed") return fail(j.error ? j.error.message : "failed");
    showState(j.state);
    setTimeout(() => poll(id), 300);
  }

  const fill = (t, vars) => (t || "").replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));

  function fmt(x, d) {
    const s = x.toFixed(d);
    return lang === "en" ? s : s.replace(".", ",");
  }

  // The detector's reason in this page's language, from its stable code and the figures the
  // result carries; the English sentence in `reason` is the fallback for a code not known here.
  function reasonText(r) {
    const v = r.voice || {};
    const c = v.conditions || {};
    switch (r.reason_code) {
      case undefined:
      case null:
        return "";
      case "no_sign_found":
        return v.reach
          ? fill(texts.reason_no_sign_found, { n: v.reach.families_heard.length, families: v.reach.families_not_heard.join(", ") })
          : texts.reason_no_sign_found_plain;
      case "too_noisy":
        return fill(texts.reason_too_noisy, { snr: fmt(c.snr_db || 0, 0) });
      case "music":
        return fill(texts.reason_music, { share: fmt(100 * (c.music_share || 0), 0) });
      case "several_voices":
        return fill(texts.reason_several_voices, { share: fmt(100 * (c.overlap_share || 0), 0) });
      case "too_little_speech":
        return fill(texts.reason_too_little_speech, { s: fmt(v.speech_s || 0, 1) });
      case "no_speech":
        return texts.reason_no_speech;
      case "between_thresholds":
        return texts.reason_between_thresholds;
      default:
        return r.reason || "";
    }
  }

  function showResult(j) {
    const r = j.result;
    $("progress").hidden = true;
    $("result").hidden = false;
    const v = ["synthetic", "human", "inconclusive"].includes(r.verdict) ? r.verdict : "inconclusive";
    $("verdict-box").className = `verdict v-${v}`;
    $("verdict").textContent = texts[`verdict_${v}`];
    $("verdict").dataset.verdict = r.verdict;
    $("probability").textContent = r.probability_synthetic == null
      ? (r.reason_code ? "" : (r.reason || ""))
      : `${texts.probability} ${fmt(r.probability_synthetic, 2)}`;
    $("reason").textContent = reasonText(r);
    if (r.verdict === "synthetic" && ["content_credentials", "watermark", "metadata"].includes(r.verdict_basis)) {
      $("verdict").textContent = texts.verdict_synthetic_label;
      $("probability").textContent = r.reason || "";
      $("reason").textContent = "";
    }
    showClaim(r);
    if (r.verdict_basis === "image_detector") $("verdict").textContent = texts.verdict_synthetic_image;
    else if (r.media.kind === "image" && r.verdict === "inconclusive") $("verdict").textContent = texts.verdict_inconclusive_image;
    // The image detector's answer is worded, in this page's language, in its own section below;
    // the scan's English sentence is not repeated here.
    if (r.image && ["image_detector", "nothing"].includes(r.verdict_basis)) {
      $("probability").textContent = "";
      $("reason").textContent = "";
    }
    const audio = r.media.kind !== "image";
    $("timeline-part").hidden = !audio;
    if (audio) drawTimeline(r);
    showImage(r);
    showProvenance(r.provenance);
    const src = r.source;
    $("f-link-row").hidden = !src;
    $("f-media-row").hidden = !(src && src.media_url);
    $("f-retrieved-row").hidden = !src;
    if (src) {
      $("f-link").textContent = src.url;
      $("f-media").textContent = src.media_url
        ? `${src.media_url} (${(texts.item_of || "").replace("{n}", src.item).replace("{count}", src.items)})`
        : "";
      $("f-retrieved").textContent = src.retrieved_at;
    }
    $("f-name").textContent = j.name || (src ? (src.media_url || src.url).split("/").pop().split("?")[0] : "");
    $("f-duration-label").textContent = audio ? texts.duration : texts.dimensions;
    $("f-duration").textContent = audio
      ? `${fmt(r.media.duration_s, 1)} ${texts.seconds}`
      : (r.media.width ? `${r.media.width} × ${r.media.height}` : r.media.container);
    $("f-sha").textContent = r.media.sha256;
    $("report").href = `/v1/scans/${j.id}/report?lang=${lang}`;
    $("report-pdf").href = `/v1/scans/${j.id}/report?lang=${lang}&format=pdf`;
    $("record").href = `/v1/scans/${j.id}/record`;
  }

  // The joint answer about the claimed person, in this page's words.
  function showClaim(r) {
    const box = $("claim-box");
    box.hidden = !r.claim;
    if (!r.claim) return;
    const s = r.speaker;
    const verdict = r.claim.verdict;
    const colour = { clone_of_claimed: "synthetic", not_claimed_person: "synthetic", consistent_with_claimed: "human" }[verdict] || "inconclusive";
    box.className = `verdict v-${colour}`;
    $("claim").textContent = (texts[`claim_${verdict}`] || verdict).replaceAll("{name}", s.claimed.name);
    $("claim").dataset.claim = verdict;
    let detail = "";
    if (s.similarity != null) {
      detail = (texts.claim_similarity || "")
        .replace("{sim}", fmt(s.similarity, 2))
        .replace("{diff}", fmt(s.thresholds.different_speaker, 3))
        .replace("{same}", fmt(s.thresholds.same_speaker, 3));
    }
    if (verdict === "inconclusive") {
      const why = s.decision === "same_speaker" ? texts.claim_why_unjudged
        : ["too_little_speech", "no_speech"].includes(s.reason_code) ? texts.claim_why_short
        : ["too_noisy", "music", "several_voices"].includes(s.reason_code) ? texts.claim_why_unfit
        : texts.claim_why_between;
      detail = `${detail} ${why || ""}`.trim();
    }
    $("claim-detail").textContent = detail;
  }

  // One row per finding; the analysers' own words and codes are shown as recorded.
  function showProvenance(p) {
    const table = $("provenance");
    table.replaceChildren();
    const row = (key, value, cls) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = texts[key] || key;
      td.textContent = value;
      if (cls) tr.className = cls;
      tr.append(th, td);
      table.appendChild(tr);
    };
    if (!p) return row("provenance", texts.no_provenance);
    const c = p.content_credentials || {};
    if (c.status === "found") {
      row("p_credentials", texts[`credentials_${c.state}`] || c.state, `c-${c.state}`);
      if (c.digital_source_type) row("p_source_type", c.digital_source_type);
      const created = (c.actions || []).find((a) => a.action === "c2pa.created");
      if (created && created.software_agent) row("p_generator", created.software_agent);
      if (c.signer && c.signer.common_name) row("p_signer", c.signer.common_name);
      for (const f of c.failures || []) row("p_failure", `${f.code}: ${f.meaning}`, "failure");
    } else {
      row("p_credentials", texts[`credentials_${c.status}`] || c.status || "");
    }
    for (const m of (p.metadata && p.metadata.markers) || []) row("p_marker", `${m.location}: ${m.meaning}`, m.declares_ai ? "ai" : "");
    const w = p.watermark || {};
    if (w.status === "checked") row("p_watermark", `${w.detected ? texts.watermark_found : texts.watermark_absent} (${fmt(100 * w.bit_agreement, 0)} %)`);
    if (p.declares_ai) row("p_declared", p.declares_ai.says, "declared");
  }

  // The image detector's answer and, when it ran, where it looked: its cells over the picture
  // itself when this page still holds the uploaded file.
  function showImage(r) {
    const im = r.image;
    $("image-part").hidden = !im;
    if (!im) return;
    const code = im.reason_code;
    $("image-reason").dataset.code = code;
    $("image-reason").textContent = code === "no_sign_found"
      ? fill(texts.image_no_sign_found, { n: im.generators_seen.length, families: im.generators_seen.join(", ") })
      : (texts[`image_${code}`] || im.reason);
    $("image-score").textContent = im.score == null ? ""
      : fill(texts.image_score, { score: fmt(im.score, 2), threshold: fmt(im.threshold, 2) });
    const svg = $("heatmap");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const map = im.heatmap;
    svg.hidden = !map;
    $("heatmap-caption").hidden = !map;
    if (!map) return;
    const W = r.media.width, H = r.media.height;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    if (picture) {
      const pic = document.createElementNS(ns, "image");
      pic.setAttribute("href", picture);
      pic.setAttribute("width", W);
      pic.setAttribute("height", H);
      svg.appendChild(pic);
    }
    // The network's own threshold (records before aqiqat.scan/6 had only the finding's).
    const t = map.threshold ?? im.threshold;
    map.logits.forEach((v, i) => {
      const cell = document.createElementNS(ns, "rect");
      const color = v > t ? "#c02828" : v > t - 1 ? "#d69614" : "#7a8ea3";
      cell.setAttribute("x", map.left + (i % map.cols) * map.cell);
      cell.setAttribute("y", map.top + Math.floor(i / map.cols) * map.cell);
      cell.setAttribute("width", map.cell);
      cell.setAttribute("height", map.cell);
      cell.setAttribute("fill", color);
      cell.setAttribute("fill-opacity", v > t - 1 ? "0.55" : "0.12");
      cell.dataset.logit = v;
      svg.appendChild(cell);
    });
  }

  function drawTimeline(r) {
    const svg = $("timeline");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const W = 600, H = 140, L = 30, B = 18, T = 6;
    const end = Math.max(1, r.media.duration_s, ...r.segments.map((s) => s.end_s));
    const x = (t) => L + ((W - L - 8) * t) / end;
    const y = (p) => T + (H - B - T) * (1 - p);
    const th = r.voice && r.voice.thresholds;
    const hop = r.segments.length > 1 ? r.segments[1].start_s - r.segments[0].start_s : r.segments.length ? r.segments[0].end_s - r.segments[0].start_s : 1;
    for (const s of r.segments) {
      const mid = (s.start_s + s.end_s) / 2;
      const rect = document.createElementNS(ns, "rect");
      const p = s.probability_synthetic;
      let color = p >= 0.5 ? "#c02828" : "#288c46";
      if (th) color = p >= th.synthetic_above ? "#c02828" : p < th.human_below ? "#288c46" : "#d69614";
      if (!s.counted) color = "#c8c8c8";
      rect.setAttribute("x", x(mid - hop / 2));
      rect.setAttribute("width", Math.max(1, x(mid + hop / 2) - x(mid - hop / 2) - 1));
      rect.setAttribute("y", y(p));
      rect.setAttribute("height", Math.max(1, y(0) - y(p)));
      rect.setAttribute("fill", color);
      svg.appendChild(rect);
    }
    const line = (x1, y1, x2, y2, stroke, dash) => {
      const l = document.createElementNS(ns, "line");
      Object.entries({ x1, y1, x2, y2, stroke }).forEach(([k, v]) => l.setAttribute(k, v));
      if (dash) l.setAttribute("stroke-dasharray", "4 3");
      svg.appendChild(l);
    };
    line(L, y(0), W - 8, y(0), "#444");
    line(L, T, L, y(0), "#444");
    if (th) { line(L, y(th.human_below), W - 8, y(th.human_below), "#288c46", true); line(L, y(th.synthetic_above), W - 8, y(th.synthetic_above), "#c02828", true); }
    const label = (tx, ty, s, anchor) => {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("font-size", "10");
      t.setAttribute("text-anchor", anchor); t.textContent = s; svg.appendChild(t);
    };
    for (const p of [0, 0.5, 1]) label(L - 4, y(p) + 3, p.toFixed(1), "end");
    const step = [1, 2, 5, 10, 30, 60, 300, 600].find((s) => end / s <= 8) || 1800;
    for (let t = 0; t <= end + 1e-9; t += step) label(x(t), H - 4, `${t}`, "middle");
  }

  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
  $("enrol").addEventListener("click", enrol);
  $("link-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("link").value.trim();
    if (url) scanLink(url);
  });
  $("again").addEventListener("click", () => { reset(); $("file").value = ""; $("link").value = ""; });
  document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => setLang(b.dataset.lang)));
  $("apikey").value = localStorage.getItem("aqiqat.key") || "";
  setLang(lang);
})();
