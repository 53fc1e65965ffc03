// consent-gap panel: small progressive enhancements; the panel works without script.
(function () {
  "use strict";
  // A withheld client notice needs its reason: say so before the round trip.
  document.querySelectorAll("form.actions fieldset.notice-fields").forEach(function (form) {
    var reason = form.querySelector("input[name=reason]");
    function sync() {
      var withheld = form.querySelector("input[name=outcome][value=withheld]").checked;
      reason.required = withheld;
      reason.setAttribute("aria-required", withheld ? "true" : "false");
    }
    form.querySelectorAll("input[name=outcome]").forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  });
  // Disable the pressed button once the form goes, so a double click does not send twice.
  document.querySelectorAll("form.actions").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (button) {
        setTimeout(function () { button.disabled = true; button.textContent = "Saving\u2026"; }, 0);
      }
    });
  });
  // A finding named by the address (after an action) may sit in the collapsed list: open it.
  function reveal() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    var holder = target && target.closest("details");
    if (holder) { holder.open = true; }
  }
  reveal();
  window.addEventListener("hashchange", reveal);
  // Move focus to a confirmation so keyboard and screen-reader users hear it.
  // After the page has loaded: Chromium's scroll to the address's #finding-N clears the focus
  // when its target is not focusable, so a focus given earlier would be lost.
  var notice = document.getElementById("notice-1");
  function announce() { notice.focus(); }
  if (notice) {
    notice.setAttribute("tabindex", "-1");
    announce();
    window.addEventListener("load", function () { setTimeout(announce, 0); });
  }
})();
