// Progressive enhancement only: tell the server the browser's time zone so
// dates show in local time. Every page works without this file.
(function () {
  "use strict";
  var tz;
  try {
    tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!tz || tz.length > 64) {
    return;
  }
  var current = document.cookie.split("; ").filter(function (c) {
    return c.indexOf("microapps_tz=") === 0;
  })[0];
  var value = encodeURIComponent(tz);
  if (current === "microapps_tz=" + value) {
    return;
  }
  var secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = "microapps_tz=" + value + "; path=/; max-age=31536000; samesite=lax" + secure;
  // First visit: show this page in local time too, once.
  var stored = document.cookie.indexOf("microapps_tz=" + value) !== -1;
  if (stored && !current && tz !== "UTC" && document.documentElement.getAttribute("data-tz") === "UTC") {
    location.reload();
  }
})();

// Progressive enhancement only: a section marked data-refresh (the console's
// runs while a sync is queued or running) is re-fetched every few seconds and
// swapped in place until it no longer asks to be. Without this file the
// section's own "Refresh" link does the same by hand.
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser) {
    return;
  }
  function poll(el) {
    var url = el.getAttribute("data-refresh");
    if (!url || url.charAt(0) !== "/") {
      return;
    }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (res) {
          if (!res.ok) {
            throw new Error("HTTP " + res.status);
          }
          return res.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(el.id);
          if (!fresh) {
            return;
          }
          var node = document.importNode(fresh, true);
          el.replaceWith(node);
          poll(node);
        })
        .catch(function () {
          // Leave the section as it is; its Refresh link still works.
        });
    }, 2000);
  }
  var sections = document.querySelectorAll("[data-refresh]");
  for (var i = 0; i < sections.length; i++) {
    poll(sections[i]);
  }
})();
