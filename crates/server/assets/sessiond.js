// sessiond.js — fetch that survives an ended session, as FreeIPA's web UI
// does: when a request is refused with 401 and sessiond's reason header
// (x-sessiond-reason: login-required), log in and retry the request once.
//
//   <script src="/static/sessiond.js"></script>
//   const r = await sessiond.fetch("/api/things", {method: "POST", body: ...});
//
// How to log in is up to the page: sessiond.onLoginRequired is an async
// function that returns true once the user is logged in again (for example
// after a dialog that posts to sessiond.login). The default sends the browser
// to the login page and comes back here afterwards (the retry then happens
// as a fresh page load).
(function () {
  "use strict";
  var REASON = "x-sessiond-reason";

  function loginRequired(response) {
    return response.status === 401 && response.headers.get(REASON) === "login-required";
  }

  var sessiond = {
    loginUrl: "/login",

    // Logs in with a password; resolves to the identity, or rejects with the
    // server's message.
    login: function (user, password, options) {
      var form = new URLSearchParams();
      form.set("user", user);
      form.set("password", password);
      if (options && options.realm) form.set("realm", options.realm);
      if (options && options.remember) form.set("remember", "1");
      return window.fetch("/session/login_password", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest", "Accept": "application/json" },
        body: form
      }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.message || ("login failed: " + r.status));
          return body;
        });
      });
    },

    logout: function () {
      return window.fetch("/session/logout", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest", "Accept": "application/json" }
      });
    },

    onLoginRequired: function () {
      var next = window.location.pathname + window.location.search + window.location.hash;
      window.location.assign(sessiond.loginUrl + "?next=" + encodeURIComponent(next));
      return new Promise(function () {}); // the page is going away
    },

    // window.fetch, plus one login-and-retry on 401 login-required. The
    // request body must be replayable (a string, FormData, URLSearchParams).
    // {passive: true}: background polling, which must not keep the session
    // alive (sessiond then does not count the check as activity).
    fetch: function (input, init) {
      init = Object.assign({ credentials: "same-origin" }, init || {});
      init.headers = Object.assign({ "X-Requested-With": "XMLHttpRequest" }, init.headers || {});
      if (init.passive) init.headers["X-Sessiond-Passive"] = "1";
      delete init.passive;
      return window.fetch(input, init).then(function (response) {
        if (!loginRequired(response)) return response;
        return Promise.resolve(sessiond.onLoginRequired(response)).then(function (ok) {
          return ok ? window.fetch(input, init) : response;
        });
      });
    }
  };

  window.sessiond = sessiond;
})();
