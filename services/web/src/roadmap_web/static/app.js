// Live progress of a roadmap: follows /roadmaps/{id}/events (the API's stream, relayed).
// EventSource reconnects by itself after a drop and sends the last event id it saw, so the
// stream resumes where it stopped. When the roadmap moves to another phase the page reloads
// to show what that phase offers (the review form, the finished plan).
(function () {
  "use strict";
  var region = document.getElementById("progress");
  if (!region || !region.dataset.events) return;
  var connection = document.getElementById("connection");
  var pageStatus = region.dataset.status;
  var STATUS = {
    queued: "Queued", planning: "Planning", awaiting_review: "Waiting for your review",
    generating: "Writing the content", completed: "Completed",
    partial_failure: "Completed, with failures", failed: "Failed", cancelled: "Cancelled"
  };
  function set(name, value) {
    var el = region.querySelector('[data-field="' + name + '"]');
    if (el && value !== undefined && value !== null) el.textContent = String(value);
  }
  function progress(p) {
    if (!p) return;
    set("done", p.done);
    set("total", p.total);
    set("failed", p.failed);
  }
  function conceptsReady() {
    var ready = 0, total = 0;
    document.querySelectorAll("[data-concept]").forEach(function (li) {
      total += 1;
      var items = li.querySelectorAll("[data-item]");
      var ok = items.length > 0;
      items.forEach(function (it) { if (it.dataset.state !== "succeeded") ok = false; });
      if (ok) ready += 1;
    });
    set("concepts", ready);
    set("concept-total", total);
  }
  var source = new EventSource(region.dataset.events);
  function finish() { source.close(); window.location.reload(); }
  function status(data) {
    if (!data.status) return;
    set("status", STATUS[data.status] || data.status);
    if (data.status !== pageStatus) finish();
  }
  source.addEventListener("open", function () { connection.hidden = true; });
  source.addEventListener("error", function () {
    connection.textContent = "Connection lost; reconnecting…";
    connection.hidden = false;
  });
  source.addEventListener("snapshot", function (e) {
    var data = JSON.parse(e.data);
    progress(data.progress);
    status(data);
  });
  source.addEventListener("status", function (e) { status(JSON.parse(e.data)); });
  source.addEventListener("step", function (e) {
    var data = JSON.parse(e.data);
    var step = region.querySelector('[data-field="step"]');
    if (step && data.step) step.textContent = data.step.replace(/_/g, " ");
  });
  source.addEventListener("item", function (e) {
    var data = JSON.parse(e.data);
    progress(data.progress);
    var item = document.querySelector('[data-item="' + data.concept_id + ":" + data.kind + '"]');
    if (item) {
      item.dataset.state = data.status;
      item.textContent = data.kind + ": " + data.status;
    }
    conceptsReady();
  });
  ["review_required", "completed", "failed", "cancelled"].forEach(function (type) {
    source.addEventListener(type, finish);
  });
})();
