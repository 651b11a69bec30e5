// Live updates over the page's socket (htmx's ws extension swaps the fragments by id).
// Every message starts with <!--live [init|reload] CHANNEL=SEQ ...-->: a skipped number means a message
// was lost, so the page asks the server for everything again ("resync"); "reload" means the board's
// shape changed and it is fetched again. While someone edits the issue, the issue is not swapped under
// them: the notice saying who changed it shows instead.
(function () {
  "use strict";
  var HEADER = /^\s*<!--live((?:\s+\S+)*)\s*-->/;
  var last = {};
  var current = false;  // the message being swapped is a first message for a page that is up to date
  var socket = null;
  var pressed = 0;  // when the viewer last pressed a pointer or a key: a swap now could swallow the click
  var asked = false;  // a resync was asked for after a deferred swap: its answer is applied whatever its numbers

  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, function () { pressed = Date.now(); }, true);
  });

  // Whether a first message ("init") brings news for the page: a number above the one the page was
  // rendered at (#live's data-since, "channel=seq"), or than the last message seen on this socket.
  function moved(words) {
    var live = document.getElementById("live");
    var since = {};
    ((live && live.dataset.since) || "").split(/\s+/).forEach(function (word) {
      var pair = word.split("=");
      if (pair.length === 2) since[pair[0]] = parseInt(pair[1], 10);
    });
    if (!Object.keys(since).length) return true;
    return words.some(function (word) {
      var pair = word.split("=");
      if (pair.length !== 2 || !(pair[0] in since)) return false;
      var known = last[pair[0]] !== undefined ? last[pair[0]] : since[pair[0]];
      return parseInt(pair[1], 10) > known;
    });
  }

  function editing(target) {
    // A request from inside the issue is on its way: its reply is newer than this copy, and swapping now
    // would detach the element htmx puts that reply into.
    if (target.querySelector(".htmx-request")) return true;
    var active = document.activeElement;
    if (active && target.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
    // An inline editor is open (issues/_field_form.html), or a comment is being written.
    return !!target.querySelector("form.editing") || Array.prototype.some.call(
      target.querySelectorAll("textarea"), function (area) { return area.value.trim() !== ""; });
  }

  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var match = HEADER.exec(event.detail.message || "");
    if (!match) return;
    var words = match[1].trim().split(/\s+/);
    var init = words.indexOf("init") >= 0;
    if (init) document.documentElement.dataset.live = "open";
    socket = event.detail.socketWrapper || socket;
    current = init && !asked && !moved(words);
    if (init) asked = false;
    var gap = false;
    words.forEach(function (word) {
      var pair = word.split("=");
      if (pair.length !== 2) return;
      var seq = parseInt(pair[1], 10);
      if (!init && last[pair[0]] !== undefined && seq > last[pair[0]] + 1) gap = true;
      if (init || last[pair[0]] === undefined || seq > last[pair[0]]) last[pair[0]] = seq;
    });
    // "channel=seq ..." of the messages applied so far: tests wait on it before acting on a swapped element.
    document.documentElement.dataset.liveSeen = Object.keys(last).sort().map(function (channel) {
      return channel + "=" + last[channel];
    }).join(" ");
    if (gap && event.detail.socketWrapper) event.detail.socketWrapper.send("resync");
    if (words.indexOf("reload") >= 0) {
      var board = document.querySelector(".board[data-board]");
      if (board) htmx.ajax("GET", window.location.href, {target: "#" + board.id, swap: "outerHTML"});
      else if (event.detail.socketWrapper) event.detail.socketWrapper.send("resync");
    }
  });

  // <html data-live="open"> once the socket's first message arrived (tests wait for it), "closed" while away.
  document.addEventListener("htmx:wsOpen", function () { document.documentElement.dataset.live = "connecting"; });
  document.addEventListener("htmx:wsClose", function (event) {
    document.documentElement.dataset.live = "closed";
    var close = event.detail && event.detail.event;
    if (close && close.code === 1008) {
      var notice = document.createElement("div");
      notice.className = "notice live-stopped";
      notice.setAttribute("role", "alert");
      notice.textContent = "Live updates stopped: " + (close.reason || "you cannot see this page any more") +
        " Reload the page.";
      var main = document.querySelector("main");
      if (main) main.insertBefore(notice, main.firstChild);
    }
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("issue")) return;
    if (current || editing(target)) {
      event.preventDefault();
      return;
    }
    if (Date.now() - pressed < 500) {
      // Swapped between a press and its release, the control would lose the click: ask again shortly.
      event.preventDefault();
      if (!asked && socket) {
        asked = true;
        window.setTimeout(function () { socket.send("resync"); }, 600);
      }
      return;
    }
    // What the viewer's own last action did (an approved run, say) stays in sight: the live copy of the
    // issue, rendered for everyone, does not carry it, so it moves to the notice above the issue.
    var outcomes = target.querySelectorAll(".own-outcome");
    if (!outcomes.length) return;
    var notice = document.getElementById("issue-live-" + target.id.replace("issue-", ""));
    window.setTimeout(function () {
      if (notice) Array.prototype.forEach.call(outcomes, function (outcome) { notice.appendChild(outcome); });
    }, 0);
  });
})();
