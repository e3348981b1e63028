/* Mailwarden add-in: what both panes share (API calls, sign-in by device code, sign-out).
   No framework, no build step; text is always set with textContent, never as HTML. */
(function () {
  "use strict";
  var TOKEN_KEY = "mailwarden.addin.token";
  var base = document.documentElement.getAttribute("data-base") || "";

  function token() { try { return window.localStorage.getItem(TOKEN_KEY); } catch (e) { return null; } }
  function setToken(value) {
    try {
      if (value) { window.localStorage.setItem(TOKEN_KEY, value); } else { window.localStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* storage blocked: the pane signs in again next time */ }
  }

  function request(path, options) {
    options = options || {};
    var headers = { "Accept": "application/json" };
    var t = token();
    if (t && !options.anonymous) { headers.Authorization = "Bearer " + t; }
    var body;
    if (options.body !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(options.body); }
    return fetch(base + path, { method: options.method || "GET", headers: headers, body: body, credentials: "omit" })
      .then(function (response) {
        return response.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
          if (response.status === 401 && !options.anonymous) { setToken(null); }
          return { status: response.status, ok: response.ok, data: data };
        });
      });
  }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) { return; }
      if (k === "text") { node.textContent = v; } else if (k === "on") {
        Object.keys(v).forEach(function (ev) { node.addEventListener(ev, v[ev]); });
      } else if (v === true) { node.setAttribute(k, ""); } else { node.setAttribute(k, String(v)); }
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) { continue; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function $(id) { return document.getElementById(id); }
  function status(text, isError) {
    var s = $("status");
    s.textContent = text || "";
    s.className = isError ? "error" : "muted";
    s.hidden = !text;
  }
  function errorText(answer) {
    var d = answer && answer.data;
    if (!d) { return "Error " + (answer ? answer.status : ""); }
    if (d.detail) { return String(d.detail); }
    return Object.keys(d).map(function (k) { return k + ": " + [].concat(d[k]).join(" "); }).join("; ");
  }

  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  /* Device-code sign-in: show the code, open the approval page, poll until a token comes. */
  function signIn(onSignedIn) {
    $("sign-in").disabled = true;
    request("/addin/device/start/", { method: "POST", anonymous: true }).then(function (answer) {
      if (!answer.ok) { status("Sign-in could not start: " + errorText(answer), true); $("sign-in").disabled = false; return; }
      var grant = answer.data;
      $("user-code").textContent = grant.user_code;
      var link = $("verify-link");
      link.textContent = grant.verification_uri;
      link.href = grant.verification_uri_complete;
      $("device").hidden = false;
      if (window.Office && Office.context && Office.context.ui && Office.context.ui.openBrowserWindow) {
        try { Office.context.ui.openBrowserWindow(grant.verification_uri_complete); } catch (e) { /* the link stays */ }
      }
      var deadline = Date.now() + grant.expires_in * 1000;
      var interval = Math.max(1, grant.interval) * 1000;
      function poll() {
        if (Date.now() > deadline) { status("The code expired. Sign in again.", true); $("sign-in").disabled = false; $("device").hidden = true; return; }
        wait(interval).then(function () {
          return request("/addin/device/token/", { method: "POST", anonymous: true, body: { device_code: grant.device_code } });
        }).then(function (r) {
          if (r.ok) {
            setToken(r.data.access_token);
            $("device").hidden = true;
            $("signin").hidden = true;
            $("sign-in").disabled = false;
            onSignedIn();
            return;
          }
          var code = r.data && r.data.error;
          if (code === "slow_down") { interval += 1000; }
          if (code === "authorization_pending" || code === "slow_down") { poll(); return; }
          status("Sign-in failed: " + ((r.data && r.data.error_description) || code), true);
          $("sign-in").disabled = false;
          $("device").hidden = true;
        });
      }
      poll();
    });
  }

  function signOut(onSignedOut) {
    request("/api/v1/addin/sign-out/", { method: "POST" }).then(function () {
      setToken(null);
      onSignedOut();
    });
  }

  /* Start a pane: sign-in screen without a token, else `start()`; wires sign-in/out. */
  function boot(start) {
    function showSignIn() {
      $("pane").hidden = true;
      $("sign-out").hidden = true;
      $("who").textContent = "";
      $("signin").hidden = false;
      status("");
    }
    function run() {
      if (!token()) { showSignIn(); return; }
      $("signin").hidden = true;
      $("sign-out").hidden = false;
      start().catch(function (e) { status(String(e && e.message || e), true); });
    }
    $("sign-in").addEventListener("click", function () { signIn(run); });
    $("sign-out").addEventListener("click", function () { signOut(showSignIn); });
    Office.onReady(function () { run(); });
  }

  /* Office's callback APIs as promises. */
  function officeAsync(fn) {
    return new Promise(function (resolve, reject) {
      fn(function (result) {
        if (result.status === "succeeded" || (window.Office && result.status === Office.AsyncResultStatus.Succeeded)) {
          resolve(result.value);
        } else {
          reject(new Error((result.error && result.error.message) || "Outlook refused the request."));
        }
      });
    });
  }

  window.Mailwarden = {
    base: base, request: request, el: el, $: $, status: status, errorText: errorText,
    wait: wait, boot: boot, officeAsync: officeAsync, token: token, setToken: setToken
  };
})();
