// term.js: the web terminal page of osmanager (agent/webssh). It logs in,
// runs xterm.js, and speaks the websocket protocol documented in
// agent/webssh/doc.go: binary messages whose first byte is the type.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const csrf = document.body.dataset.csrf;
  const enc = new TextEncoder();
  const T = { hello: 0x68, input: 0x69, resize: 0x72, ack: 0x61, attached: 0x41, output: 0x6f, inputAck: 0x6b, exit: 0x78 };
  const RESUME_MS = 55000; // the server keeps a dropped session 60 s
  const IN_CHUNK = 16384;

  let term = null, fit = null, ws = null;
  let sid = null; // Uint8Array(16) of the session to resume
  let rx = 0, processed = 0, acked = 0, window_ = 512 << 10, inWindow = 64 << 10;
  let inSent = 0, inAcked = 0, inKeptBase = 0;
  let inKept = []; // input sent and not yet acknowledged: resent after a resume
  let inQueue = []; // input not yet sent (over the credit, or offline)
  let ended = false, lostAt = 0, retry = null, delay = 250, frames = 0;

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const unhex = (s) => (s && /^[0-9a-f]{32}$/.test(s) ? Uint8Array.from(s.match(/../g), (x) => parseInt(x, 16)) : null);

  function status(text, bad) {
    const s = $("status");
    s.textContent = text;
    s.className = bad ? "status bad" : "status";
  }

  function open() { return ws && ws.readyState === WebSocket.OPEN; }

  function msg(type, n) {
    const b = new Uint8Array(1 + n);
    b[0] = type;
    return [b, new DataView(b.buffer)];
  }

  function sendHello() {
    const [b, v] = msg(T.hello, 1 + 16 + 8 + 4);
    b[1] = 1;
    if (sid) b.set(sid, 2);
    v.setBigUint64(18, BigInt(rx));
    v.setUint16(26, term.cols);
    v.setUint16(28, term.rows);
    ws.send(b);
  }

  function sendResize() {
    if (!open()) return;
    const [b, v] = msg(T.resize, 4);
    v.setUint16(1, term.cols);
    v.setUint16(3, term.rows);
    ws.send(b);
  }

  // Acks are coalesced: a bulk of output (ACK_NOW, under the server's
  // 64 kB frame, past which it holds output back for an ack) is acked at
  // once; less (echoes, prompts) at most ACK_IDLE_MS later, so typing
  // sends an ack per ACK_IDLE_MS, not one per key, off the echo's path,
  // and the server frees the output it keeps soon after.
  const ACK_NOW = 32 << 10, ACK_IDLE_MS = 50;
  let ackTimer = null, acks = 0;

  function sendAck() {
    if (ackTimer) { clearTimeout(ackTimer); ackTimer = null; }
    if (!open() || processed <= acked) return;
    const [b, v] = msg(T.ack, 8);
    v.setBigUint64(1, BigInt(processed));
    ws.send(b);
    acked = processed;
    acks++;
  }

  function maybeAck() {
    if (!open() || processed <= acked) return;
    if (processed - acked >= Math.min(ACK_NOW, window_ / 4)) sendAck();
    else if (!ackTimer) ackTimer = setTimeout(sendAck, ACK_IDLE_MS);
  }

  // pump sends queued input within the input credit, in chunks.
  function pump() {
    while (open() && inQueue.length) {
      const room = inWindow - (inSent - inAcked);
      if (room <= 0) return;
      let c = inQueue[0];
      const n = Math.min(room, IN_CHUNK);
      if (c.length > n) {
        inQueue[0] = c.subarray(n);
        c = c.subarray(0, n);
      } else {
        inQueue.shift();
      }
      const [b] = msg(T.input, c.length);
      b.set(c, 1);
      ws.send(b);
      inKept.push(c);
      inSent += c.length;
    }
  }

  function send(bytes) {
    if (ended || !bytes.length) return;
    inQueue.push(bytes);
    pump();
  }

  // dropKept forgets kept input before offset off.
  function dropKept(off) {
    while (inKept.length && inKeptBase + inKept[0].length <= off) {
      inKeptBase += inKept[0].length;
      inKept.shift();
    }
    if (inKept.length && inKeptBase < off) {
      inKept[0] = inKept[0].subarray(off - inKeptBase);
      inKeptBase = off;
    }
  }

  function onAttached(b, v) {
    const id = b.slice(1, 17), flags = b[17];
    const off = Number(v.getBigUint64(18)), inOff = Number(v.getBigUint64(26));
    window_ = v.getUint32(34);
    inWindow = v.getUint32(38);
    if (flags & 1) {
      if (flags & 2) term.write("\r\n\x1b[33m[some output was lost while disconnected]\x1b[0m\r\n");
      // Resend the input that never reached the session.
      dropKept(inOff);
      const again = inKept;
      inKept = [];
      inKeptBase = inOff;
      inSent = inOff;
      inQueue = again.concat(inQueue);
    } else {
      if (sid) term.write("\r\n\x1b[33m[the previous session is gone: new shell]\x1b[0m\r\n");
      inSent = inAcked = inKeptBase = 0;
      inKept = [];
    }
    rx = off;
    processed = Math.max(processed, off);
    acked = off;
    sid = id;
    sessionStorage.setItem("osm.sid", hex(sid));
    status("connected");
    delay = 250;
    pump();
  }

  function onOutput(b, v) {
    const off = Number(v.getBigUint64(1));
    let data = b.subarray(9);
    if (off < rx) data = data.subarray(rx - off);
    else if (off > rx) term.write("\r\n\x1b[33m[output skipped]\x1b[0m\r\n");
    if (!data.length) return;
    const end = Math.max(off, rx) + data.length;
    rx = end;
    frames++;
    term.write(data, () => {
      if (end > processed) processed = end;
      maybeAck();
    });
  }

  function finish(reason) {
    ended = true;
    sid = null;
    sessionStorage.removeItem("osm.sid");
    term.write("\r\n\x1b[33m[" + reason + "]\x1b[0m\r\n");
    $("endreason").textContent = reason;
    $("ended").hidden = false;
    status("session ended");
  }

  function onMessage(e) {
    const b = new Uint8Array(e.data), v = new DataView(e.data);
    switch (b[0]) {
      case T.output: onOutput(b, v); break;
      case T.inputAck:
        inAcked = Number(v.getBigUint64(1));
        dropKept(inAcked);
        pump();
        break;
      case T.attached: onAttached(b, v); break;
      case T.exit: {
        const code = v.getInt32(1);
        const reason = new TextDecoder().decode(b.subarray(5));
        finish(code >= 0 ? reason + " (status " + code + ")" : reason);
        break;
      }
    }
  }

  function connect() {
    retry = null;
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    const s = new WebSocket(url);
    ws = s;
    s.binaryType = "arraybuffer";
    s.onmessage = onMessage;
    s.onclose = (e) => {
      if (ws !== s) return;
      ws = null;
      if (ended) return;
      if (e.code === 1013 || e.code === 1008 || e.code === 1011) {
        finish(e.reason || "connection refused");
        return;
      }
      const now = Date.now();
      if (!lostAt) lostAt = now;
      if (now - lostAt > RESUME_MS) {
        finish("connection lost");
        return;
      }
      status("reconnecting…", true);
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 4000);
    };
    s.onopen = () => { lostAt = 0; sendHello(); };
  }

  // hardwareGL reports whether WebGL runs on a GPU: software WebGL
  // (SwiftShader, llvmpipe) is slower than xterm.js's DOM renderer.
  function hardwareGL() {
    try {
      const gl = document.createElement("canvas").getContext("webgl2");
      if (!gl) return false;
      const info = gl.getExtension("WEBGL_debug_renderer_info");
      const name = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : "";
      const lose = gl.getExtension("WEBGL_lose_context");
      if (lose) lose.loseContext();
      return !/swiftshader|llvmpipe|softpipe|software/i.test(name);
    } catch (e) {
      return false;
    }
  }

  function start() {
    $("login").hidden = true;
    $("logout").hidden = false;
    $("terminal").hidden = false;
    term = new Terminal({ cursorBlink: true, scrollback: 5000, fontFamily: "DejaVu Sans Mono, Menlo, Consolas, monospace", fontSize: 14 });
    fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open($("terminal"));
    if (hardwareGL()) {
      try {
        const gl = new WebglAddon.WebglAddon();
        gl.onContextLoss(() => gl.dispose());
        term.loadAddon(gl);
      } catch (e) {
        // No WebGL after all: xterm.js keeps its DOM renderer.
      }
    }
    fit.fit();
    term.onData((s) => send(enc.encode(s)));
    term.onBinary((s) => send(Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)));
    term.onResize(sendResize);
    new ResizeObserver(() => fit.fit()).observe($("terminal"));
    sid = unhex(sessionStorage.getItem("osm.sid"));
    window.osmTerm = term;
    window.osmStats = () => ({ rx, processed, acked, acks, frames, connected: open(), ended });
    connect();
    term.focus();
  }

  $("again").addEventListener("click", () => {
    $("ended").hidden = true;
    ended = false;
    sid = null;
    rx = processed = acked = 0;
    inSent = inAcked = inKeptBase = 0;
    inKept = [];
    inQueue = [];
    term.reset();
    connect();
  });

  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const err = $("loginerror");
    err.textContent = "";
    const r = await fetch("/login", { method: "POST", body: new URLSearchParams(new FormData(e.target)), credentials: "same-origin" });
    if (r.ok) {
      $("who").textContent = new FormData(e.target).get("user");
      e.target.reset();
      start();
    } else {
      err.textContent = (await r.text()).trim() || "login failed";
    }
  });

  $("logout").addEventListener("submit", async (e) => {
    e.preventDefault();
    ended = true;
    sessionStorage.removeItem("osm.sid");
    await fetch("/logout", { method: "POST", body: new URLSearchParams({ csrf }), credentials: "same-origin" });
    location.reload();
  });

  if (document.body.dataset.user) start();
})();
