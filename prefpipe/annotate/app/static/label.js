// Keyboard shortcuts for the labeling page: 1/A = A better, 2/B = B better, 3/T = tie, 4/X = both bad.
// Keys typed in the rationale box (or any field) are text, never shortcuts; Esc leaves the box.
(function () {
  "use strict";
  var KEYS = { "1": "first", "a": "first", "2": "second", "b": "second",
               "3": "tie", "t": "tie", "4": "both_bad", "x": "both_bad" };
  var form = document.getElementById("label-form");
  if (!form) { return; }
  var sent = false;

  function typing(target) {
    return target && (target.isContentEditable || /^(TEXTAREA|INPUT|SELECT)$/.test(target.tagName));
  }

  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }  // one answer per page load
    sent = true;
  });
  window.addEventListener("pageshow", function () { sent = false; });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var choice = KEYS[event.key.toLowerCase()];
    if (!choice) { return; }
    var button = form.querySelector('button[name="choice"][value="' + choice + '"]');
    event.preventDefault();
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
  });
}());
