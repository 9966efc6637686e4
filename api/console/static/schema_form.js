// A form generated from a model's input JSON Schema: one field per property, its widget,
// range, choices and default from the schema; values read back typed as the schema says.

import { el } from "./common.js";

/** The schema a property's value follows, without the `null` branch of an optional one. */
function effective(prop) {
  if (Array.isArray(prop.type)) {
    const types = prop.type.filter((t) => t !== "null");
    return { ...prop, type: types[0], nullable: types.length < prop.type.length };
  }
  const branches = prop.anyOf || prop.oneOf;
  if (!branches) return { ...prop, nullable: false };
  const real = branches.filter((b) => b.type !== "null");
  const pick = real.find((b) => b.enum) || real[0] || {};
  return { ...pick, default: prop.default, description: prop.description, title: prop.title,
    nullable: real.length < branches.length };
}

function humanize(name) {
  const text = name.replaceAll("_", " ");
  return text[0].toUpperCase() + text.slice(1);
}

function widget(name, spec) {
  const id = `field-${name}`;
  const common = { id, name, "aria-describedby": `${id}-help ${id}-error` };
  if (spec.enum) {
    const select = el("select", common);
    if (spec.default === undefined || spec.default === null) select.append(el("option", { value: "" }, "(default)"));
    for (const value of spec.enum) select.append(el("option", { value: String(value) }, String(value)));
    if (spec.default !== undefined && spec.default !== null) select.value = String(spec.default);
    return select;
  }
  if (spec.type === "boolean") {
    return el("input", { ...common, type: "checkbox", checked: spec.default === true });
  }
  if (spec.type === "integer" || spec.type === "number") {
    return el("input", {
      ...common, type: "number", inputmode: spec.type === "integer" ? "numeric" : "decimal",
      min: spec.minimum, max: spec.maximum, step: spec.type === "integer" ? 1 : "any",
      value: spec.default ?? undefined,
    });
  }
  if (spec.type === "array" || name === "prompt" || (spec.maxLength || 0) > 500) {
    return el("textarea", { ...common, rows: spec.type === "array" ? 3 : 4, maxlength: spec.maxLength });
  }
  return el("input", { ...common, type: "text", value: spec.default ?? undefined });
}

function help(spec, required) {
  const bits = [];
  if (spec.description) bits.push(spec.description);
  if (spec.minimum !== undefined || spec.maximum !== undefined) {
    bits.push(`${spec.minimum ?? "…"} to ${spec.maximum ?? "…"}`);
  }
  if (spec.type === "array") bits.push("one per line");
  if (spec.default !== undefined && spec.default !== null) bits.push(`default ${JSON.stringify(spec.default)}`);
  bits.push(required ? "required" : "optional");
  return bits.join(" · ");
}

/** Builds the fields into `container`; returns {read(), fill(values), showErrors(items), clear()}. */
export function buildForm(container, schema) {
  const required = new Set(schema.required || []);
  const fields = {};
  const nodes = [];
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const spec = effective(prop);
    const input = widget(name, spec);
    if (required.has(name)) input.setAttribute("aria-required", "true");
    const label = el("label", { for: input.id }, spec.title && spec.title !== humanize(name) ? spec.title : humanize(name));
    const helpText = el("small", { id: `${input.id}-help` }, help(spec, required.has(name)));
    const error = el("p", { id: `${input.id}-error`, class: "field-error", hidden: true });
    const body = spec.type === "boolean"
      ? [el("label", { class: "check", for: input.id }, input, label.textContent), helpText, error]
      : [label, input, helpText, error];
    nodes.push(el("div", { class: "field", "data-field": name }, ...body));
    fields[name] = { input, spec, error, required: required.has(name) };
  }
  container.replaceChildren(...nodes);

  function read() {
    const values = {};
    for (const [name, { input, spec, required: needed }] of Object.entries(fields)) {
      if (spec.type === "boolean") {
        if (input.checked || spec.default !== undefined) values[name] = input.checked;
        continue;
      }
      const text = input.value;
      if (text.trim() === "" && !needed) continue;
      if (spec.type === "array") values[name] = text.split("\n").map((s) => s.trim()).filter(Boolean);
      else if ((spec.type === "integer" || spec.type === "number") && text.trim() !== "") values[name] = Number(text);
      else if (spec.type === "integer" || spec.type === "number") continue;
      else values[name] = text;
    }
    return values;
  }

  function fill(values) {
    for (const [name, value] of Object.entries(values)) {
      const field = fields[name];
      if (!field) continue;
      if (field.spec.type === "boolean") field.input.checked = Boolean(value);
      else if (Array.isArray(value)) field.input.value = value.join("\n");
      else field.input.value = String(value);
    }
  }

  function clear() {
    for (const { input, error } of Object.values(fields)) {
      input.removeAttribute("aria-invalid");
      error.hidden = true;
      error.textContent = "";
    }
  }

  /** Puts each 422 item next to the field its `loc` names; returns the items no field took. */
  function showErrors(items, prefix) {
    const left = [];
    let first = null;
    for (const item of items) {
      const loc = item.loc || [];
      const name = loc.length > prefix.length ? loc[prefix.length] : undefined;
      const field = prefix.every((p, i) => loc[i] === p) ? fields[name] : undefined;
      if (!field) {
        left.push(item);
        continue;
      }
      field.input.setAttribute("aria-invalid", "true");
      field.error.textContent = field.error.textContent ? `${field.error.textContent}; ${item.msg}` : item.msg;
      field.error.hidden = false;
      first = first || field.input;
    }
    if (first) first.focus();
    return left;
  }

  return { read, fill, clear, showErrors };
}
