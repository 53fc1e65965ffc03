// consent-gap "New disclosure": the proposal form, the answer, the record, the authorization
// and its signature pad. Every decision comes from the server; this script only gathers the
// form and shows the answer.
(function () {
  "use strict";
  var root = document.getElementById("guide");
  if (!root) { return; }
  var $ = function (id) { return document.getElementById(id); };
  var state = { answer: null, recipientName: "", consent: null, version: null, drawn: false,
                busy: false, signed: false };

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { status: response.status, data: data }; });
    });
  }

  function selectedScenario() {
    var option = $("scenario").selectedOptions[0];
    return option && option.value ? option : null;
  }

  function proposal() {
    var p = { patient: root.dataset.patient, data: [], instruments: [] };
    var scenario = selectedScenario();
    if (scenario) { p.scenario = scenario.value; }
    if ($("purpose").value) { p.purposes = [$("purpose").value]; }
    var ref = $("recipient-ref").value;
    var name = $("recipient-name").value.trim();
    var system = $("recipient-system").value.trim();
    var value = $("recipient-value").value.trim();
    if (ref) {
      p.recipient = { reference: ref };
    } else if (value) {
      p.recipient = { identifier: { system: system || "urn:consent-gap:typed", value: value } };
      if (name) { p.recipient.display = name; }
    }
    document.querySelectorAll("input[name=data]:checked").forEach(function (box) {
      p.data.push({ reference: box.value });
    });
    document.querySelectorAll("input[name=described]:checked").forEach(function (box) {
      p.data.push({ labels: [{ system: box.dataset.system, code: box.value }],
                    description: box.dataset.label });
    });
    document.querySelectorAll("input[name=instruments]:checked").forEach(function (box) {
      p.instruments.push(box.value);
    });
    return p;
  }

  function text(el, value) { el.textContent = value || ""; }

  function show(answer) {
    state.answer = answer;
    var finding = answer.finding;
    $("answer").hidden = false;
    var decision = $("answer-decision");
    decision.className = "decision-line" + (finding ? " d-" + finding.decision : "");
    if (finding) {
      text(decision, "Decision: " + finding.decision + (finding.basis ? " (" + finding.basis + ")" : ""));
      text($("answer-explanation"), finding.explanation);
    } else {
      text(decision, "Nothing is to be disclosed.");
      text($("answer-explanation"), "");
    }
    var details = answer.details || {};
    var basis = "";
    if (details.authorization) {
      var a = details.authorization;
      basis = "Covered by " + a.reference + (a.expires ? ", until " + a.expires : "") +
        (a.purposes.length ? ", for " + a.purposes.join(", ") : "") + ".";
    } else if (details.basis_text) {
      basis = "Legal basis: " + details.basis_text + ".";
    }
    text($("answer-basis"), basis);
    text($("answer-rule"), details.state_rule ? "State rule: " + details.state_rule : "");
    var list = $("answer-steps");
    list.textContent = "";
    answer.steps.forEach(function (step, i) {
      var item = document.createElement("li");
      var box = document.createElement("input");
      box.type = "checkbox"; box.id = "step-" + i; box.dataset.step = step.code;
      var label = document.createElement("label");
      label.htmlFor = box.id; label.textContent = step.text;
      item.dataset.step = step.code;
      item.appendChild(box); item.appendChild(label);
      list.appendChild(item);
    });
    var codes = answer.steps.map(function (s) { return s.code; });
    $("ethic").hidden = !(finding && finding.decision === "review");
    $("record").hidden = !finding;
    $("documentation-fields").hidden = codes.indexOf("document") < 0;
    $("notice-fields").hidden = codes.indexOf("inform-client") < 0;
    var unauthorized = finding && finding.decision === "unauthorized";
    $("acknowledge-box").hidden = !unauthorized;
    if (!unauthorized) { $("acknowledge").checked = false; }
    // once signed, the section stays to say so (the check no longer offers a draft)
    $("authorize").hidden = !answer.can_draft_authorization && !state.signed;
    prefill(finding);
    text($("record-result"), "");
    $("record-button").disabled = false;
  }

  function prefill(finding) {
    if (!finding) { return; }
    var scenario = selectedScenario();
    var who = state.recipientName || finding.recipient || "the recipient";
    var fill = {
      nature: scenario ? scenario.textContent.trim() + "." : "",
      informed: who + " was informed, for " + (finding.purposes.join(", ") || "no stated purpose") +
        (finding.basis ? " (" + finding.basis + ")" : "") + "."
    };
    Object.keys(fill).forEach(function (key) {
      var field = $("doc-" + key);
      if (field && !field.value.trim() && fill[key]) { field.value = fill[key]; }
    });
  }

  function fail(where, result) {
    var message = (result.data && result.data.message) || "The request failed.";
    where.className = "notice notice-error";
    text(where, message);
    where.focus();
  }

  function check(focus) {
    return post(root.dataset.answerUrl, proposal()).then(function (result) {
      if (result.status !== 200) {
        $("answer").hidden = false;
        text($("answer-decision"), result.data.message || "The check failed.");
        $("answer-steps").textContent = "";
        return;
      }
      show(result.data);
      if (focus) { $("answer-h").focus(); }
    });
  }

  $("proposal").addEventListener("submit", function (event) {
    event.preventDefault();
    check(true);
  });
  $("scenario").addEventListener("change", function () {
    var scenario = selectedScenario();
    text($("suggested"), "");
    if (scenario && scenario.dataset.nothing === "yes") {
      text($("suggested"), "Nothing is to be disclosed in this situation: check to see the steps.");
    } else if (scenario && scenario.dataset.recipients) {
      text($("suggested"), "Usually told: " + scenario.dataset.recipients + "." +
        (scenario.dataset.instruments ? " Attach the papers received (" +
          scenario.dataset.instruments.replace(/-/g, " ") + ")." : ""));
    }
  });

  // ---- recipient search as you type (a combobox with a listbox) ----
  var search = $("recipient-search"), results = $("recipient-results"), timer = null, active = -1;
  function closeList() { results.hidden = true; search.setAttribute("aria-expanded", "false"); active = -1; search.removeAttribute("aria-activedescendant"); }
  function choose(option) {
    $("recipient-ref").value = option.dataset.reference;
    state.recipientName = option.dataset.name;
    text($("recipient-chosen"), "Recipient: " + option.dataset.name + " (" + option.dataset.reference + ")");
    search.value = option.dataset.name;
    closeList();
  }
  function mark(index) {
    var options = results.querySelectorAll("[role=option]:not([aria-disabled=true])");
    options.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
    active = index;
    if (options[index]) { search.setAttribute("aria-activedescendant", options[index].id); }
  }
  search.addEventListener("input", function () {
    $("recipient-ref").value = ""; state.recipientName = "";
    text($("recipient-chosen"), "No recipient chosen.");
    clearTimeout(timer);
    var q = search.value.trim();
    if (q.length < 2) { closeList(); return; }
    timer = setTimeout(function () {
      fetch(root.dataset.recipientsUrl + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          results.textContent = "";
          data.results.forEach(function (found, i) {
            var li = document.createElement("li");
            li.id = "recipient-option-" + i; li.setAttribute("role", "option");
            li.dataset.reference = found.reference; li.dataset.name = found.name;
            li.textContent = found.name + " (" + found.type + ")";
            li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(li); });
            results.appendChild(li);
          });
          if (!data.results.length) {
            var none = document.createElement("li");
            none.setAttribute("role", "option");
            none.setAttribute("aria-disabled", "true");
            none.id = "recipient-option-none";
            none.textContent = "No match; enter a name and identifier instead.";
            results.appendChild(none);
          }
          results.hidden = false; search.setAttribute("aria-expanded", "true"); active = -1;
        });
    }, 250);
  });
  search.addEventListener("keydown", function (event) {
    var options = results.querySelectorAll("[role=option]:not([aria-disabled=true])");
    if (event.key === "ArrowDown" && options.length) { event.preventDefault(); results.hidden = false; mark(Math.min(active + 1, options.length - 1)); }
    else if (event.key === "ArrowUp" && options.length) { event.preventDefault(); mark(Math.max(active - 1, 0)); }
    else if (event.key === "Enter" && active >= 0 && options[active]) { event.preventDefault(); choose(options[active]); }
    else if (event.key === "Escape") { closeList(); }
  });
  search.addEventListener("blur", function () { setTimeout(closeList, 150); });

  // ---- the record ----
  $("record-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (state.busy || !state.answer || !state.answer.finding) { return; }
    var codes = state.answer.steps.map(function (s) { return s.code; });
    var body = { proposal: proposal(), proposal_id: root.dataset.proposalId, documentation: {},
                 ethic: {}, acknowledge_unauthorized: $("acknowledge").checked };
    body.proposal.at = state.answer.finding.occurred;
    document.querySelectorAll("[data-element]").forEach(function (field) {
      body.documentation[field.dataset.element] = field.value;
    });
    document.querySelectorAll("[data-ethic]").forEach(function (field) {
      body.ethic[field.dataset.ethic] = field.value;
    });
    var notice = document.querySelector("input[name=notice]:checked");
    body.client_notice = { status: codes.indexOf("inform-client") >= 0 && notice ? notice.value : "later",
                           reason: $("notice-reason").value };
    state.busy = true;
    var button = $("record-button");
    button.disabled = true; button.textContent = "Saving\u2026";
    post(root.dataset.recordUrl, body).then(function (result) {
      state.busy = false;
      button.textContent = "Record the disclosure";
      var where = $("record-result");
      if (result.status === 201 || result.status === 200) {
        where.className = "notice";
        var refs = result.data.references;
        text(where, (result.status === 201 ? "Recorded in the chart: " : "Already recorded: ") +
          Object.keys(refs).map(function (k) { return refs[k]; }).join(", ") + ".");
        where.focus();
      } else {
        button.disabled = false;
        fail(where, result);
      }
    });
  });

  // ---- the authorization ----
  $("draft-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { proposal: proposal(), proposal_id: root.dataset.proposalId, performer: $("signer").value };
    if ($("expires").value) { body.expires = $("expires").value; }
    $("draft-button").disabled = true;
    post(root.dataset.draftUrl, body).then(function (result) {
      $("draft-button").disabled = false;
      var where = $("draft-result");
      if (result.status !== 201 && result.status !== 200) { fail(where, result); return; }
      state.consent = result.data.consent.split("/")[1];
      state.version = result.data.version;
      where.className = "notice";
      text(where, "Prepared " + result.data.consent + " (not signed yet).");
      $("form-link").href = result.data.form;
      $("pdf-link").href = result.data.pdf;
      $("sign-box").hidden = false;
      where.focus();
    });
  });

  var pad = $("pad"), ink = pad.getContext("2d"), drawing = false;
  ink.lineWidth = 2.5; ink.lineCap = "round"; ink.strokeStyle = "#111";
  function point(event) {
    var box = pad.getBoundingClientRect();
    return { x: (event.clientX - box.left) * pad.width / box.width,
             y: (event.clientY - box.top) * pad.height / box.height };
  }
  function start(p) { drawing = true; ink.beginPath(); ink.moveTo(p.x, p.y); }
  function move(p) { if (!drawing) { return; } ink.lineTo(p.x, p.y); ink.stroke(); state.drawn = true; }
  function stop() { drawing = false; }
  if (window.PointerEvent) {
    pad.addEventListener("pointerdown", function (e) { pad.setPointerCapture(e.pointerId); start(point(e)); });
    pad.addEventListener("pointermove", function (e) { move(point(e)); });
    pad.addEventListener("pointerup", stop);
    pad.addEventListener("pointercancel", stop);
  } else {
    pad.addEventListener("touchstart", function (e) { e.preventDefault(); start(point(e.touches[0])); });
    pad.addEventListener("touchmove", function (e) { e.preventDefault(); move(point(e.touches[0])); });
    pad.addEventListener("touchend", stop);
  }
  function clearPad() { ink.clearRect(0, 0, pad.width, pad.height); state.drawn = false; }
  $("pad-clear").addEventListener("click", clearPad);

  $("sign-button").addEventListener("click", function () {
    var where = $("sign-result");
    var typed = $("typed-name").value.trim();
    if (!state.drawn) {
      if (!typed || !$("typed-adopt").checked) {
        where.className = "notice notice-error";
        text(where, "Sign in the box, or type the name and confirm it as the signature.");
        where.focus();
        return;
      }
      clearPad();
      ink.font = "italic 40px serif"; ink.fillStyle = "#111";
      ink.fillText(typed, 20, 100);
      state.drawn = true;
    }
    var url = root.dataset.signUrl.replace("CID", encodeURIComponent(state.consent));
    $("sign-button").disabled = true;
    post(url, { signer: $("signer").value, signature: pad.toDataURL("image/png"), version: state.version })
      .then(function (result) {
        $("sign-button").disabled = false;
        if (result.status !== 201 && result.status !== 200) { fail(where, result); return; }
        state.signed = true;
        $("sign-button").disabled = true;
        $("draft-button").disabled = true;
        where.className = "notice";
        text(where, "Signed. Checking again\u2026");
        where.focus();
        return check(false).then(function () {
          text(where, "Signed. The check now says: " +
            (state.answer && state.answer.finding ? state.answer.finding.decision : "—") + ".");
        });
      });
  });
})();
