/* Small behaviours of single pages: copying a block of text (the resources page's YAML). */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copies]") : null;
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copies"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Copy failed: select the text and copy it";
    });
  });
})();

/* The log viewer (gui/logs.py): earlier parts by byte range, the live tail while the attempt
   runs and the tab is visible, and a search run by the server over the whole file. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  function ready(run) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
    else run();
  }
  ready(function () {
    var viewer = document.getElementById("log-viewer");
    if (!viewer) return;
    var base = viewer.getAttribute("data-base");
    var text = document.getElementById("log-text");
    var range = document.getElementById("log-range");
    var earlier = document.getElementById("log-earlier");
    var start = Number(viewer.getAttribute("data-start"));
    var end = Number(viewer.getAttribute("data-end"));
    var size = Number(viewer.getAttribute("data-size"));
    var live = viewer.getAttribute("data-live") === "true";
    function shown() {
      range.textContent = "bytes " + start + " to " + end + " of " + size;
      earlier.hidden = start === 0;
    }
    function get(url) {
      return fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (answer) {
          if (!answer.ok) throw new Error("the server answered " + answer.status);
          return answer.json();
        });
    }
    earlier.addEventListener("click", function () {
      get(base + "/bytes?before=" + start).then(function (piece) {
        text.insertBefore(document.createTextNode(piece.text), text.firstChild);
        start = piece.start;
        size = Math.max(size, piece.size);
        shown();
      });
    });
    var timer = null;
    function poll() {
      timer = null;
      if (document.hidden) return;
      get(base + "/bytes?after=" + end).then(function (piece) {
        if (piece.text) {
          var atBottom = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
          text.appendChild(document.createTextNode(piece.text));
          if (atBottom) text.scrollTop = text.scrollHeight;
        }
        end = piece.end;
        size = piece.size;
        live = piece.live;
        shown();
        if (live || piece.end < piece.size) schedule();
        else {
          var note = document.getElementById("log-live");
          if (note) note.textContent = "the attempt has ended";
        }
      }, function () { schedule(); });
    }
    function schedule() {
      if (timer === null && !document.hidden) timer = setTimeout(poll, POLL_MS);
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && live) schedule();
    });
    if (live) schedule();
    text.scrollTop = text.scrollHeight;

    var form = document.getElementById("log-search");
    var results = document.getElementById("log-search-results");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var wanted = document.getElementById("log-search-text").value;
      if (!wanted) return;
      results.hidden = false;
      results.textContent = "searching…";
      get(base + "/search?q=" + encodeURIComponent(wanted)).then(function (found) {
        results.textContent = "";
        var summary = document.createElement("p");
        summary.className = "note";
        summary.textContent = found.matches.length + " line(s) match" +
          (found.complete ? "" : " (stopped early: " + found.searched + " of " + found.size + " bytes searched)");
        results.appendChild(summary);
        var list = document.createElement("ol");
        list.className = "log-matches";
        found.matches.forEach(function (match) {
          var item = document.createElement("li");
          item.setAttribute("data-line", match.line);
          item.setAttribute("data-offset", match.offset);
          var where = document.createElement("span");
          where.className = "note";
          where.textContent = "line " + match.line + ": ";
          var line = document.createElement("code");
          line.textContent = match.text;
          item.appendChild(where);
          item.appendChild(line);
          list.appendChild(item);
        });
        results.appendChild(list);
      }, function (error) { results.textContent = "search failed: " + error.message; });
    });
  });
})();
