// The web chat: post a question to the webchat channel, long-poll for the replies.
// Every text from the server or the user is set with textContent: nothing is parsed as HTML.
"use strict";

(function () {
  const channel = document.body.dataset.channel;
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const form = document.getElementById("ask");
  const question = document.getElementById("question");
  const send = document.getElementById("send");
  const URL_PATTERN = /(https?:\/\/[^\s<>"'，。；）]+)/g;

  function token() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // One conversation per browser tab: a reload keeps it, another tab starts its own.
  let conversation = sessionStorage.getItem("civicdesk-conversation");
  if (!conversation) {
    conversation = token();
    sessionStorage.setItem("civicdesk-conversation", conversation);
  }
  let lastSeq = 0;
  let polling = false;
  let waiting = 0; // questions sent and not answered yet
  // Every message gets a reply within seconds, except a follow-up added to a question a person
  // already has, when the citizen was told so a moment ago (docs/conversations.md): "Replying…"
  // then stops after this long rather than spin for ever.
  const QUIET_AFTER_MS = 20000;
  let lastProgress = 0;

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function appendText(parent, text) {
    // Links become <a> elements built from the text itself; everything else stays text.
    let last = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      parent.append(document.createTextNode(text.slice(last, match.index)));
      const link = document.createElement("a");
      link.href = match[0];
      link.textContent = match[0];
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      parent.append(link);
      last = match.index + match[0].length;
    }
    parent.append(document.createTextNode(text.slice(last)));
  }

  function show(who, text) {
    const item = document.createElement("div");
    item.className = "msg " + who;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who === "mine" ? "您 You" : "客服 Desk";
    item.append(label);
    appendText(item, text);
    log.append(item);
    item.scrollIntoView({ block: "end" });
  }

  async function poll() {
    if (polling) return;
    polling = true;
    // Keeps polling once started: a human's answer to an escalated question comes later too.
    for (;;) {
      try {
        const query = new URLSearchParams({ conversation, after: String(lastSeq) });
        const response = await fetch("/chat/api/replies?" + query, { cache: "no-store" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const data = await response.json();
        for (const reply of data.replies) {
          if (reply.seq <= lastSeq) continue;
          lastSeq = reply.seq;
          waiting = Math.max(0, waiting - 1);
          lastProgress = Date.now();
          show("bot", reply.text);
        }
        if (waiting > 0 && Date.now() - lastProgress > QUIET_AFTER_MS) waiting = 0;
        setStatus(waiting > 0 ? "正在回复… Replying…" : "");
      } catch (err) {
        setStatus("连接中断，正在重试… Connection lost, retrying…", true);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) return;
    send.disabled = true;
    try {
      const response = await fetch("/webhooks/" + encodeURIComponent(channel), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id: token(), conversation, text }),
      });
      if (!response.ok) {
        let detail = "HTTP " + response.status;
        try { detail = (await response.json()).error || detail; } catch (e) { /* not JSON */ }
        setStatus("发送失败，请稍后再试。 Not sent, please try again. (" + detail + ")", true);
        return;
      }
      show("mine", text);
      question.value = "";
      waiting += 1;
      lastProgress = Date.now();
      setStatus("正在回复… Replying…");
      poll();
    } catch (err) {
      setStatus("无法连接服务器，请稍后再试。 Cannot reach the server, please try again.", true);
    } finally {
      send.disabled = false;
      question.focus();
    }
  });

  question.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter starts a new line (and IME composition is left alone).
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
