// semichat ChatWidget: history, sending with idempotency keys, and one shared notification stream
// per user per browser. Plain modern JavaScript, no build step.
"use strict";

(() => {
  const USER_ID = /^[A-Za-z0-9_.@-]{1,64}$/;
  const DEFAULT_CONVERSATION = "support-demo";
  const INITIAL_HISTORY = 50;
  // A notification names its message but does not carry it, so each one costs a history read: keep
  // the first page small (5 cost the server and the browser about 40 % less CPU than 20) and page
  // back only until we reach a message already shown and show every notified one (a send that
  // commits late sorts behind messages already shown, beyond a small page). Later pages start at 20
  // and double up to the server's maximum, so a tab back from a long gap (offline, asleep) recovers
  // 300 missed messages in 5 reads and up to 3,305 in all.
  const CATCH_UP_FIRST_PAGE = 5;
  const CATCH_UP_PAGE = 20;
  const CATCH_UP_MAX_PAGE = 200;
  const MAX_CATCH_UP_PAGES = 20;
  const STREAM_BACKOFF = { baseMs: 500, capMs: 10000 };
  const SEND_BACKOFF = { baseMs: 300, capMs: 5000 };
  const SEND_ATTEMPTS = 6;
  // The server sends an `event: heartbeat` every interval its `ready` event states. A stream that
  // stays open but silent this many intervals (a stalled proxy, a dropped NAT entry: EventSource
  // reports neither) is closed and reconnected with the backoff, which refetches history.
  const STALL_INTERVALS = 2;
  const DEFAULT_HEARTBEAT_S = 10;

  // Equal jitter: at least half the exponential delay, so clients that lost the same server spread
  // out instead of reconnecting in lockstep, and never retry in a tight loop.
  function backoffDelay(attempt, { baseMs, capMs }) {
    const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // The n-th read of a catch-up: 5, then 20, 40, 80, 160, then 200 each.
  function catchUpLimit(n) {
    return n === 0 ? CATCH_UP_FIRST_PAGE : Math.min(CATCH_UP_MAX_PAGE, CATCH_UP_PAGE * 2 ** (n - 1));
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function newIdempotencyKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID exists only in secure contexts; a plain-http LAN address still gets a v4 UUID.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // The server orders by (createdAt, messageId); its ISO-8601 UTC strings compare correctly as text.
  function compareMessages(a, b) {
    if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
    if (a.messageId === b.messageId) return 0;
    return a.messageId < b.messageId ? -1 : 1;
  }

  // Demo mode: the user is whoever `?user=` (or the uid cookie) says. Token mode: the page is opened
  // once as `?token=...`; the token is traded for the server's HttpOnly `session` cookie and taken
  // out of the address bar, and the server says who the cookie belongs to.
  async function readIdentity() {
    const params = new URLSearchParams(location.search);
    const token = params.get("token");
    let signInError = null;
    if (token) {
      params.delete("token");
      const query = params.toString();
      history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
      const resp = await fetch("/api/session", {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      if (!resp.ok) signInError = (await resp.json().catch(() => ({}))).error || `HTTP ${resp.status}`;
    }
    const session = await (await fetch("/api/session")).json();
    if (session.auth === "token") {
      return {
        mode: "token",
        user: session.userId,
        conversationId: params.get("conversation") || session.supportConversationId,
        signInError,
      };
    }
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("uid="));
    const user = params.get("user") || (cookie ? cookie.slice(4) : "");
    const conversationId = params.get("conversation") || DEFAULT_CONVERSATION;
    return { mode: "demo", user: USER_ID.test(user) ? user : null, conversationId };
  }

  // EventSource cannot send headers, so the stream authenticates with this cookie. The allowed
  // user-id characters are all legal in a cookie value, so no encoding (which the server would not
  // undo) is needed.
  function rememberUser(user) {
    document.cookie = `uid=${user}; path=/; max-age=31536000; SameSite=Strict`;
  }

  function safeJson(text) {
    try {
      return JSON.parse(text) || {};
    } catch {
      return {};
    }
  }

  class HttpError extends Error {
    constructor(status, message) {
      super(message || `HTTP ${status}`);
      this.status = status;
    }
  }

  class ChatApi {
    constructor(user, mode) {
      // Demo: the header wins over a cookie that another tab of a different user may have
      // overwritten. Token: the browser sends the HttpOnly session cookie by itself.
      this.headers = mode === "demo" ? { "x-user-id": user } : {};
    }

    async history(conversationId, { limit, cursor } = {}) {
      const q = new URLSearchParams({ conversationId, limit: String(limit) });
      if (cursor) q.set("cursor", cursor);
      const resp = await fetch(`/api/chat/history?${q}`, { headers: this.headers });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new HttpError(resp.status, body.error);
      return body;
    }

    // Resolves with the server's answer whatever its status; rejects only on a network error, the
    // one case where the outcome is unknown and a retry with the same key is the way to learn it.
    async send(conversationId, text, idempotencyKey) {
      const resp = await fetch("/api/chat/send", {
        method: "POST",
        headers: { ...this.headers, "content-type": "application/json" },
        body: JSON.stringify({ conversationId, text, idempotencyKey }),
      });
      const body = await resp.json().catch(() => ({}));
      return { status: resp.status, body };
    }
  }

  class MessageList {
    constructor(scroller, list, pendingList, me) {
      this.scroller = scroller;
      this.list = list;
      this.pendingList = pendingList;
      this.me = me;
      this.shown = []; // sorted by (createdAt, messageId), parallel to the <li> order
      this.ids = new Set();
      window.semichatView = window.semichatView || [];
    }

    has(messageId) {
      return this.ids.has(messageId);
    }

    get size() {
      return this.ids.size;
    }

    // Returns false when the message is already shown: history pages overlap and a sender sees its
    // own message both from the send response and from the next fetch.
    add(msg) {
      if (!msg || !msg.messageId || this.ids.has(msg.messageId)) return false;
      const stick = this.atBottom();
      let i = this.shown.length;
      while (i > 0 && compareMessages(this.shown[i - 1].msg, msg) > 0) i--;
      const el = this.render(msg, msg.senderId === this.me);
      this.list.insertBefore(el, i < this.shown.length ? this.shown[i].el : null);
      this.shown.splice(i, 0, { msg, el });
      this.ids.add(msg.messageId);
      window.semichatView.push({ messageId: msg.messageId, t: Date.now() / 1000 });
      if (this.onShown) this.onShown(msg);
      if (stick) this.scrollToBottom();
      return true;
    }

    addPending(text) {
      const el = this.render({ senderId: this.me, text }, true);
      el.dataset.testid = "chat-pending";
      el.classList.add("pending");
      this.pendingList.append(el);
      this.scrollToBottom();
      return el;
    }

    render(msg, mine) {
      const li = document.createElement("li");
      li.className = mine ? "chat-message mine" : "chat-message";
      if (msg.messageId) {
        li.dataset.testid = "chat-message";
        li.dataset.messageId = msg.messageId;
      }
      const meta = document.createElement("div");
      meta.className = "chat-meta";
      const sender = document.createElement("span");
      sender.className = "sender";
      sender.textContent = msg.senderId;
      const time = document.createElement("time");
      if (msg.createdAt) {
        time.dateTime = msg.createdAt;
        time.textContent = new Date(msg.createdAt).toLocaleTimeString([], {
          hour: "2-digit",
          minute: "2-digit",
        });
      } else {
        time.textContent = "sending…";
      }
      meta.append(sender, time);
      const text = document.createElement("div");
      text.className = "chat-text";
      // Never innerHTML: message text is whatever another user typed.
      text.textContent = msg.text;
      li.append(meta, text);
      return li;
    }

    atBottom() {
      const s = this.scroller;
      return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
    }

    scrollToBottom() {
      this.scroller.scrollTop = this.scroller.scrollHeight;
    }
  }

  // Brings the view up to date with the server's history. Calls while a fetch runs collapse into one
  // more fetch afterwards, so a burst of notifications costs two reads, not one per notification.
  class HistorySync {
    constructor(api, conversationId, messages, onError) {
      this.api = api;
      this.conversationId = conversationId;
      this.messages = messages;
      this.onError = onError;
      this.running = null;
      this.again = false;
      this.loaded = false;
      // Ids of notified messages not shown yet: the next catch-up pages back until it shows them.
      this.wanted = new Set();
    }

    request(messageId) {
      if (messageId) this.wanted.add(messageId);
      if (this.running) {
        this.again = true;
        return this.running;
      }
      this.running = (async () => {
        try {
          do {
            this.again = false;
            await this.catchUp();
          } while (this.again);
          this.onError(null);
        } catch (err) {
          // The stream's reconnect triggers another fetch, so a failed one is only reported.
          this.onError(err);
        } finally {
          this.running = null;
        }
      })();
      return this.running;
    }

    async catchUp() {
      // Ids notified while this runs are left to the next catch-up, which `again` guarantees.
      const wanted = [...this.wanted];
      if (!this.loaded) {
        const page = await this.api.history(this.conversationId, { limit: INITIAL_HISTORY });
        page.messages.forEach((m) => this.messages.add(m));
        this.loaded = true;
      } else {
        // Pages are shown together once the last is read: shown one by one, a first page of newer
        // messages would stand above a gap that its next page fills a read later.
        const found = [];
        try {
          let cursor = null;
          for (let n = 0; n < MAX_CATCH_UP_PAGES; n++) {
            const limit = catchUpLimit(n);
            const page = await this.api.history(this.conversationId, { limit, cursor });
            const reachedKnown = page.messages.some((m) => this.messages.has(m.messageId));
            found.push(...page.messages);
            const ids = new Set(found.map((m) => m.messageId));
            const reachedWanted = wanted.every((id) => this.messages.has(id) || ids.has(id));
            if ((reachedKnown && reachedWanted) || !page.nextCursor) break;
            cursor = page.nextCursor;
          }
        } finally {
          found.forEach((m) => this.messages.add(m));
        }
      }
      // Found, or not within reach: seeking them again would only repeat these reads. A failed read
      // throws before this line and keeps them for the catch-up that follows it.
      wanted.forEach((id) => this.wanted.delete(id));
    }
  }

  // One EventSource per user per browser. The server keeps one queue per user, so two streams of the
  // same user would compete for each notification; and HTTP/1.1 allows only six connections per
  // host, so a stream per tab would stall the seventh tab. The tab holding a Web Lock owns the stream
  // and relays over a BroadcastChannel; closing it releases the lock to a waiting tab.
  class SharedStream {
    constructor(user, mode, { onNotification, onStatus }) {
      this.user = user;
      this.mode = mode;
      this.onNotification = onNotification;
      this.onStatus = onStatus;
      this.channel = new BroadcastChannel(`semichat:${user}`);
      this.channel.onmessage = (event) => this.onRelay(event.data);
      this.role = "follower";
      this.state = "connecting";
      this.attempt = 0;
      this.source = null;
    }

    start() {
      if (!navigator.locks) {
        // Web Locks need a secure context; without them every tab streams for itself.
        this.lead();
        return;
      }
      navigator.locks
        .request(`semichat-stream:${this.user}`, () => this.lead())
        // A lock that cannot be had at all must not leave the tab without notifications.
        .catch(() => this.role === "follower" && this.lead());
      this.channel.postMessage({ type: "hello" });
    }

    lead() {
      this.role = "leader";
      this.setStatus("connecting");
      this.connect();
      // Held for the life of the tab: the browser releases it when the tab goes away.
      return new Promise(() => {});
    }

    connect() {
      // Another user's tab in this browser may have replaced the cookie the stream authenticates with.
      if (this.mode === "demo") rememberUser(this.user);
      const source = new EventSource("/api/chat/stream");
      this.source = source;
      this.heartbeatMs = DEFAULT_HEARTBEAT_S * 1000;
      source.onopen = () => {
        this.attempt = 0;
        this.setStatus("connected");
        this.watch(source);
      };
      source.addEventListener("ready", (event) => {
        const seconds = Number(safeJson(event.data).heartbeatSeconds);
        if (seconds > 0) this.heartbeatMs = seconds * 1000;
        this.watch(source);
      });
      source.addEventListener("heartbeat", () => this.watch(source));
      source.onmessage = (event) => {
        this.watch(source);
        let notification;
        try {
          notification = JSON.parse(event.data);
        } catch {
          return;
        }
        this.channel.postMessage({ type: "notify", notification });
        this.onNotification(notification);
      };
      // EventSource would retry on its own at a fixed interval, with no jitter and no cap on how
      // many clients hit a recovering server at once; close it and drive the retries here.
      source.onerror = () => this.drop(source);
    }

    // Any event proves the stream alive; silence for STALL_INTERVALS heartbeats drops it.
    watch(source) {
      clearTimeout(this.watchdog);
      this.watchdog = setTimeout(() => {
        window.semichatStalls = (window.semichatStalls || 0) + 1;
        this.drop(source);
      }, STALL_INTERVALS * this.heartbeatMs);
    }

    drop(source) {
      source.close();
      if (this.source !== source) return;
      clearTimeout(this.watchdog);
      this.source = null;
      this.setStatus("reconnecting");
      setTimeout(() => this.connect(), backoffDelay(this.attempt++, STREAM_BACKOFF));
    }

    setStatus(state) {
      this.state = state;
      this.onStatus(state, this.role);
      this.channel.postMessage({ type: "status", state });
    }

    onRelay(msg) {
      if (this.role === "leader") {
        if (msg.type === "hello") this.channel.postMessage({ type: "status", state: this.state });
        return;
      }
      if (msg.type === "notify") this.onNotification(msg.notification);
      else if (msg.type === "status") this.onStatus(msg.state, this.role);
    }
  }

  class ChatWidget {
    constructor(root) {
      this.el = {
        conversation: root.querySelector("#chat-conversation"),
        user: root.querySelector("#chat-user"),
        status: root.querySelector("[data-testid=chat-status]"),
        scroller: root.querySelector(".chat-scroll"),
        messages: root.querySelector("#chat-messages"),
        pending: root.querySelector("#chat-pending"),
        error: root.querySelector("#chat-error"),
        announce: root.querySelector("#chat-announce"),
        form: root.querySelector("#chat-form"),
        input: root.querySelector("[data-testid=chat-input]"),
        send: root.querySelector("[data-testid=chat-send]"),
      };
    }

    async start() {
      let identity;
      try {
        identity = await readIdentity();
      } catch (err) {
        this.signedOut(`Could not reach the server: ${err.message}`);
        return;
      }
      const { mode, user, conversationId, signInError } = identity;
      if (!user) {
        this.signedOut(
          mode === "token"
            ? `Sign in: open this page as /?token=<token from \`semichat token USER\`>` +
                (signInError ? ` (${signInError})` : "")
            : "Open this page as /?user=alice&conversation=support-demo",
        );
        return;
      }
      if (mode === "demo") rememberUser(user);
      this.user = user;
      this.conversationId = conversationId;
      this.el.conversation.textContent = conversationId;
      this.el.user.textContent = `signed in as ${user}`;
      document.title = `${conversationId} · semichat`;

      this.api = new ChatApi(user, mode);
      this.messages = new MessageList(this.el.scroller, this.el.messages, this.el.pending, user);
      this.messages.onShown = (msg) => this.announce(msg);
      this.announced = [];
      this.sync = new HistorySync(this.api, conversationId, this.messages, (err) =>
        this.showError(err && `Could not load messages: ${err.message}`),
      );
      this.stream = new SharedStream(user, mode, {
        onNotification: (n) => {
          if (n && n.conversationId === conversationId && !this.messages.has(n.messageId)) {
            this.sync.request(n.messageId);
          }
        },
        onStatus: (state, role) => this.showStatus(state, role),
      });

      this.el.form.addEventListener("submit", (event) => {
        event.preventDefault();
        const text = this.el.input.value.trim();
        if (!text) return;
        this.el.input.value = "";
        this.send(text);
      });

      this.sync.request();
      this.stream.start();
    }

    signedOut(message) {
      this.showError(message);
      this.el.input.disabled = this.el.send.disabled = true;
    }

    showStatus(state, role) {
      const status = this.el.status;
      status.dataset.state = state;
      status.dataset.role = role;
      status.textContent = state === "connected" ? "connected" : `${state}…`;
      status.title = role === "leader" ? "this tab holds the stream" : "stream shared by another tab";
      // Every (re)connect may follow a gap in which notifications were lost: read history again.
      if (state === "connected") this.sync.request();
    }

    // Screen readers hear others' new messages through the live region; the history shown on
    // opening is not read out, and a catch-up of many is summed up rather than read one by one.
    announce(msg) {
      if (!this.sync.loaded || msg.senderId === this.user) return;
      this.announced.push(msg);
      if (this.announced.length > 1) return;
      setTimeout(() => {
        const batch = this.announced;
        this.announced = [];
        const last = batch[batch.length - 1];
        const text = `${last.senderId}: ${last.text}`;
        this.el.announce.textContent =
          batch.length === 1 ? text : `${batch.length} new messages; the latest, ${text}`;
      }, 0);
    }

    showError(message) {
      this.el.error.hidden = !message;
      this.el.error.textContent = message || "";
    }

    send(text) {
      const pending = this.messages.addPending(text);
      // One key per message, kept across retries: the server answers a repeat with the original.
      const key = newIdempotencyKey();
      this.deliver(text, key, pending);
    }

    async deliver(text, key, pending) {
      pending.classList.remove("failed");
      pending.onclick = null;
      for (let attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
        if (attempt > 0) await sleep(backoffDelay(attempt - 1, SEND_BACKOFF));
        let result;
        try {
          result = await this.api.send(this.conversationId, text, key);
        } catch {
          continue; // network error: the server may or may not have the message; ask again.
        }
        const { status, body } = result;
        if (status === 200 || status === 201) {
          pending.remove();
          if (body.createdAt) this.messages.add({ ...body, text });
          else this.sync.request();
          return;
        }
        if (status < 500 && status !== 429) {
          // The server understood and refused: the same request would be refused again.
          this.markFailed(pending, body.error || `HTTP ${status}`, null);
          return;
        }
      }
      this.markFailed(pending, "not sent, click to retry", () => this.deliver(text, key, pending));
    }

    markFailed(pending, reason, retry) {
      pending.classList.add("failed");
      pending.querySelector("time").textContent = reason;
      pending.onclick = retry;
    }
  }

  // The pure parts, reachable from browser tests and the devtools console.
  window.semichat = Object.freeze({
    backoffDelay,
    catchUpLimit,
    compareMessages,
    STALL_INTERVALS,
    STREAM_BACKOFF,
  });

  const start = () => new ChatWidget(document).start();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
