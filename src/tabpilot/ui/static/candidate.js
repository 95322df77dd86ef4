/* The candidate page's Deploy form: its "show as code" follows the endpoint name and the
   capture percent (from /api/v1/code/deploy; the page works without this script). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("deploy-form");
    if (!form) { return; }
    var status = document.getElementById("deploy-code-status");
    var timer = null;
    function refresh() {
      var params = new URLSearchParams({
        job: form.getAttribute("data-job"), candidate: form.getAttribute("data-candidate"),
        endpoint: form.elements.endpoint.value,
        capture_percent: form.elements.capture_percent.value || "0"
      });
      fetch(form.getAttribute("data-code") + "?" + params.toString(), {credentials: "same-origin"})
        .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
        .then(function (res) {
          if (!res[0]) { status.textContent = res[1].message || res[1].error || ""; return; }
          ["cli", "python", "boto3"].forEach(function (k) {
            var el = document.getElementById("dcode-" + k);
            if (el) { el.textContent = res[1][k]; }
          });
          status.textContent = "The code below follows the form.";
        })
        .catch(function () { status.textContent = "The server could not be reached."; });
    }
    form.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    });
  });
}());
