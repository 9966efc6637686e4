// The queue-position chart of a generation's page: a step line of the positions upstream (or
// genqueue's queue) reported, drawn as SVG from the generation's events.

const NS = "http://www.w3.org/2000/svg";

/** [{at: ms, position}] from the events, oldest first. */
export function positions(events) {
  const points = [];
  for (const event of events) {
    const runs = event.kind === "queue_position" && event.detail && event.detail.positions;
    if (Array.isArray(runs)) {
      for (const [at, position] of runs) points.push({ at: Date.parse(at), position });
    } else if (event.queue_position !== null && event.queue_position !== undefined) {
      points.push({ at: Date.parse(event.at), position: event.queue_position });
    }
  }
  points.sort((a, b) => a.at - b.at);
  // The last position held until the job left the queue (started, or ended): a flat step to
  // that moment, so a single report still reads as a line over time.
  const last = points[points.length - 1];
  const left = last && events.find((e) => LEFT_QUEUE.has(e.status) && Date.parse(e.at) > last.at);
  if (left) points.push({ at: Date.parse(left.at), position: last.position });
  return points;
}

const LEFT_QUEUE = new Set(["running", "completed", "failed", "cancelled"]);

function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

export function drawChart(container, points) {
  if (points.length === 0) return false;
  const width = 480, height = 160, left = 36, bottom = 22, top = 8, right = 8;
  const t0 = points[0].at;
  const span = Math.max(1, points[points.length - 1].at - t0);
  const most = Math.max(1, ...points.map((p) => p.position));
  const x = (at) => left + ((at - t0) / span) * (width - left - right);
  const y = (pos) => top + (1 - pos / most) * (height - top - bottom);
  let d = `M${x(points[0].at)},${y(points[0].position)}`;
  for (const p of points.slice(1)) d += ` H${x(p.at)} V${y(p.position)}`;
  const first = points[0].position, last = points[points.length - 1].position;
  const label = `Queue position from ${first} to ${last} over ${(span / 1000).toFixed(1)} s`;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  const title = svg("title", {});
  title.textContent = label;
  chart.append(
    title,
    svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
    svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
    svg("path", { class: "line", d }),
  );
  if (points.length === 1) {
    chart.append(svg("circle", { cx: x(points[0].at), cy: y(points[0].position), r: 4, fill: "currentColor", class: "dot" }));
  }
  for (const [text, tx, ty, anchor] of [
    [String(most), left - 4, top + 8, "end"],
    ["0", left - 4, height - bottom, "end"],
    ["0 s", left, height - 6, "start"],
    [`${(span / 1000).toFixed(1)} s`, width - right, height - 6, "end"],
  ]) {
    const node = svg("text", { x: tx, y: ty, "text-anchor": anchor });
    node.textContent = text;
    chart.append(node);
  }
  container.replaceChildren(chart);
  return true;
}
