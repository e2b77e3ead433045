// The console's small shared layer: integer money, REST writes with the session's CSRF token,
// and the exchange's WebSocket. Every amount stays an integer of fen or tonnes; yuan are only
// ever text.
"use strict";

const CERX = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
  const words = JSON.parse(document.getElementById("js-messages")?.textContent ?? "{}");
  const say = (key) => words[key] ?? key;

  function yuan(fen) {
    if (fen === null || fen === undefined) return "—";
    const sign = fen < 0 ? "-" : "";
    const abs = Math.abs(fen);
    const whole = ((abs - (abs % 100)) / 100).toLocaleString("en-US"); // exact, no rounding
    return `${sign}${whole}.${String(abs % 100).padStart(2, "0")}`;
  }

  // "48.1" -> 4810; anything that is not a plain amount with at most two decimals -> null
  function parseYuan(text) {
    const m = /^\s*(\d{1,10})(?:\.(\d{1,2}))?\s*$/.exec(text);
    if (!m) return null;
    return Number(m[1]) * 100 + Number((m[2] ?? "").padEnd(2, "0"));
  }

  function parseTonnes(text) {
    return /^\s*\d{1,10}\s*$/.test(text) ? Number(text) : null;
  }

  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A REST write, as a program would send it, but signed by the session cookie and the token.
  async function post(path, body, key) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRF-Token": csrf(),
        "Idempotency-Key": key,
      },
      body: JSON.stringify(body),
    });
    return response.json();
  }

  function show(element, reply) {
    element.replaceChildren();
    element.classList.toggle("error", !reply.ok);
    if (reply.ok) {
      element.textContent = say("done");
      return;
    }
    const code = document.createElement("code");
    code.textContent = reply.error.code;
    const key = `error.${reply.error.code}`;
    // the translation when there is one, and the API's own words, which say which field
    const detail = say(key) === key ? reply.error.msg
      : reply.error.msg === reply.error.code ? say(key) : `${say(key)} (${reply.error.msg})`;
    element.append(code, " ", detail);
  }

  // "BLOCK:1-10" per line -> [{block_id, first, last}]; null if a line is not a range
  function parseRanges(text) {
    const ranges = [];
    for (const line of text.split(/[\n,]+/).map((l) => l.trim()).filter(Boolean)) {
      const m = /^([A-Z0-9-]{1,64}):(\d{1,12})-(\d{1,12})$/.exec(line);
      if (!m) return null;
      ranges.push({ block_id: m[1], first: Number(m[2]), last: Number(m[3]) });
    }
    return ranges;
  }

  function read(input) {
    const type = input.dataset.type;
    const text = input.value.trim();
    const list = (parse) => text.split(",").map((v) => v.trim()).filter(Boolean).map(parse);
    switch (type) {
      case "int": return parseTonnes(text) ?? text;
      case "fen": return parseYuan(text) ?? text;
      case "ranges": return parseRanges(text) ?? text;
      case "text-list": return list((v) => v);
      case "int-list": return list((v) => parseTonnes(v) ?? v);
      case "bool": return input.type === "checkbox" ? input.checked : text === "true";
      default: return input.value;
    }
  }

  // A form's fields as the route's JSON body: empty fields are left out (the route's default),
  // data-type says how to read the others, and dotted names nest ("period.start").
  function fields(form) {
    const body = {};
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      const path = input.name.split(".");
      const name = path.pop();
      // a nested struct is sent only if one of its fields is filled in
      const into = () => path.reduce((target, part) => (target[part] ??= {}), body);
      if (input.type === "checkbox" && input.dataset.type === "int-list") {
        into()[name] ??= [];
        if (input.checked) into()[name].push(Number(input.value));
      } else if (input.type === "checkbox" || input.value.trim() !== "") {
        into()[name] = read(input);
      }
    }
    return body;
  }

  // Buttons and forms with data-post send their REST request; the page reloads to show the
  // new state, or shows the refusal with its code.
  function bindActions() {
    for (const element of document.querySelectorAll("[data-post]")) {
      const key = newKey(); // one per control: a double click is one write
      const send = async (event) => {
        event.preventDefault();
        let body = JSON.parse(element.dataset.body ?? "{}");
        if (element.tagName === "FORM") body = { ...body, ...fields(element) };
        const result = document.getElementById(element.dataset.result);
        const reply = await post(element.dataset.post, body, key);
        show(result, reply);
        if (reply.ok) {
          const then = element.dataset.then;
          setTimeout(() => { if (then) location.assign(then); else location.reload(); }, 400);
        }
      };
      element.addEventListener(element.tagName === "FORM" ? "submit" : "click", send);
    }
  }

  // The exchange's WebSocket, same origin; the session cookie signs a person in. Reconnects.
  const utf8 = new TextDecoder();
  const LOST = { ok: false, error: { code: "CONNECTION_LOST", msg: "the connection dropped" } };

  function socket(onOpen, onMessage, onState) {
    let ws;
    let requestId = 0;
    const pending = new Map();
    const open = () => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      ws = new WebSocket(`${scheme}://${location.host}/ws`);
      ws.binaryType = "arraybuffer"; // the exchange sends its JSON in binary frames
      ws.onopen = () => { onState(true); onOpen(); };
      ws.onclose = () => {
        onState(false);
        // what was asked and not answered may or may not have been done: say so, never hang
        for (const resolve of pending.values()) resolve(LOST);
        pending.clear();
        setTimeout(open, 2000);
      };
      ws.onmessage = (event) => {
        const text = typeof event.data === "string" ? event.data : utf8.decode(event.data);
        const message = JSON.parse(text);
        if ("req_id" in message && pending.has(message.req_id)) {
          pending.get(message.req_id)(message);
          pending.delete(message.req_id);
        } else {
          onMessage(message);
        }
      };
    };
    open();
    return {
      request(op, args) {
        if (ws.readyState !== WebSocket.OPEN) return Promise.resolve(LOST);
        requestId += 1;
        const id = requestId;
        return new Promise((resolve) => {
          pending.set(id, resolve);
          ws.send(JSON.stringify({ op, req_id: id, args }));
        });
      },
    };
  }

  document.addEventListener("DOMContentLoaded", bindActions);
  return { yuan, parseYuan, parseTonnes, newKey, post, show, socket, say, lang };
})();
