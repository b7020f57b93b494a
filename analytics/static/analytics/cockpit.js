/* The campaign cockpit: draws each chart from the JSON the server put in the page
 * (json_script), and reloads the page every minute while the campaign is live.
 * Nothing here computes a metric: the numbers come from the server as they are. */
(function () {
  "use strict";

  var BASE_LAYOUT = {
    margin: { t: 36, r: 16, b: 48, l: 56 },
    font: { family: "-apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif", size: 12 },
    legend: { orientation: "h", y: -0.2 },
    hovermode: "closest",
  };

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function draw(el) {
    var spec = readJson(el.getAttribute("data-chart"));
    if (!spec || typeof Plotly === "undefined") {
      el.setAttribute("data-chart-state", "failed");
      return;
    }
    var layout = Object.assign({}, BASE_LAYOUT, spec.layout || {});
    Plotly.newPlot(el, spec.data, layout, { displaylogo: false, responsive: true }).then(function () {
      el.setAttribute("data-chart-state", "drawn");
      el.setAttribute("data-traces", String(spec.data.length));
    });
  }

  function autoRefresh() {
    var box = document.getElementById("cockpit-autorefresh");
    if (!box) return;
    var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 60;
    var key = "fission.cockpit.autorefresh";
    if (window.localStorage && localStorage.getItem(key) === "off") box.checked = false;
    box.addEventListener("change", function () {
      if (window.localStorage) localStorage.setItem(key, box.checked ? "on" : "off");
    });
    window.setInterval(function () {
      if (box.checked && document.visibilityState !== "hidden") window.location.reload();
    }, seconds * 1000);
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
  autoRefresh();
})();
