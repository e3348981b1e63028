/* A small stand-in for Microsoft's office.js, for tests only: the panes run in Chromium, not
   in Outlook, so this answers `Office.onReady` and serves `Office.context.mailbox.item` from
   the fixture the test puts in `window.__MW_FIXTURE__` (a read message with its MIME in
   base64, an appointment, or a message being composed). It records what the pane does to
   the item (BCC added, body set) in `window.__MW_CALLS__` for the test to read. */
(function () {
  "use strict";
  var fx = window.__MW_FIXTURE__ || {};
  var calls = window.__MW_CALLS__ = [];
  var OK = "succeeded";

  function done(cb, value) { setTimeout(function () { cb({ status: OK, value: value }); }, 0); }
  function failed(cb, message) { setTimeout(function () { cb({ status: "failed", error: { message: message } }); }, 0); }

  function recipients(name, list) {
    var value = (list || []).slice();
    return {
      getAsync: function (cb) { done(cb, value.slice()); },
      addAsync: function (more, cb) { calls.push([name + ".add", more]); value = value.concat(more); done(cb); },
      setAsync: function (all, cb) { calls.push([name + ".set", all]); value = all.slice(); done(cb); },
      _value: function () { return value; }
    };
  }

  function body(text, html) {
    return {
      getAsync: function (type, cb) { done(cb, type === "html" ? html : text); },
      setAsync: function (value, options, cb) { calls.push(["body.set", value]); html = value; done(cb); },
      _html: function () { return html; }
    };
  }

  var item;
  if (fx.kind === "appointment") {
    item = {
      itemType: "appointment",
      itemId: fx.itemId,
      subject: fx.subject,
      start: new Date(fx.start),
      end: new Date(fx.end),
      location: fx.location || "",
      organizer: fx.organizer,
      requiredAttendees: fx.requiredAttendees || [],
      optionalAttendees: fx.optionalAttendees || [],
      recurrence: fx.recurrence || null,
      dateTimeModified: fx.modified ? new Date(fx.modified) : null,
      attachments: [],
      body: body(fx.body || "", "")
    };
  } else if (fx.kind === "compose") {
    item = {
      itemType: "message",
      to: recipients("to", fx.to),
      cc: recipients("cc", fx.cc),
      bcc: recipients("bcc", fx.bcc),
      from: { getAsync: function (cb) { done(cb, { emailAddress: fx.sender }); } },
      body: body("", fx.html || "<p>Hello</p>"),
      addHandlerAsync: function (type, handler, cb) { calls.push(["handler", type]); if (cb) { done(cb); } }
    };
  } else {
    item = {
      itemType: "message",
      internetMessageId: fx.internetMessageId,
      subject: fx.subject,
      from: fx.from,
      to: fx.to || [],
      cc: fx.cc || [],
      attachments: fx.attachments || [],
      dateTimeCreated: fx.date ? new Date(fx.date) : null,
      body: body(fx.body || "", ""),
      getAsFileAsync: function (cb) {
        calls.push(["getAsFileAsync"]);
        if (fx.mime) { done(cb, fx.mime); } else { failed(cb, "no MIME in this fixture"); }
      }
    };
  }

  window.Office = {
    AsyncResultStatus: { Succeeded: OK, Failed: "failed" },
    MailboxEnums: { ItemType: { Message: "message", Appointment: "appointment" } },
    EventType: { RecipientsChanged: "olkRecipientsChanged" },
    context: {
      mailbox: {
        item: item,
        userProfile: { emailAddress: fx.userAddress || "seller@ours.example", displayName: "Seller" }
      },
      ui: { openBrowserWindow: function (url) { calls.push(["openBrowserWindow", url]); } }
    },
    onReady: function (cb) {
      var info = { host: "Outlook", platform: "OfficeOnline" };
      return new Promise(function (resolve) {
        setTimeout(function () { if (cb) { cb(info); } resolve(info); }, 0);
      });
    }
  };
})();
