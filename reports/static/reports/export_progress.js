// Keeps the progress bars of queued and running exports up to date: polls the small status
// endpoint every 2 s while any job on the page is unfinished, then shows the download link
// or the error in place of the bar.
(function () {
  "use strict";
  var INTERVAL_MS = 2000;

  function pending() {
    return Array.prototype.slice.call(document.querySelectorAll(".export-progress[data-job]"));
  }

  function render(el, job) {
    var bar = el.querySelector("progress");
    var label = el.querySelector(".export-label");
    if (job.state === "done" && job.download_url) {
      var link = document.createElement("a");
      link.className = "export-download";
      link.href = job.download_url;
      link.textContent = "Download";
      var rows = document.createTextNode(" · " + job.row_count + " rows");
      el.replaceWith(link, rows);
      return;
    }
    if (job.state === "failed") {
      var error = document.createElement("span");
      error.className = "export-error";
      error.textContent = "Failed: " + job.error;
      el.replaceWith(error);
      return;
    }
    if (bar) { bar.value = job.progress; }
    if (label) {
      label.textContent = (job.state === "running" ? "Running " : "Queued ") + job.progress + "% · " +
        job.row_count + " rows";
    }
  }

  function poll() {
    var els = pending();
    if (!els.length) { return; }
    var byId = {};
    els.forEach(function (el) { byId[el.dataset.job] = el; });
    var url = els[0].dataset.statusUrl + "?ids=" + Object.keys(byId).join(",");
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : {jobs: []}; })
      .then(function (data) {
        data.jobs.forEach(function (job) { if (byId[job.id]) { render(byId[job.id], job); } });
      })
      .catch(function () { /* try again on the next tick */ })
      .finally(function () { if (pending().length) { window.setTimeout(poll, INTERVAL_MS); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (pending().length) { window.setTimeout(poll, INTERVAL_MS); }
  });
})();
