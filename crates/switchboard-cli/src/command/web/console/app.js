// The console: the services found (polled), one service's documentation and members, a form
// per method, command and action goal, live property and signal panes (one event stream per
// open service), and goals followed with a progress bar and a cancel button.

import { ApiFailure, follow, request, servicePath, setToken, takeTokenFromFragment, token } from "/console/api.js";
import { Invalid, el, fieldsForm, formatValue, valueTable } from "/console/forms.js";

/// How often the list of services is asked for again.
const POLL_MS = 4000;
/// How many arrivals each signal pane keeps.
const SIGNAL_HISTORY = 5;
/// How many goal panels each action keeps (the oldest go, and stop being followed).
const GOAL_PANELS = 5;

const state = {
  /// "Interface/instance" → the listed service.
  services: new Map(),
  /// The service shown, as { key, service, iface, stop: AbortController }.
  open: null,
  /// The service being read, before it is shown: its AbortController.
  opening: null,
  /// Whether to open a service (the one in the address, else the first) once the list has one.
  wantOpen: true,
  /// The listing failed with this, if it did.
  listingFailure: null,
};

const $ = (selector) => document.querySelector(selector);
const keyOf = (service) => `${service.interface}/${service.instance}`;
const clock = () => new Date().toLocaleTimeString();

// --- Documentation, with `code` spans -------------------------------------------------------

function prose(text, tag = "p") {
  if (!text) return null;
  return text
    .trim()
    .split(/\n\s*\n/)
    .map((paragraph) =>
      el(
        tag,
        { class: "doc" },
        paragraph.split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part.replace(/\s*\n\s*/g, " "))),
      ),
    );
}

// --- Failures ---------------------------------------------------------------------------------

const KIND_TITLES = {
  remote: "refused by the service",
  usage: "not accepted by the gateway",
  not_found: "not found",
  transport: "transport error",
  timeout: "timed out",
  unreachable: "transport error: no answer from the gateway",
  local: "gateway limit",
};

/// A failure as a box: a declared error's name, code and fields (in declared order when `iface`
/// declares the error); a transport failure as such.
function failureBox(failure, iface) {
  if (!(failure instanceof ApiFailure)) {
    return el("div", { class: "failure local", role: "alert" }, el("div", { class: "failure-title" }, "error"), el("pre", {}, String(failure.message || failure)));
  }
  const error = failure.error;
  const transportLike = ["transport", "timeout", "unreachable"].includes(failure.kind);
  const title = el(
    "div",
    { class: "failure-title" },
    error.name ? el("strong", { class: "error-name" }, error.name) : el("strong", {}, KIND_TITLES[failure.kind] || failure.kind),
    error.code !== undefined ? el("span", { class: "pill" }, `code ${error.code}`) : null,
    failure.status ? el("span", { class: "pill" }, `HTTP ${failure.status}`) : null,
    el("span", { class: "pill kind" }, failure.kind),
  );
  const declared = iface && error.name ? iface.errors.find((e) => e.name === error.name) : null;
  let details = null;
  if (declared && declared.fields.length && error.details) {
    details = valueTable(iface, declared.fields, error.details);
    details.classList.add("details");
  } else if (error.details && typeof error.details === "object" && Object.keys(error.details).length) {
    details = el("dl", { class: "values details" }, Object.entries(error.details).map(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, typeof v === "object" ? JSON.stringify(v) : String(v))]));
  }
  const box = el("div", { class: `failure ${transportLike ? "transport" : failure.kind}`, role: "alert" }, title, el("div", { class: "failure-message" }, error.message), details);
  if (failure.needsToken) box.append(el("div", { class: "hint" }, "Enter the gateway's token with the “token” button above."));
  return box;
}

function invalidBox(problem) {
  return el("div", { class: "failure invalid-input", role: "alert" }, el("div", { class: "failure-title" }, el("strong", {}, "not sent: fix these first")), el("pre", {}, problem.message));
}

/// Runs `work`, showing what it returns (if anything) or its failure in `outcome`; the button
/// is disabled meanwhile.
async function perform(button, outcome, iface, work) {
  button.disabled = true;
  outcome.replaceChildren(el("div", { class: "pending" }, "…"));
  try {
    const shown = await work();
    outcome.replaceChildren(...(shown ? [shown] : []));
  } catch (failure) {
    if (failure instanceof Invalid) outcome.replaceChildren(invalidBox(failure));
    else {
      outcome.replaceChildren(failureBox(failure, iface));
      if (failure instanceof ApiFailure && failure.needsToken) askForToken();
    }
  } finally {
    button.disabled = false;
  }
}

// --- Member cards -------------------------------------------------------------------------------

function card(kind, name, documentation, ...children) {
  return el(
    "section",
    { class: `card ${kind}`, "data-member": `${kind}:${name}` },
    el("header", {}, el("span", { class: `badge ${kind}` }, kind), el("h3", {}, name)),
    prose(documentation),
    ...children,
  );
}

function methodCard(open, method) {
  const form = fieldsForm(open.iface, method.arguments);
  const outcome = el("div", { class: "outcome", "aria-live": "polite" });
  const button = el("button", { type: "submit", class: "primary" }, "Call");
  const onsubmit = (event) => {
    event.preventDefault();
    perform(button, outcome, open.iface, async () => {
      const args = form.read();
      const reply = await request("POST", `${servicePath(open.service)}/methods/${encodeURIComponent(method.name)}`, args);
      return el("div", { class: "result" }, el("div", { class: "result-title" }, `returned at ${clock()}`), valueTable(open.iface, method.returns, reply));
    });
  };
  const errors = method.errors.length ? el("div", { class: "hint" }, `may fail with ${method.errors.join(", ")}`) : null;
  return card("method", method.name, method.documentation, el("form", { novalidate: true, onsubmit }, form.node, el("div", { class: "buttons" }, button)), errors, outcome);
}

function commandCard(open, command) {
  const form = fieldsForm(open.iface, command.arguments);
  const outcome = el("div", { class: "outcome", "aria-live": "polite" });
  const button = el("button", { type: "submit", class: "primary" }, "Send");
  const onsubmit = (event) => {
    event.preventDefault();
    perform(button, outcome, open.iface, async () => {
      const args = form.read();
      await request("POST", `${servicePath(open.service)}/commands/${encodeURIComponent(command.name)}`, args);
      return el("div", { class: "result" }, `sent at ${clock()} (commands get no answer)`);
    });
  };
  return card("command", command.name, command.documentation, el("form", { novalidate: true, onsubmit }, form.node, el("div", { class: "buttons" }, button)), outcome);
}

function propertyCard(open, property) {
  const live = el("div", { class: "live" }, valueTable(open.iface, property.fields, null));
  const version = el("span", { class: "pill version" }, "not read yet");
  const pane = { live, version, property, lastVersion: -1 };
  open.properties.set(property.name, pane);
  const children = [el("div", { class: "live-head" }, el("span", { class: "live-dot" }), "current value", version), live];
  if (property.read_only) {
    children.push(el("div", { class: "hint read-only" }, "read-only: the service changes it, clients cannot"));
  } else {
    const form = fieldsForm(open.iface, property.fields);
    const outcome = el("div", { class: "outcome", "aria-live": "polite" });
    const button = el("button", { type: "submit", class: "primary" }, "Set");
    const onsubmit = (event) => {
      event.preventDefault();
      perform(button, outcome, open.iface, async () => {
        const value = form.read();
        const set = await request("PUT", `${servicePath(open.service)}/properties/${encodeURIComponent(property.name)}`, value);
        return el("div", { class: "result" }, el("div", { class: "result-title" }, `set at ${clock()}`), valueTable(open.iface, property.fields, set));
      });
    };
    children.push(el("form", { novalidate: true, onsubmit, class: "edit" }, el("div", { class: "form-title" }, "change it"), form.node, el("div", { class: "buttons" }, button)), outcome);
  }
  const node = card("property", property.name, property.documentation, ...children);
  if (property.read_only) node.querySelector("header").append(el("span", { class: "pill" }, "read-only"));
  return node;
}

/// Shows a property value (from a read or an event); older versions than shown are ignored.
function showProperty(open, name, value, version) {
  const pane = open.properties.get(name);
  if (!pane) return;
  if (version !== undefined) {
    if (version < pane.lastVersion) return;
    pane.lastVersion = version;
    pane.version.textContent = `version ${version} · ${clock()}`;
  } else if (pane.lastVersion < 0) {
    pane.version.textContent = `read at ${clock()}`;
  }
  pane.live.replaceChildren(valueTable(open.iface, pane.property.fields, value));
  flash(pane.live);
}

function flash(node) {
  node.classList.remove("flash");
  void node.offsetWidth;
  node.classList.add("flash");
}

function signalCard(open, signal) {
  const count = el("span", { class: "pill count" }, "0 received");
  const latest = el("div", { class: "live" }, el("div", { class: "values empty" }, "waiting for the first one…"));
  const history = el("ol", { class: "history" });
  open.signals.set(signal.name, { count, latest, history, signal, received: 0 });
  return card("signal", signal.name, signal.documentation, el("div", { class: "live-head" }, el("span", { class: "live-dot" }), "latest", count), latest, history);
}

function showSignal(open, name, args) {
  const pane = open.signals.get(name);
  if (!pane) return;
  pane.received += 1;
  pane.count.textContent = `${pane.received} received · ${clock()}`;
  pane.latest.replaceChildren(valueTable(open.iface, pane.signal.fields, args));
  flash(pane.latest);
  const summary = pane.signal.fields.map((f) => `${f.name}=${formatValue(open.iface, f.type, args[f.name])}`).join("  ");
  pane.history.prepend(el("li", {}, el("time", {}, clock()), " ", summary));
  while (pane.history.children.length > SIGNAL_HISTORY) pane.history.lastChild.remove();
}

/// The percentage a feedback shows, when it has a `percent` or `progress` field (0–100).
function percentOf(feedback) {
  if (!feedback) return null;
  for (const name of ["percent", "progress", "percentage"]) {
    if (typeof feedback[name] === "number") return Math.max(0, Math.min(100, feedback[name]));
  }
  return null;
}

function actionCard(open, action) {
  const form = fieldsForm(open.iface, action.goal);
  const goals = el("div", { class: "goals" });
  const button = el("button", { type: "submit", class: "primary" }, "Start");
  const outcome = el("div", { class: "outcome", "aria-live": "polite" });
  const onsubmit = (event) => {
    event.preventDefault();
    perform(button, outcome, open.iface, async () => {
      const goal = form.read();
      const base = `${servicePath(open.service)}/actions/${encodeURIComponent(action.name)}/goals`;
      const started = await request("POST", base, goal);
      goals.prepend(goalPanel(open, action, `${base}/${encodeURIComponent(started.goal)}`, started));
      while (goals.children.length > GOAL_PANELS) {
        goals.lastChild.stopFollowing();
        goals.lastChild.remove();
      }
      return null;
    });
  };
  const errors = action.errors.length ? el("div", { class: "hint" }, `may fail with ${action.errors.join(", ")}`) : null;
  return card("action", action.name, action.documentation, el("form", { novalidate: true, onsubmit }, form.node, el("div", { class: "buttons" }, button)), errors, outcome, goals);
}

/// One goal: its status, a progress bar from its feedback, a cancel button and its end.
function goalPanel(open, action, path, started) {
  const status = el("span", { class: "status" }, started.status);
  const bar = el("div", { class: "bar" });
  const progress = el("div", { class: "progress indeterminate", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, bar);
  const feedback = el("div", { class: "feedback" }, el("div", { class: "values empty" }, "no feedback yet"));
  const end = el("div", { class: "end" });
  const cancel = el("button", { type: "button", class: "danger" }, "Cancel");
  const panel = el(
    "div",
    { class: "goal", "data-goal": started.goal },
    el("div", { class: "goal-head" }, el("span", {}, `goal ${started.goal}`), status, cancel),
    progress,
    feedback,
    end,
  );
  const stop = new AbortController();
  open.stop.signal.addEventListener("abort", () => stop.abort());
  panel.stopFollowing = () => stop.abort();
  const show = (goal) => {
    status.textContent = goal.status;
    status.className = `status ${goal.status}`;
    if (goal.feedback) {
      feedback.replaceChildren(valueTable(open.iface, action.feedback, goal.feedback));
      const percent = percentOf(goal.feedback);
      if (percent !== null) {
        progress.classList.remove("indeterminate");
        bar.style.width = `${percent}%`;
        progress.setAttribute("aria-valuenow", String(percent));
      }
    }
    if (!["accepted", "running"].includes(goal.status)) {
      cancel.disabled = true;
      progress.classList.remove("indeterminate");
      progress.classList.add(goal.status);
      if (goal.status === "succeeded") {
        bar.style.width = "100%";
        end.replaceChildren(el("div", { class: "result" }, el("div", { class: "result-title" }, `succeeded at ${clock()}`), valueTable(open.iface, action.result, goal.result)));
      } else if (goal.error) {
        end.replaceChildren(failureBox(new ApiFailure(0, goal.error), open.iface));
      } else {
        end.replaceChildren(el("div", { class: `result ${goal.status}` }, `${goal.status} at ${clock()}`));
      }
      if (!progress.hasAttribute("aria-valuenow") && goal.status !== "succeeded") progress.hidden = true;
      stop.abort();
    }
  };
  show(started);
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      show(await request("DELETE", path));
    } catch (failure) {
      cancel.disabled = false;
      end.replaceChildren(failureBox(failure));
    }
  });
  follow(
    `${path}/events`,
    (name, data) => {
      if (name === "feedback") show({ status: "running", feedback: data.feedback });
      else if (name === "end") show(data);
    },
    stop.signal,
  ).catch((failure) => end.replaceChildren(failureBox(failure)));
  return panel;
}

// --- One service ----------------------------------------------------------------------------

function section(title, cards) {
  if (!cards.length) return null;
  return el("div", { class: "section" }, el("h2", {}, title), cards);
}

async function openService(key) {
  if (state.opening) state.opening.abort();
  if (state.open) state.open.stop.abort();
  state.open = null;
  state.wantOpen = false;
  const service = state.services.get(key) || parseKey(key);
  markSelected(key);
  const detail = $("#detail");
  if (!service) {
    detail.replaceChildren(el("div", { class: "placeholder" }, "Choose a service on the left."));
    return;
  }
  detail.replaceChildren(el("div", { class: "placeholder" }, `Reading ${key}…`));
  const stop = new AbortController();
  state.opening = stop;
  let iface;
  try {
    iface = await request("GET", servicePath(service), undefined, stop.signal);
  } catch (failure) {
    if (stop.signal.aborted) return;
    state.opening = null;
    detail.replaceChildren(el("div", { class: "service-head" }, el("h1", {}, key)), failureBox(failure));
    if (failure instanceof ApiFailure && failure.needsToken) askForToken();
    return;
  }
  if (stop.signal.aborted) return;
  state.opening = null;
  const open = { key, service, iface, stop, properties: new Map(), signals: new Map() };
  state.open = open;
  const plural = { method: "methods", property: "properties", signal: "signals", command: "commands", action: "actions" };
  const counts = [
    [iface.methods, "method"],
    [iface.properties, "property"],
    [iface.signals, "signal"],
    [iface.commands, "command"],
    [iface.actions, "action"],
  ]
    .filter(([list]) => list.length)
    .map(([list, noun]) => `${list.length} ${list.length === 1 ? noun : plural[noun]}`);
  const head = el(
    "div",
    { class: "service-head" },
    el("h1", {}, iface.name, el("span", { class: "pill" }, `v${iface.version}`), el("span", { class: "pill instance" }, `instance ${service.instance}`)),
    iface.title ? el("div", { class: "title" }, iface.title) : null,
    iface.summary ? el("div", { class: "summary" }, iface.summary) : null,
    prose(iface.documentation),
    el("div", { class: "hint" }, counts.join(" · ")),
    el("div", { id: "stream-status", class: "hint" }),
  );
  const calls = [
    section("Methods", iface.methods.map((m) => methodCard(open, m))),
    section("Actions", iface.actions.map((a) => actionCard(open, a))),
    section("Commands", iface.commands.map((c) => commandCard(open, c))),
  ].filter(Boolean);
  const watched = [
    section("Properties", iface.properties.map((p) => propertyCard(open, p))),
    section("Signals", iface.signals.map((s) => signalCard(open, s))),
  ].filter(Boolean);
  detail.replaceChildren(head, el("div", { class: "service-body" }, el("div", { class: "column calls" }, calls), el("div", { class: "column watched" }, watched)));
  for (const property of iface.properties) {
    request("GET", `${servicePath(service)}/properties/${encodeURIComponent(property.name)}`, undefined, stop.signal)
      .then((value) => state.open === open && showProperty(open, property.name, value))
      .catch(() => {});
  }
  if (iface.properties.length || iface.signals.length) followService(open);
}

/// The open service's signals and property changes, reconnecting after a break.
async function followService(open) {
  const status = () => $("#stream-status");
  while (!open.stop.signal.aborted) {
    try {
      if (status()) status().textContent = "live: connected";
      await follow(
        `${servicePath(open.service)}/events`,
        (name, data) => {
          if (name === "signal") showSignal(open, data.signal, data.args);
          else if (name === "property") showProperty(open, data.property, data.value, data.version);
          else if (name === "warning" && status()) status().textContent = `live: ${data.warning}`;
        },
        open.stop.signal,
      );
      if (status() && !open.stop.signal.aborted) status().textContent = "live: the stream ended; reconnecting…";
    } catch (failure) {
      if (status()) status().replaceChildren("live updates stopped: ", failureBox(failure));
      if (failure instanceof ApiFailure && failure.needsToken) return askForToken();
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

// --- The list of services -----------------------------------------------------------------------

function parseKey(key) {
  const slash = key.indexOf("/");
  if (slash <= 0) return null;
  return { interface: key.slice(0, slash), instance: key.slice(slash + 1) };
}

function markSelected(key) {
  for (const item of document.querySelectorAll("#service-list li")) item.classList.toggle("selected", item.dataset.service === key);
  const fragment = new URLSearchParams(location.hash.slice(1));
  fragment.set("service", key);
  history.replaceState(null, "", `#${fragment}`);
}

function renderServices() {
  const list = $("#service-list");
  const items = [...state.services.values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  list.replaceChildren(
    ...items.map((s) =>
      el(
        "li",
        { "data-service": keyOf(s), class: [state.open && state.open.key === keyOf(s) ? "selected" : "", s.gone ? "gone" : ""].join(" ").trim() },
        el(
          "button",
          { type: "button", onclick: () => openService(keyOf(s)) },
          el("span", { class: "service-name" }, s.interface),
          el("span", { class: "service-instance" }, s.instance),
          el("span", { class: "service-meta" }, [s.gone ? "gone" : `v${s.version}`, s.transport].filter(Boolean).join(" · ")),
        ),
      ),
    ),
  );
  if (!items.length) list.append(el("li", { class: "empty" }, state.listingFailure ? "" : "no services found yet"));
  const note = $("#services-updated");
  note.replaceChildren(state.listingFailure ? failureBox(state.listingFailure) : `updated ${clock()}`);
}

async function refreshServices() {
  try {
    const { services } = await request("GET", "/api/services");
    state.listingFailure = null;
    const seen = new Set();
    for (const s of services) {
      seen.add(keyOf(s));
      state.services.set(keyOf(s), s);
    }
    for (const [key, s] of state.services) {
      if (seen.has(key)) continue;
      if (s.gone) state.services.delete(key);
      else s.gone = true;
    }
  } catch (failure) {
    state.listingFailure = failure;
    if (failure instanceof ApiFailure && failure.needsToken) askForToken();
  }
  renderServices();
  if (state.wantOpen && !state.open && !state.opening) {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("service");
    const first = wanted || [...state.services.keys()][0];
    if (first) openService(first);
  }
}

async function pollServices() {
  for (;;) {
    await refreshServices();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// --- The token ------------------------------------------------------------------------------------

function askForToken() {
  const panel = $("#token-panel");
  panel.hidden = false;
  $("#token-input").focus();
}

function setUpToken() {
  const panel = $("#token-panel");
  const input = $("#token-input");
  $("#token-button").addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    input.value = token();
    if (!panel.hidden) input.focus();
  });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    panel.hidden = true;
    updateTokenButton();
    if (state.open) openService(state.open.key);
    else state.wantOpen = true;
    refreshServices();
  });
  updateTokenButton();
}

function updateTokenButton() {
  $("#token-button").textContent = token() ? "token ✓" : "token";
}

// --- Start --------------------------------------------------------------------------------------

takeTokenFromFragment();
$("#gateway-address").textContent = location.host;
setUpToken();
pollServices();
