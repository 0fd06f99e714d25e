// The gateway's JSON routes and event streams, as the console uses them: every request carries
// the token (when one is set), event streams are read with fetch (EventSource cannot send a
// header), and failures come back as ApiFailure with the gateway's error body.

const TOKEN_KEY = "switchboard-console-token";

/// The bearer token: from the URL fragment `#token=…` (then removed from the address bar), else
/// the one entered earlier in this tab.
export function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/// A failed request. `kind` is the gateway's (`remote`, `usage`, `not_found`, `transport`,
/// `timeout`, `local`), or `unreachable` when no answer came from the gateway at all.
export class ApiFailure extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.kind = error.kind || "unknown";
  }

  get needsToken() {
    return this.status === 401;
  }
}

function headers(body) {
  const h = { Accept: "application/json" };
  if (body !== undefined) h["Content-Type"] = "application/json";
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

/// Sends one request; resolves to the JSON reply, rejects with an ApiFailure.
export async function request(method, path, body, signal) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiFailure(0, { kind: "unreachable", message: `the gateway did not answer: ${e.message}` });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = json && json.error ? json.error : { kind: "unknown", message: text || response.statusText };
    throw new ApiFailure(response.status, error);
  }
  if (json === null) {
    throw new ApiFailure(response.status, { kind: "local", message: "the gateway's reply is not JSON" });
  }
  return json;
}

/// `/api/services/<interface>/<instance>`
export function servicePath(service) {
  return `/api/services/${encodeURIComponent(service.interface)}/${encodeURIComponent(service.instance)}`;
}

/// Follows an event stream until `signal` aborts it or it ends: `onEvent(name, data)` per event.
/// Resolves when the stream ends; rejects with an ApiFailure when it cannot be opened or breaks.
export async function follow(path, onEvent, signal) {
  let response;
  try {
    response = await fetch(path, { headers: { ...headers(), Accept: "text/event-stream" }, signal });
  } catch (e) {
    if (e.name === "AbortError") return;
    throw new ApiFailure(0, { kind: "unreachable", message: `the gateway did not answer: ${e.message}` });
  }
  if (!response.ok) {
    let error = { kind: "unknown", message: response.statusText };
    try {
      error = (await response.json()).error || error;
    } catch {
      // keep the status text
    }
    throw new ApiFailure(response.status, error);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        let name = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
        }
        if (data) onEvent(name, JSON.parse(data));
      }
    }
  } catch (e) {
    if (e.name === "AbortError" || (signal && signal.aborted)) return;
    throw new ApiFailure(0, { kind: "unreachable", message: `the event stream broke: ${e.message}` });
  }
}
