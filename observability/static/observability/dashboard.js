/* The operations dashboard: draw the figures, redraw when something changes.
 * The figures come from #operations-data, then from data.json whenever the
 * runs or inbox websocket says a run or a request moved (at most once a
 * second), and every 30 s for the time-based panels. */
(function () {
  "use strict";
  const root = document.getElementById("operations");
  if (!root || !window.Chart) return;
  const dataUrl = root.dataset.dataUrl;
  const COLORS = {
    queued: "#8c8c8c", running: "#2f6db5", waiting: "#d89b1e",
    succeeded: "#2a7d2a", failed: "#ba2121", cancelled: "#6b4f9e",
  };
  const charts = {};

  function chart(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
      return;
    }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 120) return Math.round(value) + " s";
    if (value < 7200) return Math.round(value / 60) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  function rows(tbodySelector, items, cells, empty) {
    const body = document.querySelector(tbodySelector);
    body.replaceChildren();
    if (!items.length) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = 8;
      td.textContent = empty;
      return;
    }
    for (const item of items) cells(body.insertRow(), item);
  }

  function cell(tr, value) { tr.insertCell().textContent = value; }

  function draw(data) {
    const runs = data.runs_over_time;
    chart("chart-runs", {
      type: "bar",
      data: {
        labels: runs.labels,
        datasets: Object.keys(runs.series).map((status) => ({
          label: status, data: runs.series[status], backgroundColor: COLORS[status],
        })),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
    chart("chart-steps", {
      type: "line",
      data: { labels: data.steps_per_minute.labels, datasets: [{ label: "steps finished", data: data.steps_per_minute.counts, borderColor: "#2f6db5", tension: 0.2, pointRadius: 0 }] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    chart("chart-failures", {
      type: "bar",
      data: { labels: data.failures_by_action.map((r) => r.action), datasets: [{ label: "failed steps", data: data.failures_by_action.map((r) => r.failures), backgroundColor: "#ba2121" }] },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    chart("chart-requests", {
      type: "bar",
      data: {
        labels: data.requests_by_group.map((r) => r.group),
        datasets: [
          { label: "pending", data: data.requests_by_group.map((r) => r.pending), backgroundColor: "#d89b1e" },
          { label: "overdue", data: data.requests_by_group.map((r) => r.overdue), backgroundColor: "#ba2121" },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    text("card-workers", data.workers);
    text("card-held", data.held_by_dead_workers);
    text("card-waiting", data.runs_now.waiting || 0);
    text("card-running", data.runs_now.running || 0);
    text("card-escalations", data.escalations.day);
    text("updated-at", new Date(data.at).toLocaleTimeString());
    text("decision-times-at", new Date(data.decision_times_at).toLocaleTimeString());
    rows("#decision-times tbody", data.decision_times, (tr, r) => {
      [r.by, r.name, r.requests, r.decided, seconds(r.median_s), seconds(r.p95_s), r.overdue, r.escalated].forEach((v) => cell(tr, v));
    }, "No requests in the period.");
    rows("#oldest-waiting tbody", data.oldest_waiting, (tr, r) => {
      if (r.overdue) tr.className = "ops-overdue";
      const link = document.createElement("a");
      link.href = r.url;
      link.textContent = r.title;
      tr.insertCell().appendChild(link);
      [r.workflow, r.group, seconds(r.waiting_s)].forEach((v) => cell(tr, v));
    }, "Nothing is waiting.");
  }

  let pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      fetch(dataUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
        .then(draw)
        .catch(() => {});
    }, 1000);
  }

  const open = new Set();
  function status() {
    const el = document.getElementById("live-status");
    el.textContent = open.size ? "live" : "reconnecting…";
    el.classList.toggle("is-live", open.size > 0);
    el.classList.toggle("is-down", open.size === 0);
  }

  function listen(path, delay) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + path);
    socket.onopen = () => { open.add(path); status(); refresh(); };
    socket.onmessage = refresh;
    socket.onclose = () => {
      open.delete(path);
      status();
      setTimeout(() => listen(path, Math.min(delay * 2, 30000)), delay);
    };
  }

  draw(JSON.parse(document.getElementById("operations-data").textContent));
  listen("/ws/runs/", 1000);
  listen("/ws/inbox/", 1000);
  setInterval(refresh, 30000);
})();
