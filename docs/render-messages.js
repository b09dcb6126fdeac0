// Writes an HTML page for each chat message the notify tests kept
// (MICROAPPS_MESSAGES_DIR): Teams cards rendered by Microsoft's adaptivecards
// library, with its markdown hook reading backslash escapes as Teams does,
// and Slack Block Kit messages drawn plainly (an approximation: Slack has no
// public renderer). docs/render-messages.sh screenshots the pages.
"use strict";
const fs = require("fs");
const path = require("path");

const dir = process.argv[2];
const lib = path.resolve(__dirname, "../notify/testdata/adaptivecards/node_modules/adaptivecards/dist/adaptivecards.min.js");
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
// Slack shows mrkdwn's &lt; &gt; &amp; as < > &.
const slackText = (s) => esc(s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"));

const page = (body) => `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;padding:16px;background:#f5f5f5;font-family:"Segoe UI",Arial,sans-serif}
.msg{background:#fff;border-radius:6px;padding:14px 16px;max-width:560px;box-shadow:0 1px 3px #0002}
.who{font-weight:700;font-size:14px;margin-bottom:6px}.who span{font-weight:400;color:#777;font-size:12px;margin-left:6px}
.h{font-weight:800;font-size:17px;margin:2px 0 6px}.s{font-size:14px;line-height:1.45;margin:0 0 8px}
.c{font-size:12px;color:#616061;margin:0 0 10px}.c span+span:before{content:" · "}
.b{display:inline-block;border:1px solid #ccc;border-radius:4px;padding:5px 12px;margin:0 6px 6px 0;font-size:13px;font-weight:700;color:#1d1c1d}
.b.p{background:#007a5a;border-color:#007a5a;color:#fff}
</style></head><body>${body}</body></html>`;

for (const f of fs.readdirSync(dir)) {
  if (!f.endsWith(".json")) continue;
  const doc = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  let html;
  if (f.startsWith("teams-")) {
    const card = JSON.stringify(doc.attachments[0].content).replace(/</g, "\\u003c");
    html = page(`<div class="msg"><div class="who">Workflows <span>via microapps</span></div><div id="card"></div></div>
<script src="file://${lib}"></script><script>
AdaptiveCards.AdaptiveCard.onProcessMarkdown = function (text, result) {
  var e = function (s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); };
  result.outputHtml = e(text.replace(/\\\\(.)/g, "$1"));
  result.didProcess = true;
};
var c = new AdaptiveCards.AdaptiveCard();
c.parse(${card});
document.getElementById("card").appendChild(c.render());
</script>`);
  } else if (f.startsWith("slack-")) {
    const parts = [];
    for (const b of doc.blocks) {
      if (b.type === "header") parts.push(`<div class="h">${esc(b.text.text)}</div>`);
      if (b.type === "section") parts.push(`<p class="s">${slackText(b.text.text)}</p>`);
      if (b.type === "context") parts.push(`<p class="c">${b.elements.map((e) => `<span>${slackText(e.text)}</span>`).join("")}</p>`);
      if (b.type === "actions") parts.push(`<div>${b.elements.map((e) => `<span class="b${e.style === "primary" ? " p" : ""}">${esc(e.text.text)}</span>`).join("")}</div>`);
    }
    html = page(`<div class="msg"><div class="who">microapps <span>APP</span></div>${parts.join("")}</div>`);
  } else {
    continue;
  }
  fs.writeFileSync(path.join(dir, f.replace(/\.json$/, ".html")), html);
}
