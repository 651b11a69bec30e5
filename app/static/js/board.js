// Drag and drop on the board: a card dropped on another column (or lane) asks the server to move it; the
// reply swaps the changed cells and column heads, or (422) shows every failing gate and puts the card back.
(function () {
  "use strict";

  function send(card, list) {
    htmx.ajax("POST", card.dataset.moveUrl, {
      source: card,
      target: "#board-alert",
      swap: "innerHTML",
      values: {column: list.dataset.column, lane: list.dataset.lane || "", lock_version: card.dataset.lock}
    });
  }

  function init(root) {
    if (typeof Sortable === "undefined") return;
    var lists = root.querySelectorAll ? root.querySelectorAll(".cards-list") : [];
    if (root.classList && root.classList.contains("cards-list")) lists = [root];
    Array.prototype.forEach.call(lists, function (list) {
      if (list.dataset.locked === "true" || list._sortable) return;
      list._sortable = Sortable.create(list, {
        group: "board",
        sort: false,
        // Pointer events rather than the browser's native drag and drop: the same on touch screens and in tests.
        forceFallback: true,
        fallbackOnBody: true,
        draggable: ".board-card",
        filter: "a, button, input",
        preventOnFilter: false,
        onEnd: function (event) {
          if (event.from === event.to) return;
          send(event.item, event.to);
        }
      });
    });
  }

  // A refused move: put the card back where it was at once (the server's cells follow).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var card = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!card || !card.classList || !card.classList.contains("board-card")) return;
    if (event.detail.xhr.status === 422 || event.detail.xhr.status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  htmx.onLoad(init);
})();
