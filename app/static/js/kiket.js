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

// Keyboard use across swaps. htmx puts focus back on an element whose id is in the new content; when the
// control used is gone (a transition taken, an editor saved or closed), focus goes to the element whose id
// the acting element (or an ancestor) names in data-focus-after, instead of falling to <body>.
var focusAfter = null;
document.addEventListener("htmx:beforeRequest", function (event) {
  var host = event.detail.elt.closest && event.detail.elt.closest("[data-focus-after]");
  focusAfter = host ? host.dataset.focusAfter : null;
});
document.addEventListener("htmx:afterSettle", function (event) {
  var editor = event.target;
  if (editor.matches && editor.matches("form.inline-field.editing")) {
    // An inline editor that opens takes focus: its first field.
    var input = editor.querySelector("input:not([type=hidden]), select, textarea");
    if (input) input.focus();
    focusAfter = null;
    return;
  }
  var active = document.activeElement;
  var lost = !active || active === document.body || !document.contains(active);
  var target = focusAfter && document.getElementById(focusAfter);
  focusAfter = null;
  if (lost && target) target.focus();
});

// Escape closes an inline editor, as its Cancel button does.
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape" || !event.target.closest) return;
  var editor = event.target.closest("form.inline-field.editing");
  var cancel = editor && editor.querySelector("[data-cancel]");
  if (cancel) {
    event.preventDefault();
    cancel.click();
  }
});
