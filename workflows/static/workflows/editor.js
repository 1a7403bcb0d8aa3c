/* The workflow editor: redraw the plan's picture as the spec validates.
 * Posts the spec (debounced) to the admin's picture endpoint, which
 * validates without saving and answers the drawing, with each problem on
 * the box it concerns, and the problems no box shows. No network beyond
 * this site. */
(function () {
  "use strict";
  var box = document.getElementById("spec-picture");
  var source = document.getElementById("id_source");
  if (!box || !source) { return; }
  var graph = document.getElementById("spec-picture-graph");
  var state = document.getElementById("spec-picture-state");
  var problems = document.getElementById("spec-problems");
  var token = document.querySelector("input[name=csrfmiddlewaretoken]");
  var asked = 0;
  var timer = null;

  function show(answer) {
    graph.innerHTML = answer.picture || "";
    problems.textContent = "";
    var apart = (answer.errors || []).filter(function (e) { return !e.on_box; });
    apart.forEach(function (e) {
      var li = document.createElement("li");
      li.textContent = e.text;
      problems.appendChild(li);
    });
    problems.hidden = apart.length === 0;
    var count = (answer.errors || []).length;
    state.textContent = answer.valid ? "Valid: this is the plan saving stores." :
      count + (count === 1 ? " problem" : " problems") + " (shown on the boxes they concern" +
      (apart.length ? " and listed here" : "") + ").";
    state.dataset.valid = answer.valid ? "1" : "0";
    source.setAttribute("aria-invalid", answer.valid ? "false" : "true");
    box.dataset.checked = String(asked);
  }

  function check() {
    var mine = ++asked;
    var body = new URLSearchParams();
    body.set("source", source.value);
    body.set("workflow", box.dataset.workflow || "");
    state.textContent = "Checking…";
    fetch(box.dataset.url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"X-CSRFToken": token ? token.value : "", "Accept": "application/json"}
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (mine === asked) { show(answer); }
    }).catch(function () {
      if (mine === asked) { state.textContent = "Could not check the spec; the picture may be out of date."; }
    });
  }

  source.addEventListener("input", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(check, 400);
  });
  check();
})();
