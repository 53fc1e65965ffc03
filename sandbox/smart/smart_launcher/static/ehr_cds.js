// The sandbox EHR as a browser-based CDS Hooks client: on chart open, fetch the prepared
// patient-view calls from the launcher, POST each to its CDS service (cross-origin, with the
// signed JWT), and show the cards above the app frame. A card's `smart` link launches the app
// in the frame through the launcher (a fresh launch of this chart). Text only: no innerHTML.
(function () {
  "use strict";
  const section = document.getElementById("cds-cards");
  if (!section) return;
  const frame = document.getElementById("smart-app");
  const status = section.querySelector(".cds-status");

  function say(text) { status.textContent = text; }

  function linkButton(link) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "cds-link";
    button.textContent = link.label;
    button.dataset.type = link.type;
    button.addEventListener("click", function () {
      if (link.type === "smart") {
        frame.src = section.dataset.smartLink + "&url=" + encodeURIComponent(link.url);
        frame.scrollIntoView();
      } else if (/^https?:/.test(link.url)) {
        window.open(link.url, "_blank", "noopener");
      }
    });
    return button;
  }

  function showCard(card) {
    const box = document.createElement("article");
    box.className = "cds-card";
    box.dataset.indicator = card.indicator;
    const indicator = document.createElement("span");
    indicator.className = "indicator";
    indicator.textContent = card.indicator;
    const summary = document.createElement("span");
    summary.className = "summary";
    summary.textContent = card.summary;
    const source = document.createElement("span");
    source.className = "muted source";
    source.textContent = (card.source && card.source.label) || "";
    box.append(indicator, summary, source);
    (card.links || []).forEach(function (link) { box.append(linkButton(link)); });
    section.append(box);
  }

  async function run() {
    const prepared = await fetch(section.dataset.cdsUrl).then(function (r) { return r.json(); });
    const calls = prepared.calls || [];
    if (!calls.length) { say(prepared.error || "No CDS service for this app."); return; }
    let shown = 0;
    for (const call of calls) {
      const response = await fetch(call.url, {
        method: "POST",
        headers: {"Content-Type": "application/json", "Authorization": "Bearer " + call.token},
        body: JSON.stringify(call.body),
      });
      if (!response.ok) { say("A CDS service answered HTTP " + response.status + "."); continue; }
      const answer = await response.json();
      (answer.cards || []).forEach(function (card) { showCard(card); shown += 1; });
    }
    section.dataset.done = "true";
    if (shown) { status.remove(); } else if (!status.textContent.startsWith("A CDS")) {
      say("No decision support cards for this chart.");
    }
  }

  run().catch(function () { say("The CDS services could not be reached."); section.dataset.done = "true"; });
})();
