// Kiket's own behaviour for htmx pages. Pages run under a Content-Security-Policy without inline script
// or eval, so what a page would have said in hx-on attributes lives here, keyed by data attributes.
"use strict";

// <div data-swap-statuses="409"> swaps error responses with those statuses into its target (e.g. the
// "someone changed this issue" notice) instead of dropping them as htmx does by default.
document.addEventListener("htmx:beforeSwap", function (event) {
  var host = event.target.closest && event.target.closest("[data-swap-statuses]");
  if (!host) return;
  var status = String(event.detail.xhr.status);
  if (host.dataset.swapStatuses.split(/\s+/).indexOf(status) !== -1) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Read-only fields holding a link to hand on (class="copy") select their whole value when focused.
document.addEventListener("focusin", function (event) {
  var field = event.target;
  if (field.matches && field.matches("input.copy[readonly]")) field.select();
});
