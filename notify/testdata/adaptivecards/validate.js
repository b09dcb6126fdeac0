// Checks Adaptive Cards with Microsoft's own library (the npm package
// "adaptivecards"): parse errors and warnings (unknown element or action
// types, bad values), validation failures, and properties the library does
// not know (dropped when the parsed card is serialised again).
//
// Input on stdin: a JSON object {"name": <Teams Workflows message or card>}.
// Output on stdout: a JSON object {"name": ["problem", ...]}. Exit status 0.
"use strict";
const AC = require("adaptivecards/dist/adaptivecards.js");

function cardOf(doc) {
  if (doc && doc.type === "message" && Array.isArray(doc.attachments)) {
    if (doc.attachments.length !== 1) return { problem: "want exactly one attachment" };
    const a = doc.attachments[0];
    if (a.contentType !== "application/vnd.microsoft.card.adaptive") return { problem: "attachment contentType " + a.contentType };
    return { card: a.content };
  }
  return { card: doc };
}

// dropped lists the keys of want missing from got, recursively.
function dropped(want, got, path, out) {
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) { out.push(path + " is not kept as an array"); return; }
    want.forEach((w, i) => dropped(w, got[i], path + "[" + i + "]", out));
    return;
  }
  if (want === null || typeof want !== "object") return;
  if (got === null || typeof got !== "object") { out.push(path + " is not kept as an object"); return; }
  for (const k of Object.keys(want)) {
    if (k === "$schema") continue;
    if (!(k in got)) {
      // The library omits properties whose value is its default.
      const v = want[k];
      if (v === false || v === "default" || v === "Default") continue;
      out.push(path + "." + k + " is not a known property");
      continue;
    }
    dropped(want[k], got[k], path + "." + k, out);
  }
}

let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const docs = JSON.parse(input);
  const report = {};
  for (const [name, doc] of Object.entries(docs)) {
    const problems = [];
    const { card: json, problem } = cardOf(doc);
    if (problem) problems.push(problem);
    if (json) {
      if (json.type !== "AdaptiveCard") problems.push("type is " + json.type + ", not AdaptiveCard");
      const card = new AC.AdaptiveCard();
      const ctx = new AC.SerializationContext();
      card.parse(json, ctx);
      for (let i = 0; i < ctx.eventCount; i++) {
        const e = ctx.getEventAt(i);
        problems.push("parse: " + AC.ValidationEvent[e.event] + ": " + e.message);
      }
      for (const e of card.validateProperties().validationEvents) {
        problems.push("validation: " + AC.ValidationEvent[e.event] + ": " + e.message);
      }
      dropped(json, card.toJSON(), "card", problems);
    }
    report[name] = problems;
  }
  process.stdout.write(JSON.stringify(report));
});
