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
