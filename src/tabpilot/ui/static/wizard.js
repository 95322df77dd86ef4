/* The new-job wizard, made live (the page works without it as plain forms):
   - the upload streams the file with XMLHttpRequest (progress shown), then opens the
     wizard on the uploaded table;
   - the suggestion (problem type, metric, why) and the "show as code" blocks follow each
     change of the job form, from /api/v1 (relative URLs given by the page). */
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function size(n) {
    var units = ["bytes", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function say(el, text, isError) {
    if (!el) { return; }
    el.textContent = text;
    el.classList.toggle("error", !!isError);
    if (isError) { el.setAttribute("role", "alert"); } else { el.setAttribute("role", "status"); }
  }

  function message(xhrText, fallback) {
    try {
      var body = JSON.parse(xhrText);
      return body.message || body.error || body.detail || fallback;
    } catch (e) { return fallback; }
  }

  function setupUpload() {
    var form = document.getElementById("upload-form");
    if (!form) { return; }
    var input = document.getElementById("upload-file");
    var status = document.getElementById("upload-status");
    var button = document.getElementById("upload-button");
    var cap = parseInt(form.getAttribute("data-max-bytes") || "0", 10);
    input.addEventListener("change", function () {
      var file = input.files[0];
      if (file) { say(status, file.name + ": " + size(file.size) + ", ready to upload"); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = input.files[0];
      if (!file) { say(status, "Choose a CSV or Parquet file first.", true); return; }
      if (cap && file.size > cap) {
        say(status, file.name + " is " + size(file.size) + ", over this server's upload limit of " +
            size(cap) + "; put it under an allowed data root and give its path instead.", true);
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", form.getAttribute("data-upload") + "?name=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          say(status, "Uploading " + file.name + ": " + size(e.loaded) + " of " + size(e.total));
        }
      });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        if (xhr.status !== 201) {
          say(status, message(xhr.responseText, "the upload failed (HTTP " + xhr.status + ")"), true);
          return;
        }
        var body = JSON.parse(xhr.responseText);
        say(status, "Uploaded " + body.name + " (" + body.size + "); opening its preview");
        window.location.assign(form.getAttribute("data-wizard") + "?data=" + encodeURIComponent(body.path));
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        say(status, "The upload failed: the server could not be reached.", true);
      });
      button.disabled = true;
      say(status, "Uploading " + file.name + " (" + size(file.size) + ")");
      xhr.send(file);
    });
  }

  function query(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token" && typeof value === "string") { params.append(key, value); }
    });
    return params.toString();
  }

  function setupLive() {
    var form = document.getElementById("job-form");
    if (!form) { return; }
    var codeStatus = document.getElementById("code-status");
    var suggestion = document.getElementById("suggestion");
    var target = document.getElementById("target");
    var timer = null, lastTarget = target ? target.value : "";

    function refreshCode() {
      fetch(form.getAttribute("data-code") + "?" + query(form), {credentials: "same-origin"})
        .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
        .then(function (res) {
          if (!res[0]) { say(codeStatus, res[1].message || res[1].error || "the code could not be made", true); return; }
          ["cli", "python", "boto3"].forEach(function (k) {
            var el = document.getElementById("code-" + k);
            if (el) { el.textContent = res[1][k]; }
          });
          say(codeStatus, "The code below follows the form.");
        })
        .catch(function () { say(codeStatus, "The server could not be reached.", true); });
    }

    function refreshSuggestion() {
      var data = form.querySelector('input[name="data"]').value;
      if (!target.value) { say(suggestion, "Choose the target to see the suggested problem type and metric."); return; }
      var url = form.getAttribute("data-suggest") + "?data=" + encodeURIComponent(data) +
                "&target=" + encodeURIComponent(target.value);
      fetch(url, {credentials: "same-origin"})
        .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
        .then(function (res) {
          if (!res[0]) { say(suggestion, res[1].message || res[1].error, true); return; }
          var s = res[1];
          var text = "Suggested: " + s.problem_type + " (" + s.reason + "), metric " + s.metric +
                     " (" + s.metric_reason + ").";
          if (s.missing_target_rows) { text += " " + s.missing_target_rows + " rows have no target and are left out."; }
          say(suggestion, text);
        });
    }

    function changed(event) {
      if (event.target === target && target.value !== lastTarget) {
        lastTarget = target.value;
        refreshSuggestion();
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(refreshCode, 250);
    }
    form.addEventListener("change", changed);
    form.addEventListener("input", changed);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupUpload();
    setupLive();
  });
}());
