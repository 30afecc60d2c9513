// The console's only script. It never builds HTML from strings: every value
// goes into the page as text (textContent), so an event cannot inject markup.
"use strict";

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "—" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace("Z", "");
}

// Live events: rows from the server's event stream, filtered and pausable here.
function live(table) {
  const body = table.tBodies[0];
  const form = document.getElementById("filters");
  const status = document.getElementById("status");
  const pause = document.getElementById("pause");
  const MAX_ROWS = 500;
  let paused = false;
  let held = [];

  const filters = () => ({
    type: form.elements.type.value,
    task: form.elements.task.value.trim(),
    correlation: form.elements.correlation.value.trim().toLowerCase(),
  });
  const matches = (tr, f) =>
    (!f.type || tr.dataset.type === f.type) &&
    (!f.task || tr.dataset.task === f.task) &&
    (!f.correlation || tr.dataset.correlation.startsWith(f.correlation));
  const refilter = () => {
    const f = filters();
    for (const tr of body.rows) tr.hidden = !matches(tr, f);
  };
  form.addEventListener("input", refilter);
  form.addEventListener("submit", (e) => e.preventDefault());

  const show = (ev) => {
    const tr = document.createElement("tr");
    tr.dataset.type = ev.event_type;
    tr.dataset.task = String(ev.task_id);
    tr.dataset.correlation = ev.correlation_id;
    tr.dataset.eventId = ev.event_id;
    cell(tr, when(ev.processed_at));
    cell(tr, ev.event_type, "type");
    const task = cell(tr, "", "task");
    const a = document.createElement("a");
    a.href = "/console/tasks/" + encodeURIComponent(ev.task_id);
    a.textContent = String(ev.task_id);
    task.appendChild(a);
    cell(tr, ev.title, "title");
    cell(tr, ev.topic + " / " + ev.partition + " @ " + ev.offset, "mono");
    cell(tr, ev.correlation_id, "mono");
    cell(tr, ev.trace_id, "mono trace");
    tr.hidden = !matches(tr, filters());
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  };

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      held.forEach(show);
      held = [];
    }
    status.textContent = paused ? "paused" : "live";
  });

  const source = new EventSource(table.dataset.stream);
  source.addEventListener("open", () => { status.textContent = paused ? "paused" : "live"; });
  source.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  source.addEventListener("unavailable", () => { status.textContent = "event database unavailable"; });
  source.addEventListener("task-event", (m) => {
    const ev = JSON.parse(m.data);
    if (paused) {
      held.push(ev);
      if (held.length > MAX_ROWS) held.shift();
    } else {
      show(ev);
    }
  });
}

// Dead letters: replay one, or every pending one of a class, with the token.
function deadLetters() {
  const auth = document.getElementById("replay-auth");
  if (!auth) return;
  const result = document.getElementById("replay-result");
  auth.addEventListener("submit", (e) => e.preventDefault());
  for (const button of document.querySelectorAll("button.replay")) {
    button.addEventListener("click", async () => {
      const body = { reason: auth.elements.reason.value };
      if (button.dataset.deadLetter) body.dead_letter = button.dataset.deadLetter;
      else body.error_class = button.dataset.errorClass;
      result.className = "";
      result.textContent = "replaying…";
      try {
        const resp = await fetch("/console/dead-letters/replay", {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: "Bearer " + auth.elements.token.value,
          },
          body: JSON.stringify(body),
        });
        const answer = await resp.json();
        if (resp.ok) {
          result.className = "ok";
          result.textContent = "Replayed " + answer.replayed + " (action " + answer.action_id + "). Reloading…";
          setTimeout(() => location.reload(), 1500);
        } else {
          result.className = "error";
          result.textContent = "Refused (" + resp.status + "): " + (answer.detail || answer.title || "");
        }
      } catch (err) {
        result.className = "error";
        result.textContent = "Failed: " + err;
      }
    });
  }
}

// Health: the chart and the alerts refresh every 5 s.
function health() {
  const chart = document.getElementById("chart");
  const alerts = document.getElementById("alerts");
  if (!chart) return;
  setInterval(async () => {
    chart.src = chart.dataset.refresh + "?t=" + Date.now();
    try {
      const resp = await fetch(alerts.dataset.refresh);
      if (resp.ok) {
        // The fragment is the server's own escaped markup, parsed inertly.
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        alerts.replaceChildren(...doc.body.childNodes);
      }
    } catch (_) { /* the next tick tries again */ }
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("live");
  if (table) live(table);
  deadLetters();
  health();
});
