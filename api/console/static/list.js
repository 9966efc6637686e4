import { age, apiJson, el, filesIn, isImage, notice, requireKey, statusBadge } from "./common.js";
import { listModels } from "./schema_source.js";

const REFRESH_MS = 2000;
const PAGE_SIZE = 25;
const body = document.querySelector("#generations tbody");
const form = document.getElementById("filters");
const older = document.getElementById("older");
const newer = document.getElementById("newer");
const empty = document.getElementById("empty");

let cursors = [null]; // the cursor of each page shown so far; the last one is on screen
let nextCursor = null;
let timer = null;

function query() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const data = new FormData(form);
  for (const name of ["status", "model", "prompt"]) {
    const value = String(data.get(name) || "").trim();
    if (value) params.set(name, value);
  }
  const cursor = cursors[cursors.length - 1];
  if (cursor) params.set("cursor", cursor);
  return params;
}

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function position(gen) {
  if (gen.status === "queued" && gen.queue_position !== null) return `#${gen.queue_position} upstream`;
  if (gen.local_queue_position !== null && gen.local_queue_position !== undefined) {
    return `#${gen.local_queue_position} here`;
  }
  return "";
}

function row(gen) {
  const prompt = String((gen.input && gen.input.prompt) || "(no prompt)");
  const image = filesIn(gen.result).find(isImage);
  const thumb = image
    ? el("img", { class: "thumb", src: image.url, alt: `Thumbnail: ${truncate(prompt, 60)}`, loading: "lazy" })
    : "";
  const link = el("a", { href: `/console/generations/${gen.id}` }, truncate(prompt, 90));
  return el(
    "tr",
    { "data-id": gen.id, "data-status": gen.status },
    el("td", {}, statusBadge(gen.status)),
    el("td", {}, thumb),
    el("td", { class: "prompt" }, link),
    el("td", { class: "model" }, gen.model),
    el("td", {}, el("time", { datetime: gen.created_at, title: gen.created_at }, age(gen.created_at))),
    el("td", {}, position(gen)),
  );
}

async function refresh() {
  clearTimeout(timer);
  try {
    const { body: page } = await apiJson(`/v1/generations?${query()}`);
    body.replaceChildren(...page.items.map(row));
    empty.hidden = page.items.length > 0;
    nextCursor = page.next_cursor;
    older.disabled = !nextCursor;
    newer.disabled = cursors.length <= 1;
    notice("");
  } catch (error) {
    notice(`Could not load generations: ${error.message}`, true);
  }
  timer = setTimeout(tick, REFRESH_MS);
}

function tick() {
  if (document.visibilityState === "visible") refresh();
  else timer = setTimeout(tick, REFRESH_MS);
}

async function loadModels() {
  const select = document.getElementById("f-model");
  try {
    for (const model of await listModels()) select.append(el("option", { value: model.id }, model.id));
  } catch {
    /* the filter still works without the list: "any" */
  }
}

if (requireKey()) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    refresh();
  });
  older.addEventListener("click", () => {
    cursors.push(nextCursor);
    refresh();
  });
  newer.addEventListener("click", () => {
    cursors.pop();
    refresh();
  });
  loadModels();
  refresh();
}
