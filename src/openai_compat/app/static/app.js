// The openai-compat web page: plain JavaScript, no build step, every asset from the app.
(function () {
  "use strict";

  const TOKEN_KEY = "openai-compat-token";
  const MASK = "********";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = { spec: null, connectors: [], current: null, tab: "configure", abort: null };

  // ---- HTTP ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || "HTTP " + status);
      this.status = status;
      this.body = err;
    }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign(
      { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) }, extraHeaders || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      signOut("Your session is not valid any more: sign in again.");
      throw new ApiError(401, await response.json().catch(() => null));
    }
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    return response.status === 204 ? null : response.json();
  }

  // ---- sign in ---------------------------------------------------------------------------

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#app").hidden = true;
    $("#signin").hidden = false;
    const box = $("#signin-error");
    box.hidden = !message;
    box.textContent = message || "";
    $("#token").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const token = $("#token").value.trim();
    const box = $("#signin-error");
    box.hidden = true;
    const probe = await fetch("/api/v1/connectors", { headers: { Authorization: "Bearer " + token } });
    if (!probe.ok) {
      box.textContent = probe.status === 401
        ? "This token is not valid. Use the token printed when the server first started."
        : "The server answered HTTP " + probe.status + ".";
      box.hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#token").value = "";
    await start();
  }

  async function start() {
    $("#signin").hidden = true;
    $("#app").hidden = false;
    if (!state.spec) state.spec = await api("GET", "/api/v1/connector_definitions/openai_compatible");
    await refreshList();
  }

  // ---- connector list --------------------------------------------------------------------

  async function refreshList() {
    // The list comes a page at a time: follow next_cursor to the last one.
    const connectors = [];
    let path = "/api/v1/connectors?limit=500";
    for (;;) {
      const page = await api("GET", path);
      connectors.push(...page.data);
      if (!page.next_cursor) break;
      path = "/api/v1/connectors?limit=500&cursor=" + encodeURIComponent(page.next_cursor);
    }
    state.connectors = connectors;
    const list = $("#connector-list");
    list.textContent = "";
    for (const c of state.connectors) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.id = c.id;
      b.className = state.current && state.current.id === c.id ? "active" : "";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = c.name;
      const url = document.createElement("span");
      url.className = "url";
      url.textContent = c.configuration.url || "";
      b.append(name, url);
      b.addEventListener("click", () => openConnector(c.id, "configure"));
      li.append(b);
      list.append(li);
    }
    $("#empty-list").hidden = state.connectors.length > 0;
  }

  // ---- the form, generated from the spec -------------------------------------------------

  function specFields() {
    // The spec's properties in their order; an object property contributes its own
    // properties with a dotted path (config.timeout). An untitled group (config) is shown
    // in place; a titled one (advanced) in its own collapsed section: f.group.
    const conn = state.spec.spec.connection_specification;
    const required = new Set(conn.required || []);
    const byOrder = (a, b) => (a[1].order ?? 99) - (b[1].order ?? 99);
    const fields = [];
    for (const [key, prop] of Object.entries(conn.properties).sort(byOrder)) {
      if (prop.type === "object" && prop.properties) {
        const group = prop.title ? { key, title: prop.title, description: prop.description } : null;
        for (const [sub, subProp] of Object.entries(prop.properties).sort(byOrder)) {
          fields.push({ path: key + "." + sub, prop: subProp, required: false, group });
        }
      } else {
        fields.push({ path: key, prop, required: required.has(key) });
      }
    }
    return fields;
  }

  function getPath(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  function setPath(obj, path, value) {
    const keys = path.split(".");
    let o = obj;
    for (const k of keys.slice(0, -1)) o = o[k] = o[k] || {};
    o[keys[keys.length - 1]] = value;
  }

  function fieldControl(f, value, isSaved) {
    const p = f.prop;
    const id = "field-" + f.path;
    if (p.multiwoven_secret) {
      const input = document.createElement("input");
      input.type = "password";
      input.id = id;
      input.autocomplete = "new-password";
      const what = f.path === "api_key" ? "key" : "value";
      input.placeholder = isSaved
        ? "Saved — leave empty to keep the stored " + what
        : (f.path === "api_key" ? "sk-..." : "");
      if (typeof value === "string" && value.startsWith("ENV[")) input.value = value;
      return input;
    }
    if (Array.isArray(p.enum)) {
      const select = document.createElement("select");
      select.id = id;
      for (const choice of p.enum) {
        const o = document.createElement("option");
        o.value = o.textContent = choice;
        select.append(o);
      }
      select.value = value == null ? (p.default ?? p.enum[0]) : String(value);
      return select;
    }
    if (p.type === "integer") {
      const input = document.createElement("input");
      input.type = "number";
      input.id = id;
      input.step = "1";
      if (p.minimum !== undefined) input.min = String(p.minimum);
      if (p.maximum !== undefined) input.max = String(p.maximum);
      input.value = value == null ? "" : String(value);
      return input;
    }
    if (p.type === "boolean") {
      const wrap = document.createElement("label");
      wrap.className = "switch";
      const input = document.createElement("input");
      input.type = "checkbox";
      input.id = id;
      input.checked = value === true || value === "true";
      wrap.append(input, document.createTextNode("Enabled"));
      const row = document.createElement("div");
      row.append(wrap);
      return row;
    }
    if (p["x-request-format"] || p["x-response-format"]) return jsonEditor(id, value);
    const input = document.createElement("input");
    input.type = "text";
    input.id = id;
    input.value = value == null ? "" : (typeof value === "object" ? JSON.stringify(value) : String(value));
    if (p.default !== undefined) input.placeholder = String(p.default);
    return input;
  }

  function groupSection(container, group) {
    // A titled group of the spec (advanced): a collapsed section after the guide's fields.
    const details = document.createElement("details");
    details.className = "field-group";
    details.dataset.group = group.key;
    const summary = document.createElement("summary");
    summary.textContent = group.title;
    details.append(summary);
    if (group.description) {
      const help = document.createElement("p");
      help.className = "help";
      help.textContent = group.description;
      details.append(help);
    }
    container.append(details);
    return details;
  }

  function secretIsSet(connector, path) {
    if (!connector) return false;
    if (Array.isArray(connector.secrets_set)) return connector.secrets_set.includes(path);
    return path === "api_key" && !!connector.api_key_set;
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function jsonEditor(id, value) {
    const wrap = document.createElement("div");
    const area = document.createElement("textarea");
    area.id = id;
    area.className = "json-editor";
    area.spellcheck = false;
    area.rows = 7;
    area.value = typeof value === "string" ? pretty(value) : JSON.stringify(value ?? {}, null, 2);
    const status = document.createElement("p");
    status.className = "json-status";
    status.dataset.jsonStatusFor = id;
    const caret = document.createElement("pre");
    caret.className = "json-caret";
    caret.hidden = true;
    const tools = document.createElement("div");
    tools.className = "editor-tools";
    const fmt = document.createElement("button");
    fmt.type = "button";
    fmt.className = "link-btn";
    fmt.textContent = "Format JSON";
    fmt.addEventListener("click", () => { area.value = pretty(area.value); check(); });
    tools.append(status, fmt);
    function check() {
      const problem = jsonProblem(area.value);
      status.classList.toggle("bad", !!problem);
      area.setCustomValidity(problem ? problem.message : "");
      if (!problem) {
        status.textContent = "✓ Valid JSON";
        caret.hidden = true;
        return;
      }
      status.textContent = "✗ Line " + problem.line + ", column " + problem.column + ": " + problem.message;
      caret.textContent = problem.lineText + "\n" + " ".repeat(Math.max(0, problem.column - 1)) + "^";
      caret.hidden = false;
    }
    area.addEventListener("input", check);
    wrap.append(area, tools, caret);
    area.rows = Math.min(14, Math.max(5, area.value.split("\n").length + 1));
    setTimeout(check);
    return wrap;
  }

  // Where the JSON breaks, as line and column: a small strict JSON scanner, because the
  // browsers' JSON.parse messages do not all give a position.
  function jsonErrorAt(text) {
    let i = 0;
    const fail = (message) => { throw { pos: i, message }; };
    const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
    const literal = (word) => {
      if (text.startsWith(word, i)) i += word.length;
      else fail("unexpected " + (i < text.length ? "'" + text[i] + "'" : "end of text"));
    };
    const string = () => {
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\") {
          i++;
          if (text[i] === "u") { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail("bad \\u escape"); i += 4; }
          else if (!'"\\/bfnrt'.includes(text[i])) fail("bad escape");
        } else if (text.charCodeAt(i) < 0x20) fail("control character in a string (use \\n)");
        i++;
      }
      if (i >= text.length) fail("unterminated string");
      i++;
    };
    const number = () => {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail("unexpected '" + text[i] + "'");
      i += m[0].length;
    };
    const value = () => {
      ws();
      const c = text[i];
      if (c === "{") {
        i++; ws();
        if (text[i] === "}") { i++; return; }
        for (;;) {
          ws();
          if (text[i] !== '"') fail("expected a property name in double quotes");
          string(); ws();
          if (text[i] !== ":") fail("expected ':' after the property name");
          i++; value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "}") { i++; return; }
          fail("expected ',' or '}' after a property value");
        }
      } else if (c === "[") {
        i++; ws();
        if (text[i] === "]") { i++; return; }
        for (;;) {
          value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "]") { i++; return; }
          fail("expected ',' or ']' after an array element");
        }
      } else if (c === '"') string();
      else if (c === "t") literal("true");
      else if (c === "f") literal("false");
      else if (c === "n") literal("null");
      else if (c === "-" || (c >= "0" && c <= "9")) number();
      else fail(i >= text.length ? "unexpected end of text" : "unexpected '" + c + "'");
    };
    try {
      value(); ws();
      if (i < text.length) fail("unexpected text after the JSON value");
      return null;
    } catch (e) {
      if (e && typeof e.pos === "number") return e;
      throw e;
    }
  }

  function jsonProblem(text) {
    let error = null;
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        error = { pos: 0, message: "must be a JSON object ({...})" };
      }
    } catch (e) {
      error = jsonErrorAt(text) || { pos: 0, message: e.message };
    }
    if (!error) return null;
    const before = text.slice(0, error.pos).split("\n");
    const line = before.length;
    const column = before[before.length - 1].length + 1;
    return { line, column, message: error.message, lineText: text.split("\n")[line - 1] || "" };
  }

  function renderEditor(connector) {
    const main = $("#main");
    main.textContent = "";
    main.append($("#editor-template").content.cloneNode(true));
    const saved = !!connector;
    $(".panel-title").textContent = saved ? connector.name : "New connector";
    $(".panel-sub").textContent = saved
      ? "OpenAI Compatible Endpoint · id " + connector.id
      : state.spec.meta_data.data.title + " — fill in the fields below";
    $("#field-name").value = saved ? connector.name : "";
    const container = $("#spec-fields");
    const config = saved ? connector.configuration : {};
    const sections = {};
    for (const f of specFields()) {
      const p = f.prop;
      const div = document.createElement("div");
      div.className = "field";
      div.dataset.field = f.path;
      const label = document.createElement("label");
      label.htmlFor = "field-" + f.path;
      label.textContent = p.title || f.path;
      if (f.required && !(saved && p.multiwoven_secret)) label.className = "required";
      const help = document.createElement("p");
      help.className = "help";
      help.textContent = p.description || "";
      let value = getPath(config, f.path);
      if (value === undefined && !saved) value = p.default;
      if (value === undefined && saved) value = p.default;
      const error = document.createElement("p");
      error.className = "field-error";
      error.dataset.errorFor = f.path;
      error.hidden = true;
      if (p.multiwoven_secret && value === MASK) value = undefined;
      div.append(label, help, fieldControl(f, value, secretIsSet(connector, f.path)), error);
      const parent = f.group
        ? (sections[f.group.key] = sections[f.group.key] || groupSection(container, f.group))
        : container;
      parent.append(div);
    }
    for (const tab of document.querySelectorAll(".tab")) {
      tab.disabled = !saved && tab.dataset.tab !== "configure";
      tab.addEventListener("click", () => showTab(tab.dataset.tab));
    }
    $("#delete").hidden = !saved;
    $("#measure-capabilities").hidden = !saved;
    $("#measure-capabilities").addEventListener("click", measureCapabilities);
    $("#capabilities").hidden = true;
    if (saved) showStoredCapabilities(connector.id);
    $("#test-connection").addEventListener("click", testConnection);
    $("#connector-form").addEventListener("submit", save);
    $("#delete").addEventListener("click", remove);
    setupPlayground(connector);
    if (window.openaiCompatRuns) window.openaiCompatRuns.setup(connector, $("#runs"));
    showTab(state.tab);
  }

  function showTab(tab) {
    if (tab !== "configure" && !state.current) tab = "configure";
    state.tab = tab;
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.tab === tab);
    $("#connector-form").hidden = tab !== "configure";
    $("#playground").hidden = tab !== "playground";
    $("#runs").hidden = tab !== "runs";
    if (tab === "runs" && window.openaiCompatRuns) window.openaiCompatRuns.shown();
  }

  function readForm() {
    const configuration = {};
    for (const f of specFields()) {
      const el = document.getElementById("field-" + f.path);
      let value;
      if (f.prop.type === "boolean") value = el.checked;
      else value = el.value;
      if (f.prop.multiwoven_secret && value === "" && secretIsSet(state.current, f.path)) continue;
      if (f.group) {
        // Optional settings: an empty one, or one left at its default, is not sent.
        if (value === "" || value === f.prop.default) continue;
        if (f.prop.type === "integer" && /^-?\d+$/.test(value.trim())) value = Number(value);
      } else if (value === "" && !f.required && !f.prop.multiwoven_secret) continue;
      setPath(configuration, f.path, value);
    }
    return { name: $("#field-name").value.trim(), configuration };
  }

  function clearErrors() {
    for (const el of document.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
    for (const el of document.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
    $("#check-result").hidden = true;
    $("#save-result").hidden = true;
  }

  function showFieldErrors(err) {
    const leftover = [];
    for (const e of err.body.errors || []) {
      const path = e.field.replace(/^configuration\./, "");
      const el = document.querySelector('[data-error-for="' + CSS.escape(path) + '"]');
      if (el) {
        el.textContent = e.message;
        el.hidden = false;
        el.closest(".field").classList.add("invalid");
        const section = el.closest("details");
        if (section) section.open = true;
      } else {
        leftover.push(e.field + ": " + e.message);
      }
    }
    return leftover;
  }

  function showResult(box, ok, text) {
    box.className = "alert " + (ok ? "alert-ok" : "alert-error");
    box.textContent = text;
    box.hidden = false;
  }

  async function testConnection() {
    clearErrors();
    const button = $("#test-connection");
    const box = $("#check-result");
    button.disabled = true;
    button.textContent = "Testing…";
    try {
      const body = { configuration: readForm().configuration };
      if (state.current) body.connector_id = state.current.id;
      const result = await api("POST", "/api/v1/connector_definitions/check_connection", body);
      const status = result.connection_status;
      if (status.status === "succeeded") showResult(box, true, "✓ Connection succeeded.");
      else showResult(box, false, "✗ Connection failed: " + (status.message || "no reason given"));
    } catch (err) {
      if (err.status === 401) return;
      const rest = err.status === 422 ? showFieldErrors(err) : [err.message];
      showResult(box, false, "✗ " + (rest.length ? rest.join("\n") : "Fix the fields marked in red."));
    } finally {
      button.disabled = false;
      button.textContent = "Test connection";
    }
  }

  // What the saved connector's server supports: the `check --capabilities` record.
  const CAPABILITY_LABELS = [
    ["json_schema", "response_format json_schema"],
    ["json_object", "response_format json_object"],
    ["tools", "Forced tool calls"],
    ["stream_options.include_usage", "Usage in streams"],
    ["n>1", "Several choices (n > 1)"],
    ["logprobs", "Log probabilities"],
    ["reasoning_field", "Reasoning field streamed"],
    ["models", "Models"],
  ];

  function capabilityText(key, value) {
    if (key === "models" && value === null) return "not listed by the server";
    if (value === null || value === undefined) return "none";
    if (value === true) return "yes";
    if (value === false) return "no";
    return Array.isArray(value) ? value.join(", ") : String(value);
  }

  // The record (`{capabilities, measured_at}`) in the table; the box stays hidden when
  // nothing was measured yet.
  function showCapabilities(answer) {
    const found = answer.capabilities;
    const box = $("#capabilities");
    if (!found) {
      box.hidden = true;
      return;
    }
    const body = $("#capabilities-table tbody");
    body.textContent = "";
    for (const [key, label] of CAPABILITY_LABELS) {
      const row = document.createElement("tr");
      row.dataset.capability = key;
      const name = document.createElement("th");
      name.textContent = label;
      const value = document.createElement("td");
      value.textContent = capabilityText(key, found[key]);
      row.append(name, value);
      body.append(row);
    }
    const when = $("#capabilities-measured-at");
    when.dateTime = answer.measured_at || "";
    when.textContent = answer.measured_at ? new Date(answer.measured_at).toLocaleString() : "";
    box.hidden = false;
  }

  // The last measured capabilities, stored on the connector, when its page opens.
  async function showStoredCapabilities(id) {
    try {
      const answer = await api("GET", "/api/v1/connectors/" + id + "/capabilities");
      if (state.current && state.current.id === id) showCapabilities(answer);
    } catch (err) {
      // No record to show: the button still measures.
    }
  }

  async function measureCapabilities() {
    if (!state.current) return;
    clearErrors();
    const button = $("#measure-capabilities");
    const box = $("#capabilities");
    button.disabled = true;
    button.textContent = "Measuring…";
    try {
      showCapabilities(await api("POST", "/api/v1/connectors/" + state.current.id + "/capabilities"));
    } catch (err) {
      if (err.status === 401) return;
      box.hidden = true;
      showResult($("#check-result"), false, "✗ Capabilities not measured: " + err.message);
    } finally {
      button.disabled = false;
      button.textContent = "Capabilities";
    }
  }

  async function save(event) {
    event.preventDefault();
    clearErrors();
    const box = $("#save-result");
    const form = readForm();
    try {
      const saved = state.current
        ? await api("PUT", "/api/v1/connectors/" + state.current.id, form)
        : await api("POST", "/api/v1/connectors", form);
      state.current = saved;
      await refreshList();
      renderEditor(saved);
      showResult($("#save-result"), true, "✓ Saved.");
    } catch (err) {
      if (err.status === 401) return;
      const rest = err.status === 422 ? showFieldErrors(err) : [err.message];
      showResult(box, false, "✗ Not saved: " + (rest.length ? rest.join("\n") : "fix the fields marked in red."));
    }
  }

  async function remove() {
    if (!state.current || !confirm("Delete the connector “" + state.current.name + "”?")) return;
    await api("DELETE", "/api/v1/connectors/" + state.current.id);
    state.current = null;
    await refreshList();
    newConnector();
  }

  async function openConnector(id, tab) {
    state.current = await api("GET", "/api/v1/connectors/" + id);
    state.tab = tab || state.tab;
    await refreshList();
    renderEditor(state.current);
  }

  function newConnector() {
    state.current = null;
    state.tab = "configure";
    for (const b of document.querySelectorAll(".connector-list button")) b.classList.remove("active");
    renderEditor(null);
  }

  // ---- playground ------------------------------------------------------------------------

  function addMessage(role, content) {
    const box = document.createElement("div");
    box.className = "message";
    const head = document.createElement("div");
    head.className = "message-head";
    const select = document.createElement("select");
    for (const r of ["system", "user", "assistant"]) {
      const o = document.createElement("option");
      o.value = o.textContent = r;
      select.append(o);
    }
    select.value = role;
    const spacer = document.createElement("span");
    spacer.className = "spacer";
    const del = document.createElement("button");
    del.type = "button";
    del.className = "link-btn";
    del.textContent = "Remove";
    del.addEventListener("click", () => box.remove());
    head.append(select, spacer, del);
    const text = document.createElement("textarea");
    text.value = content;
    text.placeholder = "Message content";
    box.append(head, text);
    $("#pg-messages").append(box);
  }

  function setupPlayground(connector) {
    if (!connector) return;
    let sample = {};
    try { sample = JSON.parse(connector.configuration.request_format || "{}"); } catch (e) { sample = {}; }
    state.sample = sample;
    $("#pg-model").value = sample.model || "";
    const messages = Array.isArray(sample.messages) && sample.messages.length
      ? sample.messages : [{ role: "user", content: "" }];
    for (const m of messages) addMessage(m.role || "user", typeof m.content === "string" ? m.content : JSON.stringify(m.content));
    $("#pg-add").addEventListener("click", () => addMessage("user", ""));
    $("#pg-send").addEventListener("click", send);
    $("#pg-stop").addEventListener("click", () => state.abort && state.abort.abort());
  }

  function readPayload() {
    const payload = Object.assign({}, state.sample);
    const model = $("#pg-model").value.trim();
    if (model) payload.model = model;
    const messages = [...document.querySelectorAll("#pg-messages .message")].map((m) => ({
      role: $("select", m).value, content: $("textarea", m).value,
    }));
    delete payload.stream;
    // Embeddings and Responses take "input", legacy completions "prompt": the last user
    // message is it; chat takes the messages.
    const users = messages.filter((m) => m.role === "user");
    const last = users.length ? users[users.length - 1].content : "";
    if ("input" in payload && !("messages" in payload)) payload.input = last;
    else if ("prompt" in payload && !("messages" in payload)) payload.prompt = last;
    else payload.messages = messages;
    return payload;
  }

  function deltaText(data) {
    if (data && data.type === "response.output_text.delta") {
      return typeof data.delta === "string" ? data.delta : "";
    }
    const choice = data && Array.isArray(data.choices) ? data.choices[0] : null;
    if (!choice) return "";
    if (typeof choice.text === "string") return choice.text;
    const part = choice.delta || choice.message || {};
    return typeof part.content === "string" ? part.content : "";
  }

  function vectorText(vector) {
    const first = vector.slice(0, 5).map((v) => Number(v).toPrecision(4));
    return "A vector of " + vector.length + " values: [" + first.join(", ") +
      (vector.length > 5 ? ", …" : "") + "]";
  }

  function answerText(answer) {
    if (answer && typeof answer.output_text === "string") return answer.output_text;
    const item = answer && Array.isArray(answer.data) ? answer.data[0] : null;
    if (item && Array.isArray(item.embedding)) return vectorText(item.embedding);
    const choice = answer && Array.isArray(answer.choices) ? answer.choices[0] : null;
    if (choice && typeof choice.text === "string") return choice.text;
    const message = choice ? choice.message || choice.delta || {} : {};
    return typeof message.content === "string" ? message.content : JSON.stringify(answer);
  }

  async function send() {
    const answerBox = $("#pg-answer");
    const recordsBox = $("#pg-records");
    const errorBox = $("#pg-error");
    const status = $("#pg-status");
    answerBox.textContent = "";
    recordsBox.textContent = "";
    $("#pg-assembled").textContent = "";
    $("#pg-count").textContent = "0";
    errorBox.hidden = true;
    state.abort = new AbortController();
    $("#pg-send").disabled = true;
    $("#pg-stop").disabled = false;
    answerBox.classList.add("streaming");
    const started = performance.now();
    let count = 0;
    const onRecord = (data) => {
      count += 1;
      $("#pg-count").textContent = String(count);
      recordsBox.textContent += JSON.stringify(data) + "\n";
      answerBox.textContent += deltaText(data);
      status.textContent = "Streaming… " + count + " record(s)";
    };
    const onAnswer = (answer) => {
      $("#pg-assembled").textContent = JSON.stringify(answer, null, 2);
      answerBox.textContent = answerText(answer);
    };
    const onError = (err) => {
      const b = err || {};
      const provider = b.provider_status ? " (endpoint answered HTTP " + b.provider_status + ")" : "";
      errorBox.textContent = (b.message || "the request failed") + provider;
      errorBox.hidden = false;
    };
    try {
      const response = await fetch("/api/v1/connectors/" + state.current.id + "/execute_model", {
        method: "POST",
        signal: state.abort.signal,
        headers: {
          Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY),
          "Content-Type": "application/json",
          Accept: "text/event-stream, application/json",
        },
        body: JSON.stringify({ payload: readPayload() }),
      });
      if (response.status === 401) { signOut("Your session is not valid any more: sign in again."); return; }
      const type = response.headers.get("content-type") || "";
      if (!response.ok) {
        onError(((await response.json().catch(() => ({}))) || {}).error);
      } else if (type.startsWith("text/event-stream")) {
        await readEvents(response, { record: onRecord, answer: onAnswer, error: (d) => onError(d.error),
          warning: (d) => { status.textContent = "Warning: " + d.message; } });
      } else {
        const body = await response.json();
        for (const r of body.data) onRecord(r);
        if (body.answer) onAnswer(body.answer);
      }
      const took = ((performance.now() - started) / 1000).toFixed(2);
      if (!status.textContent.startsWith("Warning")) status.textContent = "Done in " + took + " s · " + count + " record(s)";
    } catch (err) {
      if (err.name === "AbortError") status.textContent = "Stopped.";
      else onError({ message: String(err.message || err) });
    } finally {
      answerBox.classList.remove("streaming");
      $("#pg-send").disabled = false;
      $("#pg-stop").disabled = true;
      state.abort = null;
    }
  }

  // A small server-sent events reader (EventSource cannot POST or send headers).
  async function readEvents(response, handlers) {
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
        if (!data.length || !handlers[name]) continue;
        handlers[name](JSON.parse(data.join("\n")));
      }
    }
  }

  // What the Runs tab (runs.js) uses of this page.
  window.openaiCompat = { api, ApiError, signOut, tokenHeader: () => "Bearer " + sessionStorage.getItem(TOKEN_KEY) };

  // ---- start -----------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#signin-form").addEventListener("submit", (e) => signIn(e).catch((err) => {
      $("#signin-error").textContent = String(err.message || err);
      $("#signin-error").hidden = false;
    }));
    $("#signout").addEventListener("click", () => signOut(""));
    $("#new-connector").addEventListener("click", newConnector);
    if (sessionStorage.getItem(TOKEN_KEY)) start().catch(() => signOut(""));
    else signOut("");
  });
})();
