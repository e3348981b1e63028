/* Mailwarden read pane: the open mail's (or appointment's) people and their contact match,
   suggested records with their "why", categories, attachments to keep, and Save to CRM. */
(function () {
  "use strict";
  var M = window.Mailwarden, el = M.el, $ = M.$;
  var state = { item: null, appointment: false, data: null };

  function person(p) {
    if (!p) { return null; }
    var address = p.emailAddress || p.address || "";
    return address ? { address: address, name: p.displayName || p.name || "" } : null;
  }

  function participantsOf(item) {
    var list = state.appointment
      ? [item.organizer].concat(item.requiredAttendees || [], item.optionalAttendees || [])
      : [item.from].concat(item.to || [], item.cc || []);
    var seen = {};
    return list.map(person).filter(function (p) {
      if (!p) { return false; }
      var key = p.address.toLowerCase();
      if (seen[key]) { return false; }
      seen[key] = true;
      return true;
    });
  }

  function appointmentUid(item) {
    return item.iCalUId || ("outlook-" + item.itemId);
  }

  var DAYS = { sun: "SU", mon: "MO", tue: "TU", wed: "WE", thu: "TH", fri: "FR", sat: "SA" };
  var MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
  var WEEKS = { first: 1, second: 2, third: 3, fourth: 4, last: -1 };

  /* Office.js's recurrence object -> an RRULE (RFC 5545). */
  function recurrenceToRRule(rec) {
    if (!rec || !rec.recurrenceType) { return ""; }
    var p = rec.recurrenceProperties || {};
    var parts = [];
    var type = String(rec.recurrenceType).toLowerCase();
    var interval = p.interval && p.interval > 1 ? ";INTERVAL=" + p.interval : "";
    var byday = (p.days || []).map(function (d) { return DAYS[String(d).toLowerCase().slice(0, 3)]; }).filter(Boolean);
    if (type === "daily") { parts.push("FREQ=DAILY" + interval); }
    else if (type === "weekday") { parts.push("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"); }
    else if (type === "weekly") { parts.push("FREQ=WEEKLY" + interval + (byday.length ? ";BYDAY=" + byday.join(",") : "")); }
    else if (type === "monthly") {
      if (p.dayOfMonth) { parts.push("FREQ=MONTHLY" + interval + ";BYMONTHDAY=" + p.dayOfMonth); }
      else if (p.dayOfWeek && p.weekNumber) {
        parts.push("FREQ=MONTHLY" + interval + ";BYDAY=" + WEEKS[String(p.weekNumber).toLowerCase()] + DAYS[String(p.dayOfWeek).toLowerCase().slice(0, 3)]);
      } else { parts.push("FREQ=MONTHLY" + interval); }
    } else if (type === "yearly") {
      var month = MONTHS.indexOf(String(p.month || "").toLowerCase().slice(0, 3)) + 1;
      var rule = "FREQ=YEARLY" + interval + (month ? ";BYMONTH=" + month : "");
      if (p.dayOfMonth) { rule += ";BYMONTHDAY=" + p.dayOfMonth; }
      else if (p.dayOfWeek && p.weekNumber) { rule += ";BYDAY=" + WEEKS[String(p.weekNumber).toLowerCase()] + DAYS[String(p.dayOfWeek).toLowerCase().slice(0, 3)]; }
      parts.push(rule);
    } else { return ""; }
    var series = rec.seriesTime || {};
    var end = series.endYear ? { y: series.endYear, m: series.endMonth, d: series.endDay } : null;
    if (!end && typeof series.getEndDate === "function") {
      var s = series.getEndDate();
      if (s) { var bits = s.split("-"); end = { y: +bits[0], m: +bits[1], d: +bits[2] }; }
    }
    if (rec.numberOfOccurrences || series.numberOfOccurrences) {
      parts.push("COUNT=" + (rec.numberOfOccurrences || series.numberOfOccurrences));
    } else if (end && end.y) {
      var pad = function (n) { return (n < 10 ? "0" : "") + n; };
      parts.push("UNTIL=" + end.y + pad(end.m) + pad(end.d) + "T235959Z");
    }
    return parts.join(";");
  }

  function iso(value) {
    if (!value) { return null; }
    var d = value instanceof Date ? value : new Date(value);
    return isNaN(d.getTime()) ? null : d.toISOString();
  }

  function bodyText(item) {
    if (!item.body || !item.body.getAsync) { return Promise.resolve(""); }
    return M.officeAsync(function (cb) { item.body.getAsync("text", cb); })
      .then(function (text) { return String(text || "").slice(0, 4000); })
      .catch(function () { return ""; });
  }

  function load() {
    var item = state.item;
    M.status("Looking up…");
    return bodyText(item).then(function (body) {
      state.body = body;
      var query = { participants: participantsOf(item), subject: item.subject || "", body: body };
      if (state.appointment) { query.uid = appointmentUid(item); } else { query.message_id = item.internetMessageId || ""; }
      var date = iso(item.dateTimeCreated);
      if (date) { query.date = date; }
      return M.request("/api/v1/addin/lookup/", { method: "POST", body: query });
    }).then(function (answer) {
      if (answer.status === 401) { window.location.reload(); return; }
      if (!answer.ok) { M.status("Lookup failed: " + M.errorText(answer), true); return; }
      state.data = answer.data;
      render(answer.data);
      $("pane").hidden = false;
      M.status("");
    });
  }

  function linkedTargets(data) {
    var linked = { item: {}, contact: {}, organization: {} };
    ((data.saved && data.saved.links) || []).forEach(function (l) { if (l.target) { linked[l.kind][l.target] = l; } });
    return linked;
  }

  function renderSaved(data) {
    var saved = data.saved;
    $("saved").hidden = !saved;
    $("save").textContent = saved ? "Save again with these choices (adds links)" : "Save to CRM";
    var list = $("saved-links");
    list.textContent = "";
    if (!saved) { return; }
    if (!saved.links.length) { list.appendChild(el("li", { "class": "muted", text: "Saved, not linked to a record yet." })); }
    saved.links.forEach(function (link) {
      var unlink = saved.can_manage_links ? el("button", {
        "class": "link", "data-unlink": link.kind + ":" + link.target, text: "Unlink",
        on: { click: function () { unlinkRecord(saved.thread, link); } }
      }) : null;
      list.appendChild(el("li", { "data-link": link.kind + ":" + link.target },
        el("span", { text: link.kind + ": " + link.label + " " }), unlink,
        el("span", { "class": "why", text: link.why })));
    });
  }

  /* Open review items of the thread: which of several open items, ranked with their why. */
  function renderReviews(data) {
    var box = $("reviews");
    box.textContent = "";
    var saved = data.saved;
    if (!saved || !saved.reviews.length) { return; }
    saved.reviews.forEach(function (review) {
      var list = el("ul", { "class": "list", "data-review": review.id });
      review.candidates.forEach(function (c) {
        var pick = saved.can_manage_links ? el("button", {
          "data-resolve": review.id + ":" + c.item, text: "Link this",
          on: { click: function () { resolveReview(review.id, c.item); } }
        }) : null;
        var li = el("li", {}, el("span", { text: c.title + " " }), pick);
        c.why.forEach(function (w) { li.appendChild(el("span", { "class": "why", text: w })); });
        list.appendChild(li);
      });
      box.appendChild(el("p", { "class": "muted", text: "Several open records could be linked; pick one:" }));
      box.appendChild(list);
    });
  }

  function renderParticipants(data) {
    var list = $("participants");
    list.textContent = "";
    data.participants.forEach(function (p) {
      var label = p.name ? p.name + " <" + p.address + ">" : p.address;
      var li = el("li", { "data-address": p.address, "data-match": p.match }, el("div", { text: label }));
      if (p.internal) {
        li.appendChild(el("span", { "class": "why", text: "colleague" }));
      } else if (p.match === "one") {
        var c = p.contacts[0];
        li.appendChild(el("span", { "class": "why", text: "✓ " + c.name + (c.organization ? " · " + c.organization.name : "") }));
      } else if (p.match === "several") {
        var select = el("select", { "data-pick": p.address },
          el("option", { value: "", text: "Several contacts: pick one…" }));
        p.contacts.forEach(function (c) {
          select.appendChild(el("option", { value: String(c.id), text: c.name + (c.organization ? " · " + c.organization.name : "") }));
        });
        li.appendChild(select);
      } else {
        var org = p.organization ? "organization " + p.organization.name
          : (p.new_organization ? "new organization " + p.new_organization : "no organization");
        li.appendChild(el("button", {
          "data-create": p.address, text: "Create contact",
          on: { click: function () { createContact(p); } }
        }));
        li.appendChild(el("span", { "class": "why", text: "Not in the CRM; will be created with " + org + "." }));
      }
      list.appendChild(li);
    });
  }

  function renderSuggestions(data) {
    var list = $("suggestions");
    var linked = linkedTargets(data).item;
    list.textContent = "";
    $("no-suggestions").hidden = data.suggestions.length > 0;
    data.suggestions.forEach(function (s) {
      var already = !!linked[s.item];
      var box = el("input", {
        type: "checkbox", value: String(s.item), "data-item": s.item,
        checked: already || s.source === "rule", disabled: already
      });
      var li = el("li", {}, el("label", {}, box, " " + s.title + " (" + s.kind + ")" + (already ? " · linked" : "")));
      s.why.forEach(function (w) { li.appendChild(el("span", { "class": "why", text: w })); });
      list.appendChild(li);
    });
  }

  function renderCategories(data) {
    var box = $("categories");
    var have = (data.saved && data.saved.categories) || [];
    box.textContent = "";
    data.categories.forEach(function (name) {
      box.appendChild(el("label", { style: "display:block" },
        el("input", { type: "checkbox", "data-category": name, checked: have.indexOf(name) >= 0 }), " " + name));
    });
    if (!data.categories.length) { box.appendChild(el("p", { "class": "muted", text: "No categories are set up." })); }
    $("save-categories").hidden = !(data.saved && data.saved.can_manage_links);
  }

  function renderAttachments() {
    var files = (state.item.attachments || []).filter(function (a) { return !a.isInline; });
    $("attachments-section").hidden = state.appointment || !files.length;
    var list = $("attachments");
    list.textContent = "";
    files.forEach(function (a) {
      list.appendChild(el("li", {}, el("label", {},
        el("input", { type: "checkbox", "data-attachment": a.name, checked: true }), " " + a.name)));
    });
  }

  function renderMeeting(data) {
    $("meeting").hidden = !state.appointment;
    if (!state.appointment) { return; }
    var m = data.meeting;
    $("meeting-info").textContent = m
      ? "Saved meeting: " + m.summary + (m.rrule ? " · repeats (" + m.rrule + ")" : "")
      : "Not saved yet." + (state.item.recurrence ? " Its recurrence is saved too." : "");
  }

  function render(data) {
    renderSaved(data);
    renderReviews(data);
    renderMeeting(data);
    renderParticipants(data);
    renderSuggestions(data);
    renderCategories(data);
    renderAttachments();
    $("private").checked = !!(data.saved && data.saved.private);
    $("private").disabled = state.appointment || !!data.saved;
  }

  function choices() {
    var items = [], contacts = [], categories = [], attachments = [];
    document.querySelectorAll("[data-item]").forEach(function (b) { if (b.checked && !b.disabled) { items.push(+b.value); } });
    document.querySelectorAll("[data-pick]").forEach(function (s) { if (s.value) { contacts.push(+s.value); } });
    document.querySelectorAll("[data-category]").forEach(function (b) { if (b.checked) { categories.push(b.getAttribute("data-category")); } });
    document.querySelectorAll("[data-attachment]").forEach(function (b) { if (b.checked) { attachments.push(b.getAttribute("data-attachment")); } });
    return { links: { items: items, contacts: contacts }, categories: categories, attachments: attachments };
  }

  function waitForCapture(id, tries) {
    return M.request("/api/v1/captures/" + id + "/").then(function (r) {
      if (r.ok && r.data.status === "pending" && tries > 0) {
        return M.wait(500).then(function () { return waitForCapture(id, tries - 1); });
      }
      return r;
    });
  }

  function saveMail(chosen) {
    var item = state.item;
    if (typeof item.getAsFileAsync !== "function") {
      return Promise.reject(new Error("This Outlook does not give add-ins the message (Mailbox 1.14 is needed); BCC it to your capture address instead."));
    }
    return M.officeAsync(function (cb) { item.getAsFileAsync(cb); }).then(function (mime) {
      var body = { mime_base64: mime, links: chosen.links, categories: chosen.categories, source: "outlook-addin" };
      if ($("private").checked) { body.private = true; }
      if (!$("attachments-section").hidden) { body.attachments = chosen.attachments; }
      return M.request("/api/v1/captures/", { method: "POST", body: body });
    });
  }

  function saveAppointment(chosen) {
    var item = state.item;
    var people = participantsOf(item);
    var organizer = person(item.organizer);
    var body = {
      uid: appointmentUid(item), subject: item.subject || "", start: iso(item.start), end: iso(item.end),
      location: typeof item.location === "string" ? item.location : "",
      organizer: organizer, attendees: people.filter(function (p) { return !organizer || p.address !== organizer.address; }),
      rrule: recurrenceToRRule(item.recurrence), modified: iso(item.dateTimeModified),
      body: state.body || "", links: chosen.links, categories: chosen.categories
    };
    return M.request("/api/v1/addin/appointments/", { method: "POST", body: body });
  }

  function save() {
    var chosen = choices();
    $("save").disabled = true;
    M.status("Saving…");
    (state.appointment ? saveAppointment(chosen) : saveMail(chosen)).then(function (answer) {
      if (!answer.ok) { throw new Error(M.errorText(answer)); }
      return waitForCapture(answer.data.id, 20);
    }).then(function (r) {
      var d = r.data || {};
      if (d.status === "rejected" || d.status === "failed") {
        throw new Error("Not saved: " + (d.reason_code || d.status) + (d.reason_detail ? " (" + d.reason_detail + ")" : ""));
      }
      return load().then(function () { M.status(d.status === "processed" ? "Saved." : "Saved; still processing."); });
    }).catch(function (e) { M.status(String(e.message || e), true); })
      .then(function () { $("save").disabled = false; });
  }

  function createContact(p) {
    M.status("Creating contact…");
    M.request("/api/v1/addin/contacts/", { method: "POST", body: { address: p.address, name: p.name || "" } })
      .then(function (answer) {
        if (!answer.ok) { M.status("Not created: " + M.errorText(answer), true); return; }
        return load().then(function () { M.status("Contact created."); });
      });
  }

  function unlinkRecord(thread, link) {
    M.status("Unlinking…");
    M.request("/api/v1/threads/" + thread + "/links/?" + link.kind + "=" + link.target, { method: "DELETE" })
      .then(function (answer) {
        if (!answer.ok) { M.status("Not unlinked: " + M.errorText(answer), true); return; }
        return load().then(function () { M.status("Unlinked."); });
      });
  }

  function resolveReview(id, item) {
    M.status("Linking…");
    M.request("/api/v1/review-items/" + id + "/resolve/", { method: "POST", body: { item: item } })
      .then(function (answer) {
        if (!answer.ok) { M.status("Not linked: " + M.errorText(answer), true); return; }
        return load().then(function () { M.status("Linked."); });
      });
  }

  function saveCategories() {
    var saved = state.data && state.data.saved;
    if (!saved) { return; }
    M.request("/api/v1/emails/" + saved.email + "/categories/", { method: "PATCH", body: { categories: choices().categories } })
      .then(function (answer) {
        if (!answer.ok) { M.status("Categories not saved: " + M.errorText(answer), true); return; }
        return load().then(function () { M.status("Categories saved."); });
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("save").addEventListener("click", save);
    $("save-categories").addEventListener("click", saveCategories);
    M.boot(function () {
      state.item = Office.context.mailbox.item;
      state.appointment = state.item.itemType === "appointment" ||
        (window.Office && Office.MailboxEnums && state.item.itemType === Office.MailboxEnums.ItemType.Appointment);
      return load();
    });
  });

  window.MailwardenRead = { recurrenceToRRule: recurrenceToRRule };
})();
