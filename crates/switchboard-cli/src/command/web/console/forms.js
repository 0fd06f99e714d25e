// Forms built from an interface's declared types (the description the gateway serves), which
// check what was typed before anything is sent, and the rendering of values as they come back.

/// Creates an element: `el("div", { class: "x" }, child, "text")`.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/// What was typed does not fit the declared type.
export class Invalid extends Error {}

const INT_RANGES = {
  int8: [-128n, 127n],
  int16: [-32768n, 32767n],
  int32: [-2147483648n, 2147483647n],
  int64: [-9223372036854775808n, 9223372036854775807n],
  uint8: [0n, 255n],
  uint16: [0n, 65535n],
  uint32: [0n, 4294967295n],
  uint64: [0n, 18446744073709551615n],
};

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const DURATION = /^[-+]?P(?=[\dT])(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/// A short name for a type: `int32`, `list of float`, `Mode`, `optional string`.
export function typeName(type) {
  switch (type.kind) {
    case "integer":
    case "float":
      return type.format;
    case "enum":
    case "struct":
      return type.name;
    case "array":
      return `list of ${typeName(type.item)}`;
    case "map":
      return `map of ${typeName(type.value)}`;
    case "optional":
      return `optional ${typeName(type.inner)}`;
    case "binary":
      return "bytes (base64)";
    case "date_time":
      return "datetime";
    default:
      return type.kind;
  }
}

/// A hint shown under an input.
function hintFor(type) {
  switch (type.kind) {
    case "date_time":
      return "RFC 3339, like 2026-12-07T09:30:00Z";
    case "duration":
      return "ISO 8601, like PT10M or PT1.5S";
    case "binary":
      return "padded standard base64, like aGVsbG8=";
    default:
      return null;
  }
}

/// An editor for one value of `type`: `{ node, read() }`; `read` returns the value or throws
/// Invalid (after marking the input).
function editor(iface, type, label) {
  const fail = (input, message) => {
    input.classList.add("invalid");
    input.title = message;
    throw new Invalid(`${label}: ${message}`);
  };
  const clear = (input) => {
    input.classList.remove("invalid");
    input.removeAttribute("title");
  };
  switch (type.kind) {
    case "boolean": {
      const input = el("input", { type: "checkbox", "aria-label": label });
      return { node: el("label", { class: "check" }, input, " true"), read: () => input.checked };
    }
    case "integer": {
      const input = el("input", { type: "text", inputmode: "numeric", "aria-label": label, placeholder: type.format });
      const read = () => {
        clear(input);
        const text = input.value.trim();
        if (!/^[-+]?\d+$/.test(text)) fail(input, `a whole number (${type.format}) is needed`);
        const value = BigInt(text);
        const [min, max] = INT_RANGES[type.format];
        if (value < min || value > max) fail(input, `${type.format} holds ${min} to ${max}`);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
          fail(input, "beyond ±2^53, which the console cannot send exactly; use `switchboard call`");
        }
        return Number(value);
      };
      return { node: input, read };
    }
    case "float": {
      const input = el("input", { type: "text", inputmode: "decimal", "aria-label": label, placeholder: type.format });
      const read = () => {
        clear(input);
        const text = input.value.trim();
        const value = Number(text);
        if (text === "" || !Number.isFinite(value)) fail(input, "a finite number is needed");
        if (type.format === "float32" && Math.abs(value) > 3.4028234663852886e38) fail(input, "too large for float32");
        return value;
      };
      return { node: input, read };
    }
    case "string":
    case "date_time":
    case "duration":
    case "binary": {
      const attributes = { "aria-label": label, placeholder: hintFor(type) || "" };
      const input = type.kind === "binary" ? el("textarea", { rows: 2, ...attributes }) : el("input", { type: "text", ...attributes });
      const read = () => {
        clear(input);
        const text = type.kind === "string" ? input.value : input.value.trim();
        if (type.kind === "date_time" && !(DATETIME.test(text) && !Number.isNaN(Date.parse(text)))) {
          fail(input, "an RFC 3339 date and time is needed, like 2026-12-07T09:30:00Z");
        }
        if (type.kind === "duration" && !DURATION.test(text)) fail(input, "an ISO 8601 duration is needed, like PT10M");
        if (type.kind === "binary" && !BASE64.test(text)) fail(input, "padded standard base64 is needed");
        return text;
      };
      let node = input;
      if (type.kind === "date_time") {
        const now = el("button", { type: "button", class: "small", onclick: () => (input.value = new Date().toISOString()) }, "now");
        node = el("span", { class: "with-button" }, input, now);
      }
      return { node, read };
    }
    case "enum": {
      const definition = iface.enums.find((e) => e.name === type.name);
      const select = el(
        "select",
        { "aria-label": label },
        definition.values.map((v) => el("option", { value: v.name, title: v.description || "" }, `${v.name} (${v.value})`)),
      );
      return { node: select, read: () => select.value };
    }
    case "struct": {
      const definition = iface.structs.find((s) => s.name === type.name);
      const form = fieldsForm(iface, definition.fields, label);
      return { node: el("fieldset", { class: "nested" }, el("legend", {}, type.name), form.node), read: form.read };
    }
    case "optional": {
      // Built when first ticked: a recursive struct recurses through an optional member.
      let inner = null;
      const given = el("input", { type: "checkbox", "aria-label": `${label} given` });
      const body = el("div", { class: "optional-body", hidden: true });
      given.addEventListener("change", () => {
        if (given.checked && !inner) {
          inner = editor(iface, type.inner, label);
          body.append(inner.node);
        }
        body.hidden = !given.checked;
      });
      const node = el("div", { class: "optional" }, el("label", { class: "check" }, given, " give a value"), body);
      return { node, read: () => (given.checked ? inner.read() : undefined) };
    }
    case "array": {
      const items = [];
      const list = el("div", { class: "items" });
      const add = () => {
        const item = editor(iface, type.item, `${label}[${items.length}]`);
        const row = el("div", { class: "item" }, item.node);
        const entry = { item, row };
        row.append(
          el("button", {
            type: "button",
            class: "small remove",
            title: "remove",
            onclick: () => {
              items.splice(items.indexOf(entry), 1);
              row.remove();
            },
          }, "✕"),
        );
        items.push(entry);
        list.append(row);
      };
      const node = el("div", { class: "collection" }, list, el("button", { type: "button", class: "small", onclick: add }, "+ item"));
      return { node, read: () => items.map((e) => e.item.read()) };
    }
    case "map": {
      const entries = [];
      const list = el("div", { class: "items" });
      const add = () => {
        const key = el("input", { type: "text", placeholder: "key", class: "key", "aria-label": `${label} key` });
        const value = editor(iface, type.value, `${label}[key]`);
        const row = el("div", { class: "item" }, key, value.node);
        const entry = { key, value, row };
        row.append(
          el("button", {
            type: "button",
            class: "small remove",
            title: "remove",
            onclick: () => {
              entries.splice(entries.indexOf(entry), 1);
              row.remove();
            },
          }, "✕"),
        );
        entries.push(entry);
        list.append(row);
      };
      const read = () => {
        const out = {};
        for (const { key, value } of entries) {
          key.classList.remove("invalid");
          if (Object.hasOwn(out, key.value)) {
            key.classList.add("invalid");
            throw new Invalid(`${label}: the key \`${key.value}\` is given twice`);
          }
          out[key.value] = value.read();
        }
        return out;
      };
      const node = el("div", { class: "collection" }, list, el("button", { type: "button", class: "small", onclick: add }, "+ entry"));
      return { node, read };
    }
    default:
      return { node: el("em", {}, `cannot edit ${type.kind}`), read: () => { throw new Invalid(`${label}: unknown type`); } };
  }
}

/// A form for a list of fields: `{ node, read() }`. `read` returns the object of values, or
/// throws an Error listing every field that does not fit (each marked in the form).
export function fieldsForm(iface, fields, prefix = "") {
  const editors = fields.map((field) => {
    const label = prefix ? `${prefix}.${field.name}` : field.name;
    const edit = editor(iface, field.type, label);
    const hint = hintFor(field.type.kind === "optional" ? field.type.inner : field.type);
    const node = el(
      "div",
      { class: "field", "data-field-path": label },
      el("div", { class: "field-label" }, el("span", { class: "name" }, field.name), el("span", { class: "type" }, typeName(field.type))),
      edit.node,
      field.description || hint ? el("div", { class: "hint" }, [field.description, hint].filter(Boolean).join(" · ")) : null,
    );
    return { field, edit, node };
  });
  const read = () => {
    const value = {};
    const problems = [];
    for (const { field, edit } of editors) {
      try {
        const v = edit.read();
        if (v !== undefined) value[field.name] = v;
      } catch (e) {
        if (!(e instanceof Invalid)) throw e;
        problems.push(e.message);
      }
    }
    if (problems.length) throw new Invalid(problems.join("\n"));
    return value;
  };
  const node = fields.length
    ? el("div", { class: "fields" }, editors.map((e) => e.node))
    : el("div", { class: "fields empty" }, "no arguments");
  return { node, read };
}

/// A value as text for display: enums by name (and number), structs and lists as JSON.
export function formatValue(iface, type, value) {
  if (value === null || value === undefined) return "—";
  switch (type.kind) {
    case "optional":
      return formatValue(iface, type.inner, value);
    case "enum": {
      const definition = iface.enums.find((e) => e.name === type.name);
      const known = definition && definition.values.find((v) => v.value === value || v.name === value);
      return known ? `${known.name} (${known.value})` : String(value);
    }
    case "string":
    case "date_time":
    case "duration":
    case "binary":
      return String(value);
    case "float":
      // The shortest text of the value at the format's precision: 22.6, not 22.600000000000044.
      return typeof value === "number" ? String(Number(value.toPrecision(type.format === "float32" ? 7 : 15))) : String(value);
    case "integer":
    case "boolean":
      return String(value);
    case "array":
      return Array.isArray(value) ? `[${value.map((v) => formatValue(iface, type.item, v)).join(", ")}]` : JSON.stringify(value);
    default:
      return JSON.stringify(value);
  }
}

/// A table of `fields` from `value` (the reply, a property value, a signal's arguments).
export function valueTable(iface, fields, value) {
  if (!fields.length) return el("div", { class: "values empty" }, "done (no values)");
  return el(
    "dl",
    { class: "values" },
    fields.map((f) => [el("dt", {}, f.name), el("dd", { "data-field": f.name }, formatValue(iface, f.type, value ? value[f.name] : undefined))]),
  );
}
