// Cordon moderator console. Every state change goes through the JSON API with the session's
// CSRF token. Nothing from the server is ever inserted as HTML: only textContent.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const csrf = meta("csrf-token");
const undoSecs = Number(meta("undo-secs") || "5");
let pending = null; // { timer, tick, label }

function say(text, kind = "info") {
  const el = document.getElementById("status");
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* empty body */ }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function claimNext() {
  try {
    const data = await api("POST", "/v1/cases/claim", {});
    if (data.case) {
      window.location.assign(`/console/cases/${data.case.id}`);
    } else {
      say("The queue is empty.");
    }
  } catch (e) {
    say(`Could not claim a case: ${e.message}`, "error");
  }
}

function caseInfo() {
  const el = document.getElementById("case");
  if (!el) return null;
  return {
    id: Number(el.dataset.caseId),
    version: Number(el.dataset.version),
    channelId: el.dataset.channelId,
    reason: document.getElementById("reason")?.value ?? "",
    note: document.getElementById("note")?.value.trim() || undefined,
    noRequeue: document.getElementById("no-requeue")?.checked ?? false,
  };
}

function appealInfo() {
  const el = document.getElementById("appeal");
  if (!el) return null;
  return {
    id: Number(el.dataset.appealId),
    reason: document.getElementById("reason")?.value ?? "",
    note: document.getElementById("note")?.value.trim() || undefined,
  };
}

function request(action, c) {
  switch (action) {
    case "uphold":
    case "reverse":
      return ["POST", `/v1/appeals/${c.id}/decision`, { outcome: action, reason: c.reason, note: c.note }];
    case "suppress":
    case "restore":
      return ["POST", `/v1/cases/${c.id}/decision`, {
        action, reason: c.reason, note: c.note, version: c.version,
        no_requeue: action === "restore" && c.noRequeue,
      }];
    case "escalate":
      return ["POST", `/v1/cases/${c.id}/escalate`, { version: c.version, note: c.note }];
    case "suppress_channel":
    case "restore_channel":
      return ["POST", "/v1/channel-decisions", {
        channel_id: c.channelId, action: action.replace("_channel", ""), reason: c.reason,
        note: c.note, case_id: c.id, version: c.version,
      }];
    default:
      return null;
  }
}

// A decision waits undoSecs before it is sent; `u` (or the Undo button) cancels it.
function schedule(action) {
  const appeal = action === "uphold" || action === "reverse";
  const c = appeal ? appealInfo() : caseInfo();
  if (!c) return;
  const req = request(action, c);
  if (!req) return;
  if (pending) undo();
  const label = action.replace("_", " ");
  let left = undoSecs;
  const what = appeal ? "appeal" : "case";
  const show = () => say(`${label} ${what} #${c.id} in ${left} s — press u to undo`, "pending");
  show();
  const tick = setInterval(() => { left -= 1; if (left > 0) show(); }, 1000);
  const timer = setTimeout(async () => {
    clearInterval(tick);
    pending = null;
    try {
      await api(...req);
      say(`Done: ${label} ${what} #${c.id}.` + (appeal ? "" : " Press n for the next case."), "done");
      setTimeout(() => window.location.reload(), 600);
    } catch (e) {
      say(`Refused: ${e.message}`, "error");
    }
  }, undoSecs * 1000);
  pending = { timer, tick, label };
}

function undo() {
  if (!pending) return;
  clearTimeout(pending.timer);
  clearInterval(pending.tick);
  say(`Undone: ${pending.label} was not sent.`);
  pending = null;
}

function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  const key = event.key.toLowerCase();
  if (key === "n") { event.preventDefault(); claimNext(); }
  else if (key === "u") { event.preventDefault(); undo(); }
  else if (document.getElementById("case")) {
    const action = { s: "suppress", r: "restore", e: "escalate" }[key];
    if (action) { event.preventDefault(); schedule(action); }
  }
});

document.addEventListener("click", async (event) => {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  if (target.matches("img.blurred, img.revealed")) {
    target.classList.toggle("blurred");
    target.classList.toggle("revealed");
    return;
  }
  if (target.matches("button.load-media")) {
    // Only now, and only from Cordon's media proxy: the content's author never sees the
    // moderator, and nothing loads without being asked for.
    const img = document.createElement("img");
    img.className = "blurred";
    img.alt = "attached image (click to reveal)";
    img.title = "Click to reveal";
    img.referrerPolicy = "no-referrer";
    img.src = target.dataset.src;
    target.replaceWith(img);
    return;
  }
  if (target.id === "logout") {
    try { await api("DELETE", "/v1/session"); } catch (_) { /* already signed out */ }
    window.location.assign("/console/login");
    return;
  }
  if (target.id === "claim-next") { claimNext(); return; }
  if (target.id === "select-all") {
    document.querySelectorAll("input.pick").forEach((box) => { box.checked = target.checked; });
    return;
  }
  if (target.dataset.appeal) { schedule(target.dataset.appeal); return; }
  const action = target.dataset.action;
  if (action === "next") { claimNext(); return; }
  if (action) { schedule(action); return; }
  if (target.matches("button.toggle-disabled")) {
    const username = target.closest("tr")?.dataset.username;
    const disabled = target.dataset.disabled !== "true";
    try {
      await api("PATCH", `/v1/accounts/${encodeURIComponent(username)}`, { disabled });
      window.location.reload();
    } catch (e) { say(e.message, "error"); }
  }
});

document.addEventListener("change", async (event) => {
  const target = event.target;
  if (!(target instanceof HTMLSelectElement) || !target.matches("select.role-select")) return;
  const username = target.closest("tr")?.dataset.username;
  try {
    await api("PATCH", `/v1/accounts/${encodeURIComponent(username)}`, { role: target.value });
    say(`${username} is now ${target.value}.`, "done");
  } catch (e) { say(e.message, "error"); }
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.id === "bulk") {
    event.preventDefault();
    const ids = [...document.querySelectorAll("input.pick:checked")].map((b) => Number(b.value));
    if (ids.length === 0) { say("Select cases first.", "error"); return; }
    const data = new FormData(form);
    try {
      const result = await api("POST", "/v1/cases/bulk-decision", {
        case_ids: ids, action: data.get("action"), reason: data.get("reason"),
        note: data.get("note") || undefined,
      });
      const refused = result.results.filter((r) => r.error);
      say(`${result.decided} decided, ${refused.length} refused` +
        (refused.length ? `: ${refused.map((r) => `#${r.case_id} ${r.error}`).join("; ")}` : ""),
        refused.length ? "error" : "done");
      if (!refused.length) setTimeout(() => window.location.reload(), 800);
    } catch (e) { say(e.message, "error"); }
  } else if (form.id === "add-account") {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("POST", "/v1/accounts", {
        username: data.get("username"), role: data.get("role"),
        password: data.get("password") || undefined,
      });
      window.location.reload();
    } catch (e) { say(e.message, "error"); }
  }
});
