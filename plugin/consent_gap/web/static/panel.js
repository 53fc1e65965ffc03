// consent-gap panel: small progressive enhancements; the panel works without script.
(function () {
  "use strict";
  // A withheld client notice needs its reason: say so before the round trip.
  document.querySelectorAll("form.notice-form").forEach(function (form) {
    var reason = form.querySelector("input[name=reason]");
    function sync() {
      var withheld = form.querySelector("input[name=outcome][value=withheld]").checked;
      reason.required = withheld;
      reason.setAttribute("aria-required", withheld ? "true" : "false");
    }
    form.querySelectorAll("input[name=outcome]").forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  });
  // Disable a submit button once pressed so a double click does not send twice.
  document.querySelectorAll(".actions form").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; button.textContent = "Saving\u2026"; }
    });
  });
  // Move focus to a confirmation so keyboard and screen-reader users hear it.
  var notice = document.getElementById("notice-1");
  if (notice) { notice.setAttribute("tabindex", "-1"); notice.focus(); }
})();
