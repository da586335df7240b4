// Light progressive enhancement: live replay-job progress, confirmations, and JSON-API form posts.
(function () {
  "use strict";
  function poll(el) {
    var id = el.getAttribute("data-job");
    fetch("/api/v1/replays/" + id, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (job) {
        var bar = el.querySelector(".progress > div");
        if (bar) { bar.style.width = Math.round(job.progress * 100) + "%"; }
        var text = el.querySelector(".job-text");
        if (text) { text.textContent = job.handled + " / " + job.total + " (" + job.state + ")"; }
        el.setAttribute("data-state", job.state);
        if (job.state === "pending" || job.state === "running") { setTimeout(function () { poll(el); }, 500); }
        else { var c = el.querySelector(".cancel"); if (c) { c.remove(); } }
      }).catch(function () { setTimeout(function () { poll(el); }, 2000); });
  }
  document.querySelectorAll("[data-job]").forEach(function (el) {
    var s = el.getAttribute("data-state");
    if (s === "pending" || s === "running") { poll(el); }
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  // a payload page whose latest attempt is still in flight refreshes itself until it settles
  var live = document.querySelector("[data-refresh]");
  if (live) { setTimeout(function () { window.location.reload(); }, parseInt(live.getAttribute("data-refresh"), 10)); }
})();
