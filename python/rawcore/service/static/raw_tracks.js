// The Raw Tracks page: the recording's tracks from the JSON API, grouped by participant, with
// preview in place, download, and "Convert to MP4" polling its job until a link appears.
"use strict";

const app = document.getElementById("app");
const recordingId = app.dataset.recordingId;
const stateEl = document.getElementById("state");
const listEl = document.getElementById("participants");

function hms(ms) {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}

function humanBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function trackType(t) {
  if (t.kind === "video") return t.screenshare ? "Screen share (video)" : "Camera (video)";
  return t.screenshare ? "Screen share (audio)" : "Microphone (audio)";
}

async function api(path, options = {}) {
  const resp = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const detail = body && body.detail ? body.detail : `HTTP ${resp.status}`;
    const err = new Error(detail); err.status = resp.status; throw err;
  }
  return { status: resp.status, body };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function showState(text, error = false) {
  stateEl.textContent = text;
  stateEl.className = error ? "state error" : "state";
}

function mp4Link(cell, url) {
  cell.replaceChildren(el("a", { class: "button mp4", href: url, download: "",
                                 textContent: "Download MP4" }));
}

async function pollJob(jobId, cell, bar) {
  for (;;) {
    let job;
    try { job = (await api(`/v1/jobs/${encodeURIComponent(jobId)}`)).body; }
    catch (e) { return convError(cell, e.message); }
    if (job.state === "done") return mp4Link(cell, job.result.download_url);
    if (job.state === "failed") return convError(cell, job.error || "conversion failed");
    bar.style.width = `${Math.max(3, Math.round(job.progress * 100))}%`;
    bar.parentElement.title = `${job.state} ${Math.round(job.progress * 100)}%`;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function convError(cell, message) {
  const retry = el("button", { class: "convert", textContent: "Retry MP4" });
  cell.replaceChildren(retry, el("span", { class: "conv-error", textContent: message }));
  retry.addEventListener("click", () => startConvert(cell.dataset.trackId, cell));
}

async function startConvert(trackId, cell) {
  const bar = el("span");
  cell.replaceChildren(el("span", { class: "converting", textContent: "Converting…" }),
                       el("span", { class: "progress" }, bar));
  try {
    const { status, body } = await api(`/v1/tracks/${encodeURIComponent(trackId)}/conversions`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ mode: "editor" }),
    });
    if (status === 200 && body.state === "done") return mp4Link(cell, body.result.download_url);
    await pollJob(body.job_id, cell, bar);
  } catch (e) { convError(cell, e.message); }
}

function togglePreview(t, row, button) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("preview-row")) {
    next.remove(); button.textContent = "Preview"; return;
  }
  const media = el(t.kind === "video" ? "video" : "audio",
                   { class: "preview", controls: true, autoplay: true, preload: "auto" });
  media.src = t.preview_url;
  const cell = el("td", { colSpan: 6 }, media);
  row.after(el("tr", { class: "preview-row", "data-track-id": t.track_id }, cell));
  button.textContent = "Close";
}

function trackRow(t) {
  const convertCell = el("span", { class: "convert-cell", "data-track-id": t.track_id });
  const convert = el("button", { class: "convert", textContent: "Convert to MP4" });
  convert.addEventListener("click", () => startConvert(t.track_id, convertCell));
  convertCell.append(convert);
  const preview = el("button", { class: "preview-button", textContent: "Preview" });
  const row = el("tr", { class: "track", "data-track-id": t.track_id },
    el("td", { class: "type" }, trackType(t),
       ...(t.stitched ? [el("span", { class: "badge", textContent: "whole call" })] : [])),
    el("td", { class: "span" }, t.stitched ? "all sessions" : (t.session_id || "")),
    el("td", { class: "codec" }, t.codec.toUpperCase()),
    el("td", { class: "num duration" }, hms(t.duration_ms)),
    el("td", { class: "num size" }, humanBytes(t.bytes)),
    el("td", { class: "actions" }, preview,
       el("a", { class: "button download", href: t.download_url, download: t.file_name,
                 textContent: "Download" }), convertCell));
  preview.addEventListener("click", () => togglePreview(t, row, preview));
  return row;
}

function render(tracks) {
  const groups = new Map();
  for (const t of tracks) {
    if (!groups.has(t.participant_id)) groups.set(t.participant_id, []);
    groups.get(t.participant_id).push(t);
  }
  listEl.replaceChildren();
  for (const [pid, items] of groups) {
    const name = items[0].participant_name;
    const head = el("tr", {}, ...["Type", "Session", "Codec", "Duration", "Size", ""].map(
      (h) => el("th", { textContent: h })));
    const table = el("table", {}, el("thead", {}, head),
                     el("tbody", {}, ...items.map(trackRow)));
    listEl.append(el("section", { class: "participant", "data-participant-id": pid },
      el("h2", {}, el("span", { class: "name", textContent: name }), " ",
         el("span", { class: "pid", textContent: name === pid ? "" : pid })), table));
  }
}

async function load() {
  let data;
  try { data = (await api(`/v1/recordings/${encodeURIComponent(recordingId)}/tracks`)).body; }
  catch (e) {
    if (e.status === 401) { location.reload(); return; }
    showState(e.status === 404 ? "No such recording." : `Could not load the tracks: ${e.message}`,
              true);
    return;
  }
  if (data.state === "queued" || data.state === "running") {
    showState("This recording is still being processed; the tracks appear when it is done…");
    setTimeout(load, 1000);
    return;
  }
  if (data.state === "failed") {
    let why = "";
    try { why = (await api(`/v1/recordings/${encodeURIComponent(recordingId)}`)).body.error; }
    catch (e) { why = e.message; }
    showState(`Processing this recording failed: ${why || "unknown error"}`, true);
    return;
  }
  if (!data.tracks.length) { showState("This recording has no tracks."); return; }
  showState("");
  render(data.tracks);
}

load();
