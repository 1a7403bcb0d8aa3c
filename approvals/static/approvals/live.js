/* AgentOS live status: websockets that resume from the last event seq seen.
 * Used by the inbox pages and the admin's run pages. Notifications only:
 * nothing is decided through a socket. */
(function () {
  "use strict";
  var sockets = [];
  var paused = false;

  function setState(text) {
    ["live-state", "run-live-state"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.textContent = text; el.dataset.state = text; }
    });
  }

  /* Open a socket to path() and keep it open; path is re-read on every
   * reconnect so it can carry the last seq seen. */
  function keepOpen(path, onMessage, onOpen) {
    var entry = {ws: null, delay: 250};
    function open() {
      if (paused) { return; }
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + path());
      entry.ws = ws;
      ws.onopen = function () { entry.delay = 250; setState("live"); if (onOpen) { onOpen(); } };
      ws.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
      ws.onclose = function () {
        if (entry.ws !== ws) { return; }
        setState(paused ? "paused" : "reconnecting");
        if (!paused) { setTimeout(open, entry.delay); entry.delay = Math.min(entry.delay * 2, 5000); }
      };
    }
    entry.open = open;
    sockets.push(entry);
    open();
    return entry;
  }

  var STATUS_LABELS = {
    queued: "Queued", running: "Running", waiting: "Waiting for a person",
    succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled"
  };

  /* The same colours as workflows/admin/display.py STATUS_COLOURS. */
  var BADGE_COLOURS = {
    queued: "#555", running: "#1d4f91", waiting: "#8a4600",
    succeeded: "#1b5e20", failed: "#a31515", cancelled: "#555"
  };

  function applyRun(root, run) {
    if (!root || !run) { return; }
    var status = root.querySelector('[data-live="status"]');
    if (status) {
      var badge = status.classList.contains("run-badge");
      status.textContent = badge ? (STATUS_LABELS[run.status] || run.status) : run.status;
      status.className = (badge ? "run-badge " : "") + "status-" + run.status;
    }
    var node = root.querySelector('[data-live="current_node"]');
    if (node) { node.textContent = run.current_node || "—"; }
    var bar = root.querySelector('[data-live="progress"]');
    if (bar) { bar.max = run.total; bar.value = run.position; }
    var text = root.querySelector('[data-live="progress-text"]');
    if (text) { text.textContent = run.position + "/" + run.total; }
    var error = root.querySelector('[data-live="error"]');
    if (error) { error.textContent = run.error || ""; }
  }

  function addEvent(root, event) {
    var list = root.querySelector('[data-live="events"]');
    if (!list) { return; }
    var li = document.createElement(list.tagName === "TBODY" ? "tr" : "li");
    li.dataset.seq = event.seq;
    if (list.tagName === "TBODY") {
      ["seq", "type", "actor", "at"].forEach(function (k) {
        var td = document.createElement("td"); td.textContent = event[k]; li.appendChild(td);
      });
    } else {
      li.textContent = "#" + event.seq + " " + event.type + " (" + event.actor + ")";
    }
    if (list.dataset.newestFirst) { list.insertBefore(li, list.firstChild); } else { list.appendChild(li); }
  }

  /* Watch one run: `root` holds data-run-live (id) and data-seq (last seen).
   * onChange(seq) is called after a new event and after a catch-up. */
  function watchRun(root, onChange) {
    if (!root) { return null; }
    var runId = root.dataset.runLive;
    return keepOpen(function () {
      return "/ws/runs/" + runId + "/?after=" + (root.dataset.seq || 0);
    }, function (msg) {
      if (msg.type === "event") {
        if (msg.event.seq <= parseInt(root.dataset.seq || "0", 10)) { return; }
        root.dataset.seq = msg.event.seq;
        addEvent(root, msg.event);
        applyRun(root, msg.run);
        if (onChange) { onChange(msg); }
      } else if (msg.type === "caught_up") {
        applyRun(root, msg.run);
        root.dataset.caughtUp = msg.seq;
        if (onChange) { onChange(msg); }
      }
    });
  }

  /* The admin's run page: swap in the whole panel, rendered by the server,
   * whenever the run changed after what the panel shows; so no section can
   * go stale. Open <details> (by data-key) stay open. */
  var panelLoading = null;
  function refreshPanel(root) {
    var box = document.getElementById("run-panel");
    if (!box) { return; }
    if (panelLoading) { panelLoading.again = true; return; }
    var shown = box.querySelector("[data-seq]");
    var seq = parseInt(root.dataset.seq || "0", 10);
    if (shown && parseInt(shown.dataset.seq, 10) >= seq) { return; }
    panelLoading = {again: false};
    fetch(box.dataset.liveUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        /* Rendered before the newest event this page applied (a fetch that
         * was under way when the run moved on): swapping it in would take the
         * page back (a finished run shown running); fetch again instead. */
        var rendered = new DOMParser().parseFromString(html, "text/html").querySelector("[data-seq]");
        if (rendered && parseInt(rendered.dataset.seq, 10) < parseInt(root.dataset.seq || "0", 10)) {
          panelLoading.again = true;
          return;
        }
        var open = Array.prototype.map.call(
          box.querySelectorAll("details[data-key][open]"), function (d) { return d.dataset.key; });
        var closed = Array.prototype.map.call(
          box.querySelectorAll("details[data-key]:not([open])"), function (d) { return d.dataset.key; });
        box.innerHTML = html;
        box.querySelectorAll("details[data-key]").forEach(function (d) {
          if (open.indexOf(d.dataset.key) >= 0) { d.open = true; }
          if (closed.indexOf(d.dataset.key) >= 0) { d.open = false; }
        });
        var events = box.querySelector("#run-events-table tbody");
        if (events && !box.dataset.liveUrl.match(/events_upto/)) {
          events.dataset.live = "events"; events.dataset.newestFirst = "1";
        }
        var fresh = box.querySelector("[data-seq]");
        box.dataset.refreshedSeq = fresh ? fresh.dataset.seq : "";
        var note = document.getElementById("run-refreshed");
        if (note) { note.textContent = "updated " + new Date().toLocaleTimeString(); }
      }).catch(function () { /* the next event or reconnect tries again */ })
      .finally(function () {
        var again = panelLoading.again; panelLoading = null; if (again) { refreshPanel(root); }
      });
  }

  /* A request page's picture of the plan: fetch it again, rendered by the
   * server with each node's state, after the run moved. */
  var pictureLoading = null;
  function refreshPicture() {
    var box = document.getElementById("request-picture");
    if (!box) { return; }
    if (pictureLoading) { pictureLoading.again = true; return; }
    pictureLoading = {again: false};
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) { box.innerHTML = html; box.dataset.refreshed = String(Date.now()); })
      .catch(function () { /* the next event or reconnect tries again */ })
      .finally(function () {
        var again = pictureLoading.again; pictureLoading = null; if (again) { refreshPicture(); }
      });
  }

  /* Copy buttons next to shortened hashes. */
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var done = function () { button.textContent = "copied"; setTimeout(function () { button.textContent = "copy"; }, 1500); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(button.dataset.copy).then(done, function () {});
    }
  });

  var refreshing = null;
  function refreshInbox() {
    var box = document.getElementById("inbox-list");
    if (!box) { return; }
    if (refreshing) { refreshing.again = true; return; }
    refreshing = {again: false};
    var url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.text(); })
      .then(function (html) {
        var checked = Array.prototype.map.call(
          box.querySelectorAll("input[name=ids]:checked"), function (i) { return i.value; });
        box.innerHTML = html;
        checked.forEach(function (v) {
          var i = box.querySelector('input[name=ids][value="' + v + '"]'); if (i) { i.checked = true; }
        });
        var fresh = document.getElementById("fresh-counts");
        if (fresh) {
          ["pending", "mine", "overdue"].forEach(function (k) {
            var el = document.getElementById("count-" + k); if (el) { el.textContent = fresh.dataset[k]; }
          });
          var bulk = document.getElementById("bulk-row");
          if (bulk) { bulk.hidden = !fresh.dataset.bulk; }
        }
        box.dataset.refreshed = String(Date.now());
      }).finally(function () {
        var again = refreshing.again; refreshing = null; if (again) { refreshInbox(); }
      });
  }

  window.AgentOSLive = {
    watchInbox: function () {
      var first = true;
      keepOpen(function () { return "/ws/inbox/"; }, function (msg) {
        if (msg.type === "inbox") { refreshInbox(); }
      }, function () { if (!first) { refreshInbox(); } first = false; });
    },
    watchRunPage: function () {
      var timer = null;
      watchRun(document.querySelector("[data-run-live]"), function () {
        /* A burst of events makes one fetch, not one per event. */
        if (timer) { return; }
        timer = setTimeout(function () { timer = null; refreshPicture(); }, 100);
      });
      this.watchInbox();
    },
    watchAdminRun: function (root) {
      var timer = null;
      watchRun(root, function () {
        /* A burst of events makes one fetch, not one per event. */
        if (timer) { return; }
        timer = setTimeout(function () { timer = null; refreshPanel(root); }, 100);
      });
    },
    watchAdminRunList: function () {
      keepOpen(function () { return "/ws/runs/"; }, function (msg) {
        if (msg.type !== "run") { return; }
        var link = document.querySelector('#result_list a[href$="/run/' + msg.run.id + '/change/"]');
        var row = link ? link.closest("tr") : null;
        if (!row) { return; }
        var set = function (cls, html) { var td = row.querySelector("td." + cls + ", th." + cls); if (td) { td.innerHTML = html; } };
        var badge = document.createElement("strong");
        badge.className = "agentos-status status-" + msg.run.status;
        badge.style.cssText = "color:#fff;padding:1px 8px;border-radius:9px;white-space:nowrap;background:" +
          (BADGE_COLOURS[msg.run.status] || "#444");
        badge.textContent = STATUS_LABELS[msg.run.status] || msg.run.status;
        set("field-status_label", badge.outerHTML);
        set("field-current_node", msg.run.current_node || "-");
        set("field-progress", '<progress value="' + msg.run.position + '" max="' + Math.max(msg.run.total, 1) + '"></progress> ' + msg.run.position + "/" + msg.run.total);
      });
    },
    /* For tests and debugging: drop every socket and stay offline... */
    pause: function () {
      paused = true;
      sockets.forEach(function (s) { if (s.ws) { s.ws.close(); } });
      setState("paused");
    },
    /* ...then reconnect; each socket resumes after the last seq it saw. */
    resume: function () { paused = false; sockets.forEach(function (s) { s.open(); }); }
  };
})();
