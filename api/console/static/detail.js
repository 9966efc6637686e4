import {
  ApiError, TERMINAL, apiJson, clock, el, filesIn, mediaKind, notice, requireKey, statusBadge,
  streamEvents,
} from "./common.js";
import { drawChart, positions } from "./chart.js";

const id = document.getElementById("generation").dataset.id;
const $ = (name) => document.getElementById(name);
let current = null;
let reloading = null;

function describeEvent(event) {
  const parts = [event.kind.replaceAll("_", " ")];
  if (event.status) parts.push(`→ ${event.status}`);
  const runs = event.kind === "queue_position" && event.detail && event.detail.positions;
  if (Array.isArray(runs)) parts.push(`positions ${runs.map((r) => r[1]).join(" → ")}`);
  else if (event.queue_position !== null) parts.push(`position ${event.queue_position}`);
  if (event.detail && !Array.isArray(runs)) {
    const text = JSON.stringify(event.detail);
    parts.push(text.length > 240 ? `${text.slice(0, 239)}…` : text);
  }
  return parts.join(" · ");
}

function showPosition(gen) {
  let text = "";
  if (gen.status === "queued" && gen.queue_position !== null) text = `position ${gen.queue_position} in upstream's queue`;
  else if (gen.local_queue_position !== null && gen.local_queue_position !== undefined) {
    text = `${gen.local_queue_position} ahead in genqueue's queue`;
  }
  if (gen.cancel_requested_at && !TERMINAL.has(gen.status)) text += " · cancel requested";
  $("position").textContent = text;
}

function showImages(gen) {
  const files = filesIn(gen.result);
  const section = $("images-section");
  section.hidden = files.length === 0;
  const prompt = String((gen.input && gen.input.prompt) || "");
  $("images").replaceChildren(
    ...files.map((file, i) => {
      const name = `Output ${i + 1} of ${files.length}`;
      const kind = mediaKind(file);
      const label = `${name}: ${prompt.slice(0, 120)}`;
      if (kind === "video" || kind === "audio") {
        const player = el(kind, { src: file.url, controls: true, preload: "metadata", "aria-label": label });
        return el("figure", {}, player, el("figcaption", {}, el("a", { href: file.url }, `${name} (${file.content_type || kind})`)));
      }
      const body = kind === "image"
        ? el("img", { src: file.url, alt: label, width: file.width, height: file.height })
        : el("span", {}, `${name} (${file.content_type || "file"})`);
      return el("figure", {}, el("a", { href: file.url, rel: "noopener" }, body));
    }),
  );
}

function showError(gen) {
  const section = $("error-section");
  section.hidden = !gen.error;
  if (!gen.error) return;
  const { message, type, http_status: code, body } = gen.error;
  $("error-message").textContent = [type, code ? `HTTP ${code}` : null, message].filter(Boolean).join(" · ");
  $("error-body").textContent = body === undefined || body === null ? "" : JSON.stringify(body, null, 2);
  $("error-body").hidden = body === undefined || body === null;
}

function render(gen) {
  current = gen;
  document.title = `${gen.status} · ${gen.id.slice(0, 8)} · genqueue console`;
  statusBadge(gen.status, $("status"));
  showPosition(gen);
  $("gen-id").textContent = gen.id;
  $("model").textContent = gen.model;
  $("upstream-id").textContent = gen.upstream_request_id || "—";
  $("created").textContent = new Date(gen.created_at).toLocaleString();
  $("media").textContent = gen.media_status || "—";
  $("input").textContent = JSON.stringify(gen.input, null, 2);
  $("cancel").hidden = TERMINAL.has(gen.status);
  $("timeline").replaceChildren(
    ...gen.events.map((e) => el("li", {}, el("time", { datetime: e.at }, clock(e.at)), describeEvent(e))),
  );
  drawChart($("chart"), positions(gen.events));
  showImages(gen);
  showError(gen);
}

async function showDeliveries(gen) {
  if (!gen.webhook_url) return;
  const { body: log } = await apiJson(`/v1/generations/${id}/deliveries`);
  $("deliveries-section").hidden = false;
  const state = log.delivered_at ? `delivered ${clock(log.delivered_at)}`
    : log.stopped_at ? `stopped ${clock(log.stopped_at)}`
    : log.next_attempt_at ? `next attempt ${clock(log.next_attempt_at)}` : "not sent yet";
  $("deliveries-summary").textContent = `${log.webhook_url} · ${state}`;
  $("deliveries").replaceChildren(
    ...log.attempts.map((a) => el(
      "li", {}, el("time", { datetime: a.at }, clock(a.at)),
      `attempt ${a.attempt} · ${a.outcome} · ${a.error || `HTTP ${a.http_status}`} · ${a.duration_ms} ms`,
    )),
  );
}

async function load() {
  try {
    const { body: gen } = await apiJson(`/v1/generations/${id}`);
    render(gen);
    await showDeliveries(gen);
    return gen;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      $("status").textContent = "not found";
      notice("No such generation (or it is not yours).", true);
      return null;
    }
    notice(`Could not load the generation: ${error.message}`, true);
    throw error;
  }
}

function reload() {
  // One fetch at a time; a change that arrives meanwhile asks for one more.
  if (reloading) {
    reloading.again = true;
    return;
  }
  reloading = { again: false };
  load().finally(() => {
    const again = reloading.again;
    reloading = null;
    if (again) reload();
  });
}

function onStatus(body) {
  if (current && body.status !== current.status) statusBadge(body.status, $("status"));
  reload();
}

async function follow() {
  // The /v1 status stream; if it cannot be held (e.g. the key's stream limit), poll instead.
  for (;;) {
    try {
      await streamEvents(`/v1/generations/${id}/stream`, onStatus);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return;
      await new Promise((done) => setTimeout(done, 2000));
      reload();
    }
    if (current && TERMINAL.has(current.status) && current.media_status !== "pending") {
      reload();
      return;
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}

async function cancel() {
  const button = $("cancel");
  button.disabled = true;
  const answer = $("cancel-answer");
  try {
    const { status, body } = await apiJson(`/v1/generations/${id}/cancel`, { method: "POST" });
    answer.textContent = status === 200 ? "Cancelled: it had not been sent upstream."
      : body.outcome === "requested" ? "Cancel requested: upstream was asked; it may still complete."
      : "A cancel was already requested.";
    render(body.generation);
  } catch (error) {
    answer.textContent = `Cancel refused: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

if (requireKey()) {
  $("cancel").addEventListener("click", cancel);
  load().then((gen) => {
    if (gen && !(TERMINAL.has(gen.status) && gen.media_status !== "pending")) follow();
  });
}
