/* Start the live view a page names in <body data-watch>: a file rather than an
 * inline script, so the Content-Security-Policy allows scripts from 'self' only. */
(function () {
  "use strict";
  var watch = document.body.dataset.watch;
  if (watch === "inbox") { window.AgentOSLive.watchInbox(); }
  if (watch === "run") { window.AgentOSLive.watchRunPage(); }
})();
