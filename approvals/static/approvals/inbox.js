/* Start the live view a page names in <body data-watch>, and the keyboard:
 * a file rather than an inline script, so the Content-Security-Policy allows
 * scripts from 'self' only. Keys: j/k move, o/Enter open, a approve,
 * r reject (into the reason field), u back to the list, ? help. */
(function () {
  "use strict";
  var watch = document.body.dataset.watch;
  if (watch === "inbox") { window.AgentOSLive.watchInbox(); }
  if (watch === "run") { window.AgentOSLive.watchRunPage(); }

  function toggleHelp() {
    var help = document.getElementById("keyboard-help");
    if (help) { help.hidden = !help.hidden; }
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-help]")) { toggleHelp(); }
  });

  var selected = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#requests tbody tr[data-request]")); }
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    var link = all[selected].querySelector("a");
    if (link) { link.focus(); }
  }
  function go(id) { var a = document.getElementById(id); if (a && a.href) { location.href = a.href; } }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.target.isContentEditable) {
      if (e.key === "Escape") { e.target.blur(); }
      return;
    }
    var list = document.getElementById("requests");
    switch (e.key) {
      case "?": toggleHelp(); break;
      case "j": if (list) { select(selected + 1); } else { go("nav-next"); } break;
      case "k": if (list) { select(selected - 1); } else { go("nav-prev"); } break;
      case "o":
      case "Enter":
        if (list && selected >= 0) { var a = rows()[selected].querySelector("a"); if (a) { location.href = a.href; } } else { return; }
        break;
      case "u": go("nav-list"); break;
      case "a": var approve = document.getElementById("approve"); if (approve) { approve.click(); } else { return; } break;
      case "r":
        var reason = document.querySelector(".reject-box textarea");
        if (reason) { reason.focus(); } else { return; }
        break;
      case "Escape": var help = document.getElementById("keyboard-help"); if (help) { help.hidden = true; } break;
      default: return;
    }
    e.preventDefault();
  });
})();
