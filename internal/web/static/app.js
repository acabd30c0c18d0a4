// Moat's own script: copy buttons. Pages work without it; it only adds
// conveniences. No inline script anywhere (Content-Security-Policy).
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) {
    return;
  }
  ev.preventDefault();
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(el.textContent.trim()).then(function () {
    var old = b.textContent;
    b.textContent = "Copied";
    setTimeout(function () { b.textContent = old; }, 1500);
  }, function () {});
});
