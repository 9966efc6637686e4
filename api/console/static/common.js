// Shared by every console page: the API key (this tab's sessionStorage only), authorised
// fetches, server-sent events read through fetch (EventSource cannot send a header), and
// small DOM helpers that only ever set text (never HTML), so no API value can inject markup.

const KEY = "genqueue.apiKey";
const NEXT = "genqueue.next";

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  return `HTTP ${status}`;
}

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  location.assign("/console/sign-in");
}

export function toSignIn() {
  sessionStorage.setItem(NEXT, location.pathname + location.search);
  location.replace("/console/sign-in");
}

export function takeNext() {
  const next = sessionStorage.getItem(NEXT);
  sessionStorage.removeItem(NEXT);
  return next && next.startsWith("/console") ? next : "/console";
}

/** A page that shows tenant data: signed in, or off to the sign-in page. */
export function requireKey() {
  if (!getKey()) {
    toSignIn();
    return false;
  }
  const out = document.getElementById("sign-out");
  if (out) out.addEventListener("click", signOut);
  return true;
}

/** fetch with `Authorization: Bearer <key>`; a 401 forgets the key and asks for another. */
export async function api(path, options = {}) {
  const key = getKey();
  if (!key) {
    toSignIn();
    throw new ApiError(401, { detail: "Not signed in" });
  }
  const headers = new Headers(options.headers || {});
  headers.set("Authorization", `Bearer ${key}`);
  const init = { ...options, headers, cache: "no-store", credentials: "omit" };
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !options.keepKeyOn401) {
    sessionStorage.removeItem(KEY);
    toSignIn();
  }
  return response;
}

/** The JSON body of an authorised call; ApiError (with the body) unless 2xx. */
export async function apiJson(path, options = {}) {
  const response = await api(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return { status: response.status, body };
}

/** Reads `data:` events of a server-sent event stream, calling onData with each parsed JSON
 * body, until the server ends it (resolves) or it fails (rejects). */
export async function streamEvents(path, onData, signal) {
  const response = await api(path, { signal, headers: { Accept: "text/event-stream" } });
  if (!response.ok) {
    throw new ApiError(response.status, await response.json().catch(() => null));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data) onData(JSON.parse(data));
    }
  }
}

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function statusBadge(status, node = el("span")) {
  node.className = `badge ${status}`;
  node.textContent = status;
  return node;
}

export function notice(text, bad = false) {
  const node = document.getElementById("notice");
  node.textContent = text;
  node.classList.toggle("bad", bad);
  node.hidden = !text;
}

export function age(iso, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function clock(iso) {
  const t = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
}

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** Every file object ({url, content_type?}) anywhere in a model output. */
export function filesIn(value, found = []) {
  if (Array.isArray(value)) value.forEach((v) => filesIn(v, found));
  else if (value && typeof value === "object") {
    if (typeof value.url === "string" && /^(https?:|data:|\/)/.test(value.url)) found.push(value);
    else Object.values(value).forEach((v) => filesIn(v, found));
  }
  return found;
}

/** "image", "video", "audio" or "file": how a file is shown. */
export function mediaKind(file) {
  const type = file.content_type || "";
  for (const kind of ["image", "video", "audio"]) if (type.startsWith(`${kind}/`)) return kind;
  if (!type && /\.(jpe?g|png|webp|gif)(\?|$)/i.test(file.url)) return "image";
  if (!type && /\.(mp4|webm|mov)(\?|$)/i.test(file.url)) return "video";
  if (!type && /\.(wav|mp3|ogg|flac)(\?|$)/i.test(file.url)) return "audio";
  return "file";
}

export function isImage(file) {
  const type = file.content_type || "";
  return type.startsWith("image/") || (!type && /\.(jpe?g|png|webp|gif)(\?|$)/i.test(file.url));
}
