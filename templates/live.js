// The live parts of the catalog page: look up an instance, send a command, follow the changes feed.
// Plain JavaScript, no build step.
"use strict";

const show = (value) => {
  document.getElementById("result").textContent =
    typeof value === "string" ? value : JSON.stringify(value, null, 2);
};

async function call(method, url, body, key) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(url, { method, headers, body });
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: response.status, json };
}

document.getElementById("lookup").addEventListener("submit", async (event) => {
  const form = event.target;
  const base = "/" + form.target.value + "/" + encodeURIComponent(form.id.value);
  const state = await call("GET", base);
  const events = await call("GET", base + "/events");
  show({ state: state.json, events: events.json });
});

document.getElementById("send").addEventListener("submit", async (event) => {
  const form = event.target;
  const [domain, aggregate, command] = form.command.value.split("/");
  const url = "/" + domain + "/" + aggregate + "/" + encodeURIComponent(form.id.value) + "/" + command;
  const reply = await call("POST", url, form.body.value || "{}", crypto.randomUUID());
  show({ status: reply.status, reply: reply.json });
});

const lines = [];
let counted = 0;
let since = Date.now();
let position = 0;

// The global changes feed (GET /events): every domain's events in one gapless order, one cursor.
async function follow() {
  for (;;) {
    try {
      // Short polls, not long ones (nor an EventSource on /events/stream): one request a second is light, and a
      // page that never leaves a request pending can be snapshotted by a headless browser
      // (scripts/browser-test.sh).
      const reply = await call("GET", "/events?since=" + position + "&limit=200");
      if (reply.status === 200) {
        for (const e of reply.json.events) {
          lines.push("#" + e.seq + " " + e.domain + " #" + e.domain_seq + " " + e.aggregate + "/" + e.id + " v" + e.version + " " + JSON.stringify(e.event));
          counted += 1;
        }
        position = reply.json.next;
        while (lines.length > 50) lines.shift();
        document.getElementById("tail").textContent = lines.slice().reverse().join("\n");
        if (reply.json.events.length === 0) await new Promise((r) => setTimeout(r, 1000));
      } else {
        await new Promise((r) => setTimeout(r, 1000));
      }
    } catch {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

setInterval(() => {
  const seconds = (Date.now() - since) / 1000;
  document.getElementById("rate").textContent = (counted / seconds).toFixed(1) + " events/s over the last " + seconds.toFixed(0) + " s";
  if (seconds > 10) { counted = 0; since = Date.now(); }
}, 1000);

follow();
