import { apiJson, el, notice, requireKey, statusBadge } from "./common.js";

const REFRESH_MS = 5000;

function seconds(value) {
  return value === null ? "—" : `${value.toFixed(1)} s`;
}

async function refresh() {
  if (document.visibilityState !== "visible") {
    setTimeout(refresh, REFRESH_MS);
    return;
  }
  try {
    const { body } = await apiJson("/v1/overview");
    document.getElementById("counts").replaceChildren(
      ...Object.entries(body.counts).map(([status, n]) => el("li", {}, statusBadge(status), ` ${n}`)),
    );
    const cap = body.live_cap;
    document.getElementById("live").textContent = cap === null
      ? `${body.live} live upstream (no cap)`
      : `${body.live} of ${cap} live upstream`;
    const meter = document.getElementById("live-meter");
    meter.max = cap || Math.max(1, body.live);
    meter.value = body.live;
    const t = body.last_hour;
    document.getElementById("ttr").textContent = t.completed === 0
      ? "No generation completed in the last hour."
      : `p50 ${seconds(t.p50_seconds)} · p99 ${seconds(t.p99_seconds)} over ${t.completed} completed`;
    if (/^https?:\/\//.test(body.flower_url)) document.getElementById("flower").href = body.flower_url;
    notice("");
  } catch (error) {
    notice(`Could not load the overview: ${error.message}`, true);
  }
  setTimeout(refresh, REFRESH_MS);
}

if (requireKey()) refresh();
