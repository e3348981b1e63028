/* Mailwarden compose pane: "Log" and "Track" set from the user's effective defaults (locked
   where the organisation enforces them), each recipient greyed with the reason where the
   compose check says no. Log = the user's capture address as a BCC; Track = the open pixel
   and click URLs that POST /api/v1/tracking/ issues, written into the body. */
(function () {
  "use strict";
  var M = window.Mailwarden, el = M.el, $ = M.$;
  var state = { item: null, captureAddress: null, check: null, tracking: null, messageId: null };

  var REASONS = {
    ok: "", never_log: "on a never-log list", internal: "a colleague (internal)",
    consent_withdrawn: "consent withdrawn", no_legal_basis: "no legal basis for processing",
    tracking_off: "tracking is off", tracking_refused: "refused tracking",
    no_tracking_consent: "no consent to tracking", not_a_contact: "not a contact",
    invalid_address: "not an e-mail address", sender_not_own: "you are not sending from one of your own addresses"
  };
  function reason(code) { return REASONS[code] !== undefined ? REASONS[code] : String(code || ""); }

  function addresses(field) {
    if (!field || !field.getAsync) { return Promise.resolve([]); }
    return M.officeAsync(function (cb) { field.getAsync(cb); }).then(function (list) {
      return (list || []).map(function (r) { return String(r.emailAddress || "").toLowerCase(); }).filter(Boolean);
    });
  }

  function sender() {
    var item = state.item;
    if (item.from && item.from.getAsync) {
      return M.officeAsync(function (cb) { item.from.getAsync(cb); })
        .then(function (f) { return (f && f.emailAddress) || Office.context.mailbox.userProfile.emailAddress; })
        .catch(function () { return Office.context.mailbox.userProfile.emailAddress; });
    }
    return Promise.resolve(Office.context.mailbox.userProfile.emailAddress);
  }

  function recipients() {
    var item = state.item;
    return Promise.all([addresses(item.to), addresses(item.cc), addresses(item.bcc)]).then(function (r) {
      var capture = (state.captureAddress || "").toLowerCase();
      var drop = function (a) { return a !== capture; };
      return { to: r[0].filter(drop), cc: r[1].filter(drop), bcc: r[2].filter(drop) };
    });
  }

  function renderRecipients() {
    var list = $("recipients");
    list.textContent = "";
    var check = state.check;
    if (!check) { return; }
    var logOn = $("log").checked, trackOn = $("track").checked;
    check.recipients.forEach(function (r) {
      var li = el("li", { "data-recipient": r.address, "class": r.may_log ? "" : "disabled" },
        el("div", { text: r.address + " (" + r.role + ")" }));
      var log = el("label", { "class": r.may_log ? "" : "disabled" },
        el("input", { type: "checkbox", "data-log": r.address, disabled: true, checked: logOn && r.may_log }), " log");
      var track = el("label", { "class": r.may_track ? "" : "disabled" },
        el("input", { type: "checkbox", "data-track": r.address, disabled: true, checked: trackOn && r.may_track }), " track");
      li.appendChild(log);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(track);
      if (!r.may_log) { li.appendChild(el("span", { "class": "why", "data-log-reason": r.address, text: "not logged: " + reason(r.log_reason) })); }
      if (!r.may_track) { li.appendChild(el("span", { "class": "why", "data-track-reason": r.address, text: "not tracked: " + reason(r.track_reason) })); }
      list.appendChild(li);
    });
    if (check.sender && !check.sender.own) {
      list.appendChild(el("li", { "class": "denied", text: "You are not sending from one of your own addresses: nothing will be logged." }));
    }
    if (check.tracking && check.tracking.anonymous && trackOn) {
      list.appendChild(el("li", { "class": "muted", text: "Several recipients: opens are tracked anonymously." }));
    }
  }

  function runCheck() {
    return Promise.all([sender(), recipients()]).then(function (r) {
      var body = { sender: r[0], to: r[1].to, cc: r[1].cc, bcc: r[1].bcc };
      if (!body.to.length && !body.cc.length && !body.bcc.length) {
        state.check = null;
        $("recipients").textContent = "";
        $("check-unavailable").hidden = false;
        $("check-unavailable").textContent = "Add recipients to see what is logged and tracked.";
        return;
      }
      return M.request("/api/v1/compose/check", { method: "POST", body: body }).then(function (answer) {
        if (!answer.ok) {
          state.check = null;
          $("check-unavailable").hidden = false;
          $("check-unavailable").textContent = answer.status === 404
            ? "This server has no compose check: recipients are not checked here."
            : "Recipients not checked: " + M.errorText(answer);
          renderRecipients();
          return;
        }
        $("check-unavailable").hidden = true;
        state.check = answer.data;
        renderRecipients();
      });
    });
  }

  function captureAddress() {
    if (state.captureAddress) { return Promise.resolve(state.captureAddress); }
    return M.request("/api/v1/addin/capture-address/", { method: "POST" }).then(function (answer) {
      if (!answer.ok) { throw new Error("No capture address: " + M.errorText(answer)); }
      state.captureAddress = answer.data.address;
      return state.captureAddress;
    });
  }

  /* Log on: the capture address is a BCC of the message (logged when sent); off: removed. */
  function applyLog(on) {
    var bcc = state.item.bcc;
    return captureAddress().then(function (address) {
      return M.officeAsync(function (cb) { bcc.getAsync(cb); }).then(function (list) {
        var have = (list || []).some(function (r) { return String(r.emailAddress).toLowerCase() === address.toLowerCase(); });
        if (on && !have) {
          return M.officeAsync(function (cb) { bcc.addAsync([{ emailAddress: address, displayName: "Mailwarden" }], cb); });
        }
        if (!on && have) {
          var keep = list.filter(function (r) { return String(r.emailAddress).toLowerCase() !== address.toLowerCase(); });
          return M.officeAsync(function (cb) { bcc.setAsync(keep, cb); });
        }
      });
    });
  }

  function newMessageId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var hex = Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
    var domain = (Office.context.mailbox.userProfile.emailAddress.split("@")[1] || "mailwarden.invalid");
    return "<mw." + hex + "@" + domain + ">";
  }

  function bodyHtml() {
    return M.officeAsync(function (cb) { state.item.body.getAsync("html", cb); });
  }
  function setBodyHtml(html) {
    return M.officeAsync(function (cb) { state.item.body.setAsync(html, { coercionType: "html" }, cb); });
  }

  var PIXEL_MARK = "data-mailwarden-pixel";

  /* Track on: ask for tracking URLs; when issued, links become tracked and a pixel is added. */
  function applyTrack(on) {
    return bodyHtml().then(function (html) {
      var doc = new DOMParser().parseFromString(html || "", "text/html");
      doc.querySelectorAll("img[" + PIXEL_MARK + "]").forEach(function (img) { img.remove(); });
      doc.querySelectorAll("a[data-mailwarden-href]").forEach(function (a) {
        a.setAttribute("href", a.getAttribute("data-mailwarden-href"));
        a.removeAttribute("data-mailwarden-href");
      });
      if (!on) { state.tracking = null; return setBodyHtml(doc.body.innerHTML); }
      var links = [];
      doc.querySelectorAll("a[href]").forEach(function (a) {
        var href = a.getAttribute("href");
        if (/^https?:\/\//i.test(href) && links.indexOf(href) < 0) { links.push(href); }
      });
      return recipients().then(function (r) {
        var all = r.to.concat(r.cc, r.bcc);
        if (!all.length) { throw new Error("Add recipients before tracking."); }
        state.messageId = state.messageId || newMessageId();
        return M.request("/api/v1/tracking/", {
          method: "POST",
          body: { message_id: state.messageId, subject: "", recipients: all, links: links }
        });
      }).then(function (answer) {
        if (!answer.ok) { throw new Error(answer.status === 404 ? "This server does not track mail." : "Not tracked: " + M.errorText(answer)); }
        var t = answer.data;
        state.tracking = t;
        if (!t.tracked) {
          $("track").checked = false;
          M.status("Not tracked: " + reason(t.reason) + ".");
          renderRecipients();
          return setBodyHtml(doc.body.innerHTML);
        }
        var byUrl = {};
        (t.links || []).forEach(function (l) { byUrl[l.url] = l.tracked_url; });
        doc.querySelectorAll("a[href]").forEach(function (a) {
          var href = a.getAttribute("href");
          if (byUrl[href]) { a.setAttribute("data-mailwarden-href", href); a.setAttribute("href", byUrl[href]); }
        });
        if (t.open_pixel_url) {
          var img = doc.createElement("img");
          img.setAttribute("src", t.open_pixel_url);
          img.setAttribute("width", "1");
          img.setAttribute("height", "1");
          img.setAttribute("alt", "");
          img.setAttribute(PIXEL_MARK, "1");
          doc.body.appendChild(img);
        }
        M.status(t.mode === "anonymous" ? "Tracked anonymously (several recipients)." : "Tracked.");
        return setBodyHtml(doc.body.innerHTML);
      });
    });
  }

  function setToggle(id, setting) {
    var box = $(id);
    box.checked = !!setting.value;
    box.disabled = !!setting.locked;
    $(id + "-locked").hidden = !setting.locked;
  }

  function start() {
    state.item = Office.context.mailbox.item;
    M.status("Loading your settings…");
    return M.request("/api/v1/me/settings/").then(function (answer) {
      if (answer.status === 401) { window.location.reload(); return; }
      if (!answer.ok) { throw new Error("Settings not loaded: " + M.errorText(answer)); }
      setToggle("log", answer.data.log_all);
      setToggle("track", answer.data.track);
      $("pane").hidden = false;
      M.status("");
      var work = [runCheck()];
      if ($("log").checked) { work.push(applyLog(true)); }
      return Promise.all(work).then(function () {
        if ($("track").checked) { return applyTrack(true).catch(function (e) { M.status(String(e.message || e), true); }); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("log").addEventListener("change", function () {
      applyLog($("log").checked).then(renderRecipients).catch(function (e) { M.status(String(e.message || e), true); });
    });
    $("track").addEventListener("change", function () {
      applyTrack($("track").checked).then(renderRecipients).catch(function (e) { M.status(String(e.message || e), true); });
    });
    $("recheck").addEventListener("click", function () { runCheck(); });
    M.boot(function () {
      var item = Office.context.mailbox.item;
      if (item.addHandlerAsync && Office.EventType && Office.EventType.RecipientsChanged) {
        item.addHandlerAsync(Office.EventType.RecipientsChanged, function () { runCheck(); });
      }
      return start();
    });
  });
})();
