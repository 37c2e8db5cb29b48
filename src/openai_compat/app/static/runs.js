// The Runs tab of a saved connector: rows in (a file or a query), the mapping, the outputs,
// then the run: its progress from the events stream, a chart, its results, and past runs.
// Plain JavaScript like app.js; every request goes to the application, with the token.
(function () {
  "use strict";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const RESULTS_PAGE = 50;
  const SAMPLE_ROWS = 5;
  const TYPES = [["string", "text"], ["number", "number"], ["boolean", "boolean"], ["", "as is"]];
  // The mapping package's placeholder syntax (mapping/_payload.py); the server's preview
  // answer then gives the exact list.
  const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

  let s = null; // this connector's Runs state; replaced on each setup()

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "className") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function api(...args) { return window.openaiCompat.api(...args); }

  function problemLines(err) {
    const b = (err && err.body) || {};
    const list = (b.errors || []).map((e) => e.field + ": " + e.message);
    return list.length ? list : [err && err.message ? err.message : String(err)];
  }

  function showError(box, lines) {
    box.textContent = Array.isArray(lines) ? lines.join("\n") : lines;
    box.hidden = !box.textContent;
  }

  function parseJson(text, fallback) {
    try { return typeof text === "string" ? JSON.parse(text) : (text || fallback); } catch (e) { return fallback; }
  }

  function cellText(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function fmt(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits ?? 0 });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
    const t = Math.max(0, Math.round(seconds));
    if (t < 60) return t + " s";
    if (t < 3600) return Math.floor(t / 60) + " min " + (t % 60) + " s";
    return Math.floor(t / 3600) + " h " + Math.floor((t % 3600) / 60) + " min";
  }

  // Every leaf of a JSON sample, as dotted paths (list items by index), with its value.
  function leaves(node, prefix, out) {
    out = out || [];
    if (node && typeof node === "object") {
      const entries = Array.isArray(node) ? node.map((v, i) => [String(i), v]) : Object.entries(node);
      if (!entries.length && prefix) out.push([prefix, node]);
      for (const [k, v] of entries) leaves(v, prefix ? prefix + "." + k : k, out);
    } else if (prefix) {
      out.push([prefix, node]);
    }
    return out;
  }

  function placeholdersIn(node) {
    const found = [];
    for (const [, value] of leaves(node, "")) {
      if (typeof value !== "string") continue;
      for (const m of value.matchAll(PLACEHOLDER)) if (m[1] && !found.includes(m[1])) found.push(m[1]);
    }
    return found;
  }

  // ---- setup -----------------------------------------------------------------------------

  function setup(connector, container) {
    if (s) stopStream();
    s = null;
    if (!connector || !container) return;
    container.textContent = "";
    container.append($("#runs-template").content.cloneNode(true));
    const conf = connector.configuration || {};
    s = {
      connector,
      root: container,
      requestFormat: parseJson(conf.request_format, {}),
      responseFormat: parseJson(conf.response_format, {}),
      source: "file",
      upload: null,
      columns: [],
      sample: [],
      query: null,
      placeholders: [],
      choice: {}, // placeholder -> column
      run: null,
      stream: null,
      points: [],
      resultsCursor: null,
      previewTimer: null,
      previewSeq: 0,
    };
    s.placeholders = placeholdersIn(s.requestFormat);
    wireInput();
    wireMapping();
    wireOutputs();
    wireRun();
    renderPlaceholders();
    renderKeyPicker();
    schedulePreview();
  }

  function shown() {
    if (s) refreshHistory();
  }

  // ---- 1. rows: a file or a query --------------------------------------------------------

  function wireInput() {
    const drop = $("#run-drop", s.root);
    const file = $("#run-file", s.root);
    drop.addEventListener("click", (e) => { if (e.target !== file) file.click(); });
    drop.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); file.click(); }
    });
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
    });
    file.addEventListener("change", () => {
      if (file.files.length) upload(file.files[0]);
      file.value = ""; // choosing the same file again uploads it again
    });
    $("#run-src-file", s.root).addEventListener("click", () => setSource("file"));
    $("#run-src-db", s.root).addEventListener("click", () => setSource("database"));
    $("#run-db-look", s.root).addEventListener("click", lookAtQuery);
    offerInputFormats(file);
  }

  // The picker offers what the server reads, from the server's one table of input formats.
  async function offerInputFormats(file) {
    try {
      const formats = await api("GET", "/api/v1/input_formats");
      if (formats && formats.accept) file.accept = formats.accept;
    } catch (err) {
      // The page's own list stays; an upload the server cannot read is refused with why.
    }
  }

  function setSource(source) {
    s.source = source;
    for (const [id, name] of [["#run-src-file", "file"], ["#run-src-db", "database"]]) {
      const b = $(id, s.root);
      b.classList.toggle("active", source === name);
      b.setAttribute("aria-pressed", String(source === name));
    }
    $("#run-file-box", s.root).hidden = source !== "file";
    $("#run-db-box", s.root).hidden = source !== "database";
    if (source === "file") {
      const u = s.upload;
      setColumns(u ? u.columns : [], u ? u.sample : []);
    } else {
      const q = s.query;
      setColumns(q ? q.columns : [], q ? q.sample : []);
      renderKeyPicker();
    }
  }

  async function upload(file) {
    const status = $("#run-upload-status", s.root);
    const errorBox = $("#run-input-error", s.root);
    const mine = s;
    showError(errorBox, "");
    status.textContent = "Uploading " + file.name + " (" + fmt(file.size / 1024, 1) + " KB)…";
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const response = await fetch("/api/v1/uploads", {
        method: "POST", body: form, headers: { Authorization: window.openaiCompat.tokenHeader() },
      });
      const body = await response.json().catch(() => null);
      if (mine !== s) return;
      if (response.status === 401) { window.openaiCompat.signOut("Your session is not valid any more: sign in again."); return; }
      if (!response.ok) {
        status.textContent = "";
        showError(errorBox, "✗ " + problemLines(new window.openaiCompat.ApiError(response.status, body)).join("\n"));
        return;
      }
      s.upload = body;
      setColumns(body.columns || [], body.sample || []);
      const rows = body.rows_estimate;
      status.textContent = "✓ " + body.filename + " · " + (body.format || "").toUpperCase() +
        (rows !== undefined && rows !== null ? " · about " + fmt(rows) + " rows" : "") +
        " · " + body.columns.length + " columns";
    } catch (err) {
      if (mine !== s) return;
      status.textContent = "";
      showError(errorBox, "✗ The upload failed: " + (err.message || err));
    }
  }

  function readQuery() {
    const database = $("#run-db-url", s.root).value.trim();
    const query = $("#run-db-query", s.root).value.trim();
    if (!database || !query) return { error: "Give the database URL and the query." };
    const body = { database, query };
    const raw = $("#run-db-params", s.root).value.trim();
    if (raw) {
      const params = parseJson(raw, null);
      if (!params || typeof params !== "object" || Array.isArray(params)) {
        return { error: 'The parameters must be a JSON object such as {"day": "2026-12-01"}.' };
      }
      body.params = params;
    }
    return { body };
  }

  // The query's columns and first rows, from the server (nothing is run through the model).
  async function lookAtQuery() {
    const status = $("#run-db-status", s.root);
    const errorBox = $("#run-input-error", s.root);
    const button = $("#run-db-look", s.root);
    const mine = s;
    showError(errorBox, "");
    const { body, error } = readQuery();
    if (error) { showError(errorBox, "✗ " + error); return; }
    button.disabled = true;
    status.textContent = "Reading the first rows…";
    try {
      const answer = await api("POST", "/api/v1/queries", body);
      if (mine !== s) return;
      s.query = answer;
      setColumns(answer.columns || [], answer.sample || []);
      const rows = answer.rows_estimate;
      status.textContent = "✓ " + (answer.columns || []).length + " columns" +
        (rows !== undefined && rows !== null ? " · about " + fmt(rows) + " rows" : "");
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      status.textContent = "";
      showError(errorBox, "✗ " + problemLines(err).join("\n"));
    } finally {
      button.disabled = false;
    }
  }

  function setColumns(columns, sample) {
    s.columns = columns.map(String);
    s.sample = sample || [];
    for (const p of s.placeholders) {
      if (!s.choice[p] || !s.columns.includes(s.choice[p])) s.choice[p] = s.columns.includes(p) ? p : "";
    }
    renderSample();
    renderPlaceholders();
    renderKeyPicker();
    for (const row of s.root.querySelectorAll("#run-mapping tbody tr")) refreshValueCell(row);
    schedulePreview();
  }

  function renderSample() {
    const box = $("#run-sample-box", s.root);
    const table = $("#run-sample", s.root);
    table.textContent = "";
    box.hidden = !s.columns.length;
    if (!s.columns.length) return;
    const rows = s.sample.slice(0, SAMPLE_ROWS);
    $("#run-sample-caption", s.root).textContent = rows.length
      ? "Its columns and first " + rows.length + " row(s):"
      : "Its columns:";
    table.append(el("thead", {}, el("tr", {}, ...s.columns.map((c) => el("th", { scope: "col", text: c })))));
    const body = el("tbody");
    for (const r of rows) body.append(el("tr", {}, ...s.columns.map((c) => el("td", { text: cellText(r[c]) }))));
    table.append(body);
  }

  // ---- 2. mapping ------------------------------------------------------------------------

  function wireMapping() {
    const list = $("#run-request-paths", s.root);
    for (const [path] of leaves(s.requestFormat, "")) list.append(el("option", { value: path }));
    for (const extra of ["max_tokens", "temperature", "top_p", "user"]) list.append(el("option", { value: extra }));
    $("#run-add-mapping", s.root).addEventListener("click", () => {
      addMappingRow({ name: "", value: "", value_type: "dynamic", type: "string" });
      const rows = s.root.querySelectorAll("#run-mapping tbody tr");
      $("input", rows[rows.length - 1]).focus();
    });
  }

  function columnSelect(id, value, allowNone, noneText) {
    const select = el("select", { id });
    if (allowNone) select.append(el("option", { value: "", text: noneText }));
    const names = [...s.columns];
    if (value && !names.includes(value)) names.push(value);
    for (const c of names) select.append(el("option", { value: c, text: c }));
    select.value = value || "";
    return select;
  }

  function renderPlaceholders() {
    const box = $("#run-placeholders", s.root);
    box.textContent = "";
    if (!s.placeholders.length) {
      box.append(el("p", { className: "muted small", text: "The request format has no {{column}} placeholder: map columns with the rows below." }));
      return;
    }
    s.placeholders.forEach((p, i) => {
      const id = "run-ph-" + i;
      const select = columnSelect(id, s.choice[p], true, "— choose a column —");
      select.dataset.placeholder = p;
      const row = el("div", { className: "placeholder-row" });
      const mark = () => row.classList.toggle("invalid", !s.choice[p] && s.columns.length > 0);
      select.addEventListener("change", () => { s.choice[p] = select.value; mark(); schedulePreview(); });
      mark();
      row.append(el("label", { for: id }, el("code", { text: "{{" + p + "}}" })),
        el("span", { className: "muted", "aria-hidden": "true", text: "←" }),
        select);
      box.append(row);
    });
  }

  function addMappingRow(item) {
    const body = $("#run-mapping tbody", s.root);
    const n = body.children.length;
    const tr = el("tr");
    const name = el("input", { type: "text", list: "run-request-paths", value: item.name || "",
      placeholder: "messages.0.content", "aria-label": "Field of the request, row " + (n + 1) });
    const source = el("select", { "aria-label": "Source, row " + (n + 1) },
      el("option", { value: "dynamic", text: "column" }), el("option", { value: "static", text: "fixed value" }));
    source.value = item.value_type === "static" ? "static" : "dynamic";
    const type = el("select", { "aria-label": "Type, row " + (n + 1) },
      ...TYPES.map(([v, t]) => el("option", { value: v, text: t })));
    type.value = item.type || "";
    const remove = el("button", { type: "button", className: "link-btn remove-btn", text: "✕",
      "aria-label": "Remove mapping row " + (n + 1) });
    tr.append(el("td", {}, name), el("td", { className: "value-cell" }), el("td", {}, source), el("td", {}, type), el("td", {}, remove));
    tr.dataset.value = item.value === undefined || item.value === null ? "" : String(item.value);
    body.append(tr);
    refreshValueCell(tr);
    name.addEventListener("input", schedulePreview);
    type.addEventListener("change", schedulePreview);
    source.addEventListener("change", () => { refreshValueCell(tr); schedulePreview(); });
    remove.addEventListener("click", () => { tr.remove(); schedulePreview(); });
  }

  function refreshValueCell(tr) {
    const cell = $(".value-cell", tr);
    const current = $("input, select", cell);
    if (current) tr.dataset.value = current.value;
    cell.textContent = "";
    const index = [...tr.parentNode.children].indexOf(tr) + 1;
    const dynamic = $("td:nth-child(3) select", tr).value === "dynamic";
    let control;
    if (dynamic && s.columns.length) {
      control = columnSelect(undefined, tr.dataset.value, true, "— choose a column —");
      control.setAttribute("aria-label", "Column, row " + index);
    } else {
      control = el("input", { type: "text", value: tr.dataset.value,
        placeholder: dynamic ? "column name" : "value", "aria-label": (dynamic ? "Column" : "Value") + ", row " + index });
    }
    control.addEventListener(control.tagName === "SELECT" ? "change" : "input", () => {
      tr.dataset.value = control.value;
      schedulePreview();
    });
    cell.append(control);
  }

  function readMapping() {
    const items = [];
    for (const tr of s.root.querySelectorAll("#run-mapping tbody tr")) {
      const name = $("td:nth-child(1) input", tr).value.trim();
      if (!name) continue;
      const item = {
        name,
        value: $(".value-cell input, .value-cell select", tr).value,
        value_type: $("td:nth-child(3) select", tr).value,
      };
      const type = $("td:nth-child(4) select", tr).value;
      if (type) item.type = type;
      items.push(item);
    }
    return items;
  }

  function readPlaceholderChoice() {
    const out = {};
    for (const p of s.placeholders) if (s.choice[p] && s.choice[p] !== p) out[p] = s.choice[p];
    return out;
  }

  function previewRow() {
    if (s.sample.length) return s.sample[0];
    // No rows to look at yet: each column (or placeholder) shows its name.
    const row = {};
    for (const c of s.columns) row[c] = "‹" + c + "›";
    for (const p of s.placeholders) if (!s.columns.length) row[p] = "‹" + p + "›";
    return row;
  }

  function schedulePreview() {
    clearTimeout(s.previewTimer);
    s.previewTimer = setTimeout(preview, 150);
  }

  async function preview() {
    const mine = s;
    const seq = ++s.previewSeq;
    const out = $("#run-preview", s.root);
    const box = $("#run-preview-error", s.root);
    for (const tr of s.root.querySelectorAll("#run-mapping tbody tr.invalid")) tr.classList.remove("invalid");
    try {
      const answer = await api("POST", "/api/v1/connectors/" + s.connector.id + "/mapping_preview", {
        mapping: readMapping(), row: previewRow(), placeholders: readPlaceholderChoice(),
      });
      if (mine !== s || seq !== s.previewSeq) return;
      usePlaceholders(answer.placeholders);
      out.textContent = JSON.stringify(answer.payload, null, 2);
      out.classList.remove("stale");
      showError(box, "");
    } catch (err) {
      if (mine !== s || seq !== s.previewSeq || err.status === 401) return;
      usePlaceholders((err.body || {}).placeholders);
      out.classList.add("stale");
      markMappingErrors(err);
      showError(box, "✗ " + (err.status === 422 ? "This row cannot be mapped:\n" : "") + problemLines(err).join("\n"));
    }
  }

  // The server's list of placeholders is the exact one (the page's is a first guess).
  function usePlaceholders(list) {
    if (!Array.isArray(list) || list.join("\u0000") === s.placeholders.join("\u0000")) return;
    s.placeholders = list;
    for (const p of list) if (s.choice[p] === undefined) s.choice[p] = s.columns.includes(p) ? p : "";
    renderPlaceholders();
  }

  function markMappingErrors(err) {
    const rows = s.root.querySelectorAll("#run-mapping tbody tr");
    const named = [...rows].filter((tr) => $("td:nth-child(1) input", tr).value.trim());
    for (const e of ((err.body || {}).errors || [])) {
      const m = /^mapping\[(\d+)\]/.exec(e.field);
      if (m && named[Number(m[1])]) named[Number(m[1])].classList.add("invalid");
    }
  }

  // ---- 3. outputs ------------------------------------------------------------------------

  function wireOutputs() {
    const all = leaves(s.responseFormat, "");
    const texts = all.filter(([, v]) => typeof v === "string").map(([p]) => p);
    // The answer's text is the usual pick; without one, every text leaf (the server's default).
    const content = texts.filter((p) => /(^|\.)content$/.test(p));
    const picked = new Set(content.length ? content : texts);
    for (const [path] of all) addOutputRow(path, picked.has(path));
    $("#run-add-output", s.root).addEventListener("click", addCustomOutput);
    $("#run-custom-path", s.root).addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); addCustomOutput(); }
    });
  }

  function addCustomOutput() {
    const input = $("#run-custom-path", s.root);
    const path = input.value.trim();
    if (!path) return;
    const known = [...s.root.querySelectorAll("#run-outputs tbody tr")].find((tr) => tr.dataset.path === path);
    if (known) $("input", known).checked = true;
    else addOutputRow(path, true);
    input.value = "";
  }

  function addOutputRow(path, checked) {
    const body = $("#run-outputs tbody", s.root);
    const keep = el("input", { type: "checkbox", "aria-label": "Keep " + path });
    keep.checked = checked;
    const name = el("input", { type: "text", value: path, "aria-label": "Output name for " + path });
    const parse = el("input", { type: "checkbox", "aria-label": "Parse " + path + " as JSON" });
    const fields = el("input", { type: "text", placeholder: "label, score", disabled: true,
      "aria-label": "Fields of the parsed JSON of " + path });
    parse.addEventListener("change", () => { fields.disabled = !parse.checked; });
    const tr = el("tr", {}, el("td", {}, keep), el("td", {}, el("code", { text: path })),
      el("td", {}, name), el("td", {}, parse), el("td", {}, fields));
    tr.dataset.path = path;
    body.append(tr);
  }

  function readOutputs() {
    const out = [];
    for (const tr of s.root.querySelectorAll("#run-outputs tbody tr")) {
      const [keep, name, parse, fields] = tr.querySelectorAll("input");
      if (!keep.checked) continue;
      const item = { name: tr.dataset.path };
      const as = name.value.trim();
      if (as && as !== tr.dataset.path) item.as = as;
      if (parse.checked) {
        item.parse = "json";
        const keys = fields.value.split(",").map((f) => f.trim()).filter(Boolean);
        if (keys.length) { item.fields = keys; if (!as || as === tr.dataset.path) item.as = tr.dataset.path; }
      }
      out.push(item);
    }
    return out;
  }

  // ---- 4. start --------------------------------------------------------------------------

  function renderKeyPicker() {
    const select = $("#run-key", s.root);
    const before = select.value;
    select.textContent = "";
    // A query's rows need a key column (they may come in another order when a run continues).
    select.append(el("option", { value: "", text: s.source === "database" ? "— choose a column —" : "(the row number)" }));
    for (const c of s.columns) select.append(el("option", { value: c, text: c }));
    select.value = s.columns.includes(before) ? before : (s.columns.includes("id") ? "id" : "");
  }

  function runBody() {
    const body = { mapping: readMapping(), outputs: readOutputs() };
    if (s.source === "file") {
      if (!s.upload) return { error: "Drop a file of rows first (or choose Database query)." };
      body.input = { upload_id: s.upload.id };
    } else {
      const { body: input, error } = readQuery();
      if (error) return { error };
      body.input = input;
    }
    const placeholders = readPlaceholderChoice();
    if (Object.keys(placeholders).length) body.placeholders = placeholders;
    const key = $("#run-key", s.root).value;
    if (key) body.key = key;
    const concurrency = $("#run-concurrency", s.root).value.trim();
    if (concurrency) body.concurrency = Number(concurrency);
    const rate = $("#run-rate", s.root).value.trim();
    if (rate) body.rate = rate;
    const cost = $("#run-max-cost", s.root).value.trim();
    if (cost) body.max_cost = Number(cost);
    const prices = $("#run-prices", s.root).value.trim();
    if (prices) body.prices = prices;
    const schema = $("#run-schema", s.root).value.trim();
    if (schema) {
      try { body.schema = JSON.parse(schema); } catch (e) { return { error: "The JSON Schema is not JSON: " + e.message }; }
      // The schema's properties are the columns (the box lists them), not the output fields.
      delete body.outputs;
    }
    return { body };
  }

  // The columns a schema will produce: its top-level properties (their types are the
  // server's to derive, and a wrong schema is refused with its problem when the run starts).
  function showSchemaColumns() {
    const text = $("#run-schema", s.root).value.trim();
    const out = $("#run-schema-columns", s.root);
    if (!text) { out.textContent = ""; return; }
    let parsed = null;
    try { parsed = JSON.parse(text); } catch (e) { out.textContent = "Not JSON yet."; return; }
    const inner = parsed && parsed.schema && !parsed.type ? parsed.schema : parsed;
    const props = inner && typeof inner.properties === "object" && inner.properties ? Object.keys(inner.properties) : [];
    out.textContent = props.length ? "Columns: " + props.join(", ") : "No top-level properties: the schema gives no columns.";
  }

  function wireRun() {
    $("#run-start", s.root).addEventListener("click", startRun);
    // A refusal is about what was sent: it goes once the settings change.
    $("#run-schema", s.root).addEventListener("input", showSchemaColumns);
    for (const id of ["#run-key", "#run-concurrency", "#run-rate", "#run-max-cost", "#run-prices", "#run-schema"]) {
      $(id, s.root).addEventListener("input", () => showError($("#run-start-error", s.root), ""));
    }
    $("#run-cancel", s.root).addEventListener("click", () => runAction("cancel"));
    $("#run-resume", s.root).addEventListener("click", () => runAction("resume"));
    $("#run-retry", s.root).addEventListener("click", () => runAction("retry_failed"));
    $("#run-dl-jsonl", s.root).addEventListener("click", () => download("jsonl"));
    $("#run-dl-csv", s.root).addEventListener("click", () => download("csv"));
    $("#run-only-failed", s.root).addEventListener("change", () => { s.resultsPaged = false; loadResults(true); });
    $("#run-results-more", s.root).addEventListener("click", () => { s.resultsPaged = true; loadResults(false); });
    $("#run-history-refresh", s.root).addEventListener("click", refreshHistory);
    $("#batch-history-refresh", s.root).addEventListener("click", refreshBatches);
    $("#run-delete", s.root).addEventListener("click", deleteRun);
  }

  async function startRun() {
    const box = $("#run-start-error", s.root);
    const status = $("#run-start-status", s.root);
    const button = $("#run-start", s.root);
    const mine = s;
    showError(box, "");
    const { body, error } = runBody();
    if (error) { showError(box, "✗ " + error); return; }
    button.disabled = true;
    status.textContent = "Starting…";
    try {
      const run = await api("POST", "/api/v1/connectors/" + s.connector.id + "/runs", body);
      if (mine !== s) return;
      status.textContent = "";
      openRun(run);
      refreshHistory();
      const title = $("#run-view-title", s.root);
      title.scrollIntoView({ block: "start" });
      title.focus({ preventScroll: true });
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      status.textContent = "";
      markMappingErrors(err);
      showError(box, "✗ The run was not started:\n" + problemLines(err).join("\n"));
    } finally {
      button.disabled = false;
    }
  }

  async function runAction(action) {
    if (!s.run) return;
    const mine = s;
    const box = $("#run-error", s.root);
    if (action === "cancel" && !confirm("Cancel run " + s.run.id + "? The rows done so far are kept.")) return;
    try {
      const run = await api("POST", "/api/v1/runs/" + s.run.id + "/" + action);
      if (mine !== s) return;
      openRun(run || await api("GET", "/api/v1/runs/" + s.run.id), action !== "cancel");
      refreshHistory();
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      showError(box, "✗ " + problemLines(err).join("\n"));
    }
  }

  async function deleteRun() {
    if (!s.run || !confirm("Delete run " + s.run.id + " and its results?")) return;
    const mine = s;
    const input = s.run.input || {};
    try {
      await api("DELETE", "/api/v1/runs/" + s.run.id);
      if (mine !== s) return;
      stopStream();
      s.run = null;
      $("#run-view", s.root).hidden = true;
      refreshHistory();
      if (s.upload && input.upload_id === s.upload.id) await forgetGoneUpload(mine);
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      showError($("#run-error", s.root), "✗ " + problemLines(err).join("\n"));
    }
  }

  // An upload goes with its last run: once it is gone the form asks for the file again.
  async function forgetGoneUpload(mine) {
    try {
      await api("GET", "/api/v1/uploads/" + s.upload.id);
    } catch (err) {
      if (mine !== s || err.status !== 404) return;
      s.upload = null;
      $("#run-upload-status", s.root).textContent = "The file was deleted with its last run: upload it again to run it.";
      if (s.source === "file") setColumns([], []);
    }
  }

  // ---- the run: progress, chart, results -------------------------------------------------

  function openRun(run, keepPoints) {
    stopStream();
    const sameRun = s.run && s.run.id === run.id;
    s.run = run;
    if (!(keepPoints && sameRun)) s.points = [];
    s.resultsPaged = false;
    $("#run-view", s.root).hidden = false;
    showError($("#run-error", s.root), "");
    renderRun(run);
    drawCharts();
    loadResults(true);
    if (!TERMINAL.has(run.status)) followEvents(run.id);
  }

  function renderRun(run) {
    const total = run.total;
    const done = run.done || 0;
    $("#run-view-title", s.root).textContent = "Run " + run.id;
    const pill = $("#run-status", s.root);
    pill.textContent = run.status;
    pill.className = "status-pill status-" + run.status;
    const bar = $("#run-progress", s.root);
    const known = typeof total === "number" && total > 0;
    if (known) {
      bar.max = total;
      bar.value = Math.min(done, total);
    } else if (TERMINAL.has(run.status)) {
      bar.max = 1;
      bar.value = 1;
    } else {
      bar.removeAttribute("value"); // indeterminate until the total is known
    }
    const pct = known ? Math.floor((100 * Math.min(done, total)) / total) : (TERMINAL.has(run.status) ? 100 : null);
    $("#run-progress-label", s.root).textContent =
      (pct === null ? "" : pct + "% · ") + fmt(done) + (known ? " of " + fmt(total) : "") + " rows";
    const running = run.status === "queued" || run.status === "running";
    const figures = [
      ["Rows", fmt(done) + (known ? " / " + fmt(total) : "")],
      ["OK", fmt(run.ok)],
      ["Failed", fmt(run.failed)],
      ["Requests/s", fmt(running && typeof liveOf(run).requests_per_s === "number" ? liveOf(run).requests_per_s : run.rows_per_s, 1)],
      ["Tokens", fmt(run.tokens)],
      ["ETA", TERMINAL.has(run.status) ? "–" : duration(run.eta_s)],
    ];
    if (run.skipped) figures.splice(3, 0, ["Skipped", fmt(run.skipped)]);
    if (run.cost !== null && run.cost !== undefined) figures.push(["Cost", fmt(run.cost, 4)]);
    if (run.structured) {
      const counts = run.structured;
      figures.push(["Schema mode", counts.mode || "auto"], ["Valid first", fmt(counts.valid_first)],
        ["Valid after re-asks", fmt(counts.valid_after_reasks)], ["Invalid", fmt(counts.invalid)]);
    }
    const dl = $("#run-figures", s.root);
    dl.textContent = "";
    for (const [k, v] of figures) {
      const bad = (k === "Failed" && run.failed) || (k === "Invalid" && run.structured.invalid);
      dl.append(el("div", { className: "figure" + (bad ? " bad" : "") },
        el("dt", { text: k }), el("dd", { text: v })));
    }
    if (run.error) showError($("#run-error", s.root), "✗ " + (typeof run.error === "string" ? run.error : (run.error.message || JSON.stringify(run.error))));
    $("#run-cancel", s.root).hidden = !running;
    $("#run-delete", s.root).hidden = running;
    $("#run-resume", s.root).hidden = running || run.status === "succeeded";
    $("#run-retry", s.root).hidden = running || !run.failed;
    $("#run-dl-jsonl", s.root).disabled = !done;
    $("#run-dl-csv", s.root).disabled = !done;
  }

  function stopStream() {
    if (s && s.stream) { s.stream.abort(); s.stream = null; }
  }

  // The run's progress events: a fetch-read stream (EventSource cannot send the token).
  async function followEvents(id) {
    const mine = s;
    const controller = new AbortController();
    s.stream = controller;
    let lastResults = 0;
    try {
      const response = await fetch("/api/v1/runs/" + id + "/events", {
        signal: controller.signal,
        headers: { Authorization: window.openaiCompat.tokenHeader(), Accept: "text/event-stream" },
      });
      if (!response.ok) throw new Error("the events stream answered HTTP " + response.status);
      await readEvents(response, (name, data) => {
        if (mine !== s || !s.run || s.run.id !== id) return;
        const run = runOf(data);
        if (run) {
          s.run = Object.assign({}, s.run, run);
          addPoint(s.run);
          renderRun(s.run);
          drawCharts();
          // The table follows the run, at most every 0.7 s (at once for the first results).
          const first = !s.shownResults && s.run.done > 0;
          // Not once the user has paged further: the refresh would take the page away.
          if (!s.resultsPaged && (first || Date.now() - lastResults > 700)) { lastResults = Date.now(); loadResults(true); }
        }
        if (name === "error" && data && data.message) showError($("#run-error", s.root), "✗ " + data.message);
      });
      if (mine !== s) return;
      // The stream ended: the final state, once more from the run itself.
      const final = await api("GET", "/api/v1/runs/" + id);
      if (mine !== s || !s.run || s.run.id !== id) return;
      s.run = final;
      renderRun(final);
      drawCharts();
      loadResults(true);
      refreshHistory();
      if (!TERMINAL.has(final.status)) setTimeout(() => { if (mine === s && s.run && s.run.id === id) followEvents(id); }, 1000);
    } catch (err) {
      if (err.name === "AbortError" || mine !== s) return;
      showError($("#run-error", s.root), "✗ Lost the run's progress stream: " + (err.message || err) + ". Open the run again from Past runs.");
    } finally {
      if (mine === s && s.stream === controller) s.stream = null;
    }
  }

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        let parsed;
        try { parsed = JSON.parse(data.join("\n")); } catch (e) { continue; }
        onEvent(name, parsed);
      }
    }
  }

  // An event's run figures: the run itself, or under "run".
  function runOf(data) {
    if (!data || typeof data !== "object") return null;
    if (data.run && typeof data.run === "object") return data.run;
    return "status" in data || "done" in data ? data : null;
  }

  // The run's live figures (over its last seconds): rows/s, requests/s, latency percentiles.
  function liveOf(run) {
    return (run && run.live && typeof run.live === "object") ? run.live : {};
  }

  function latencyOf(run) {
    const l = liveOf(run).latency_ms || null;
    if (!l || typeof l !== "object") return null;
    const pick = (k) => { const v = l[k] ?? l[k + "_ms"]; return typeof v === "number" ? v : null; };
    return { p50: pick("p50"), p90: pick("p90"), p99: pick("p99") };
  }

  function addPoint(run) {
    const now = performance.now() / 1000;
    const last = s.points[s.points.length - 1];
    const done = run.done || 0;
    let rps = null;
    if (last && now - last.wall > 0.05) rps = Math.max(0, (done - last.done) / (now - last.wall));
    else if (last) return; // events closer than 50 ms apart: keep the chart readable
    const live = liveOf(run);
    const windowed = typeof live.rows_per_s === "number" ? live.rows_per_s : null;
    const point = { wall: now, t: s.points.length ? now - s.points[0].wall : 0, done, rps: windowed ?? rps ?? run.rows_per_s ?? null };
    const lat = latencyOf(run);
    if (lat) Object.assign(point, lat);
    s.points.push(point);
    if (s.points.length > 600) s.points.splice(1, s.points.length - 600); // bounded, keeps t=0
  }

  function drawCharts() {
    const pts = s.points;
    drawChart($("#run-chart-rate", s.root), pts, [["rps", "series-rate"]], "rows/s");
    drawChart($("#run-chart-latency", s.root), pts, [["p50", "series-p50"], ["p90", "series-p90"], ["p99", "series-p99"]], "ms");
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A small line chart: time along x, one polyline per series, the top value labelled.
  function drawChart(target, pts, series, unit) {
    const W = 360, H = 140, L = 44, R = 8, T = 10, B = 22;
    target.textContent = "";
    const values = [];
    for (const p of pts) for (const [k] of series) if (typeof p[k] === "number") values.push(p[k]);
    const tmax = Math.max(1, ...pts.map((p) => p.t));
    const vmax = niceMax(values.length ? Math.max(...values) : 0);
    const x = (t) => L + ((W - L - R) * t) / tmax;
    const y = (v) => T + (H - T - B) * (1 - v / vmax);
    for (const frac of [0, 0.5, 1]) {
      target.append(svg("line", { x1: L, x2: W - R, y1: y(vmax * frac), y2: y(vmax * frac), class: "grid" }));
      target.append(svg("text", { x: L - 6, y: y(vmax * frac) + 4, class: "axis", "text-anchor": "end" }, fmt(vmax * frac, vmax < 10 ? 1 : 0)));
    }
    target.append(svg("text", { x: L, y: H - 6, class: "axis" }, "0 s"));
    target.append(svg("text", { x: W - R, y: H - 6, class: "axis", "text-anchor": "end" }, duration(tmax)));
    if (!values.length) {
      target.append(svg("text", { x: (L + W) / 2, y: H / 2, class: "axis", "text-anchor": "middle" },
        pts.length ? "no figures in the events yet" : "shown while the run goes"));
    }
    const summary = [];
    for (const [k, cls] of series) {
      const line = pts.filter((p) => typeof p[k] === "number");
      if (!line.length) continue;
      target.append(svg("polyline", { class: "series " + cls, points: line.map((p) => x(p.t).toFixed(1) + "," + y(p[k]).toFixed(1)).join(" ") }));
      // A short run has few points: each is marked, so that one alone still shows.
      if (line.length <= 40) for (const p of line) target.append(svg("circle", { class: "dot " + cls, cx: x(p.t).toFixed(1), cy: y(p[k]).toFixed(1), r: 2.5 }));
      summary.push((k === "rps" ? "" : k + " ") + fmt(line[line.length - 1][k], 1) + " " + unit);
    }
    const label = target.getAttribute("aria-label").split(":")[0];
    target.setAttribute("aria-label", label + (summary.length ? ": latest " + summary.join(", ") : ""));
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  async function loadResults(reset) {
    if (!s.run) return;
    const mine = s;
    const id = s.run.id;
    const onlyFailed = $("#run-only-failed", s.root).checked;
    let path = "/api/v1/runs/" + id + "/results?limit=" + RESULTS_PAGE + (onlyFailed ? "&failed=true" : "");
    if (!reset && s.resultsCursor) path += "&cursor=" + encodeURIComponent(s.resultsCursor);
    try {
      const page = await api("GET", path);
      if (mine !== s || !s.run || s.run.id !== id) return;
      if (onlyFailed !== $("#run-only-failed", s.root).checked) return;
      s.resultsCursor = page.next_cursor || null;
      renderResults(page.data || [], reset);
      $("#run-results-more", s.root).hidden = !s.resultsCursor;
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      showError($("#run-error", s.root), "✗ The results could not be read: " + problemLines(err).join("\n"));
    }
  }

  function renderResults(lines, reset) {
    const table = $("#run-results", s.root);
    if (reset) {
      table.textContent = "";
      s.resultColumns = null;
    }
    const empty = $("#run-results-empty", s.root);
    s.shownResults = (reset ? 0 : s.shownResults || 0) + lines.length;
    if (reset && !lines.length) {
      empty.textContent = $("#run-only-failed", s.root).checked ? "No failed row." : "No result yet.";
      empty.hidden = false;
      return;
    }
    empty.hidden = true;
    if (!s.resultColumns) {
      const outputs = [];
      for (const line of lines) for (const k of Object.keys(line.output || {})) if (!outputs.includes(k)) outputs.push(k);
      s.resultColumns = outputs;
      table.append(el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "Key" }), el("th", { scope: "col", text: "Result" }),
        ...outputs.map((o) => el("th", { scope: "col", text: o })),
        el("th", { scope: "col", text: "Latency" }), el("th", { scope: "col", text: "Tokens" }),
        el("th", { scope: "col", text: "Attempts" }))));
      table.append(el("tbody"));
    }
    const body = $("tbody", table);
    for (const line of lines) {
      const failed = !!line.error;
      const usage = line.usage || {};
      const status = failed
        ? el("td", { className: "result-error" }, el("span", { className: "mark", text: "✗ failed" }),
          el("span", { className: "error-text", text: errorText(line.error) }))
        : el("td", { className: "result-ok" }, el("span", { className: "mark", text: "✓ ok" }));
      body.append(el("tr", { className: failed ? "failed" : "" },
        el("td", { text: cellText(line.key) }), status,
        ...s.resultColumns.map((o) => el("td", { className: "output", text: cellText((line.output || {})[o]) })),
        el("td", { text: line.latency_ms ? fmt(line.latency_ms, 0) + " ms" : "–" }),
        el("td", { text: fmt(usage.total_tokens) }),
        el("td", { text: fmt(line.attempts) })));
    }
  }

  function errorText(error) {
    const message = String(error.message || "");
    return error.status && !message.includes("HTTP " + error.status) ? "HTTP " + error.status + ": " + message : message;
  }

  async function download(format) {
    if (!s.run) return;
    const id = s.run.id;
    const box = $("#run-error", s.root);
    try {
      const response = await fetch("/api/v1/runs/" + id + "/results?format=" + format, {
        headers: { Authorization: window.openaiCompat.tokenHeader() },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw new window.openaiCompat.ApiError(response.status, body);
      }
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: "run-" + id + "." + format });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      showError(box, "✗ The download failed: " + problemLines(err).join("\n"));
    }
  }

  // ---- past runs -------------------------------------------------------------------------

  async function refreshHistory() {
    refreshBatches();
    if (!s) return;
    const mine = s;
    const table = $("#run-history", s.root);
    try {
      const page = await api("GET", "/api/v1/runs?connector_id=" + s.connector.id + "&limit=50");
      if (mine !== s) return;
      const runs = page.data || [];
      table.textContent = "";
      $("#run-history-empty", s.root).hidden = runs.length > 0;
      if (!runs.length) return;
      table.append(el("thead", {}, el("tr", {}, ...["Run", "Status", "Rows", "OK", "Failed", "Tokens", "Rows/s", "Started", "Took"]
        .map((h) => el("th", { scope: "col", text: h })))));
      const body = el("tbody");
      for (const run of runs) {
        const open = el("button", { type: "button", className: "link-btn", text: "Run " + run.id,
          onclick: () => openRun(run) });
        const took = run.started_at && run.finished_at ? (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000 : null;
        body.append(el("tr", { className: s.run && s.run.id === run.id ? "current" : "" },
          el("td", {}, open),
          el("td", {}, el("span", { className: "status-pill status-" + run.status, text: run.status })),
          el("td", { text: fmt(run.done) + (typeof run.total === "number" ? " / " + fmt(run.total) : "") }),
          el("td", { text: fmt(run.ok) }), el("td", { text: fmt(run.failed) }),
          el("td", { text: fmt(run.tokens) }), el("td", { text: fmt(run.rows_per_s, 1) }),
          el("td", { text: run.started_at ? new Date(run.started_at).toLocaleString() : "–" }),
          el("td", { text: duration(took) })));
      }
      table.append(body);
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      table.textContent = "";
      $("#run-history-empty", s.root).hidden = false;
      $("#run-history-empty", s.root).textContent = "✗ The list of runs could not be read: " + problemLines(err).join(" ");
    }
  }

  // ---- batches of OpenAI's Batch API (each one a run) -------------------------------------

  async function refreshBatches() {
    if (!s) return;
    const mine = s;
    const table = $("#batch-history", s.root);
    const empty = $("#batch-history-empty", s.root);
    try {
      const page = await api("GET", "/v1/batches?limit=20");
      if (mine !== s) return;
      const batches = page.data || [];
      table.textContent = "";
      empty.hidden = batches.length > 0;
      if (!batches.length) return;
      table.append(el("thead", {}, el("tr", {}, ...["Batch", "Status", "Lines", "Completed", "Failed", "Tokens", "Created", "Output", "Errors"]
        .map((h) => el("th", { scope: "col", text: h })))));
      const body = el("tbody");
      for (const b of batches) {
        const counts = b.request_counts || {};
        body.append(el("tr", {},
          el("td", { text: b.id }),
          el("td", {}, el("span", { className: "status-pill status-" + b.status, text: b.status })),
          el("td", { text: fmt(counts.total) }), el("td", { text: fmt(counts.completed) }),
          el("td", { text: fmt(counts.failed) }),
          el("td", { text: fmt(b.usage ? b.usage.total_tokens : null) }),
          el("td", { text: b.created_at ? new Date(b.created_at * 1000).toLocaleString() : "–" }),
          el("td", { text: b.output_file_id || "–" }), el("td", { text: b.error_file_id || "–" })));
      }
      table.append(body);
    } catch (err) {
      if (mine !== s || err.status === 401) return;
      table.textContent = "";
      empty.hidden = false;
      empty.textContent = "✗ The list of batches could not be read: " + problemLines(err).join(" ");
    }
  }

  window.openaiCompatRuns = { setup, shown };
})();
