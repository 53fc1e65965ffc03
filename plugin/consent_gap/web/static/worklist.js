// The breach risk assessment: suggest "breach" when any factor is rated high (CONTRACT 7.1).
// The suggestion pre-selects; the officer concludes. Without script the form works the same.
(function () {
  var form = document.getElementById("assessment");
  if (!form) { return; }
  var note = document.getElementById("suggestion");
  var touched = false;
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "conclusion") { touched = true; return; }
    if (target.name.indexOf("rating-") !== 0) { return; }
    var high = form.querySelectorAll('input[name^="rating-"][value="high"]:checked').length > 0;
    var suggested = high ? "breach" : "low-probability";
    note.textContent = 'Suggested conclusion: "' + suggested + '"' +
      (high ? " (a factor is rated high)." : " (no factor is rated high).");
    if (!touched) {
      var choice = form.querySelector('input[name="conclusion"][value="' + suggested + '"]');
      if (choice) { choice.checked = true; }
    }
  });
}());
