/* Live pages (gui/live.py): the element #live holds the page's event stream (htmx's SSE
   extension). While the tab is hidden the stream is closed, and opened again when the tab is
   shown, so a background tab costs the server nothing. htmx's swap cleans up the old element,
   which closes its stream; the new one, with sse-connect, opens a new stream. */
(function () {
  "use strict";
  function connect(wanted) {
    var live = document.getElementById("live");
    if (!live || !window.htmx) return;
    if (live.hasAttribute("sse-connect") === wanted) return;
    var copy = live.cloneNode(false);
    if (wanted) copy.setAttribute("sse-connect", live.getAttribute("data-live-url"));
    else copy.removeAttribute("sse-connect");
    htmx.swap(live, copy.outerHTML, { swapStyle: "outerHTML" });
  }
  document.addEventListener("visibilitychange", function () { connect(!document.hidden); });
  document.addEventListener("DOMContentLoaded", function () { if (document.hidden) connect(false); });
})();
