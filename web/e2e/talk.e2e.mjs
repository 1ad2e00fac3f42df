// Browser test of the Talk page: headless Chromium with a fake microphone (a spoken WAV) against
// fake_server.py, which serves the built app and a voice session's audio WebSocket.
// Run: npm run build && node e2e/talk.e2e.mjs   (env: PYTHON, CHROMIUM, E2E_KEEP=1 keeps the WAV,
// E2E_SHOT=file.png saves a screenshot while the agent talks, E2E_DEBUG=1 logs HTTP errors)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(HERE, "..");
const DIST = path.join(WEB, "dist");
const PYTHON = process.env.PYTHON ?? path.resolve(WEB, "../.venv/bin/python");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const API_KEY = "vf_test_key";
const started = Date.now();
const results = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(name, ok, detail = "") {
  results.push({ name, ok });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? `  (${detail})` : ""}`);
}

async function until(what, probe, timeoutMs = 8000, everyMs = 40) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** A 16 kHz mono 16-bit WAV of speech: espeak-ng (through sox when present), else a tone. */
function speechWav(dir) {
  const out = path.join(dir, "speech16k.wav");
  const text = "Hello there. I would like to book a table for two people tonight, please.";
  const has = (cmd) => {
    try {
      execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  if (has("espeak-ng")) {
    const raw = path.join(dir, "raw.wav");
    execFileSync("espeak-ng", ["-s", "150", "-w", raw, text]);
    if (has("sox")) execFileSync("sox", [raw, "-r", "16000", "-c", "1", "-b", "16", out, "pad", "0.2", "1"]);
    else return raw; // 22.05 kHz 16-bit: Chromium resamples it
    return out;
  }
  // Fallback: 4 s of a 300 Hz tone, 16-bit.
  const rate = 16000, n = rate * 4, data = Buffer.alloc(44 + n * 2);
  data.write("RIFF", 0); data.writeUInt32LE(36 + n * 2, 4); data.write("WAVEfmt ", 8);
  data.writeUInt32LE(16, 16); data.writeUInt16LE(1, 20); data.writeUInt16LE(1, 22);
  data.writeUInt32LE(rate, 24); data.writeUInt32LE(rate * 2, 28); data.writeUInt16LE(2, 32);
  data.writeUInt16LE(16, 34); data.write("data", 36); data.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 300 * i) / rate)), 44 + i * 2);
  writeFileSync(out, data);
  return out;
}

function startServer() {
  const proc = spawn(PYTHON, [path.join(HERE, "fake_server.py"), "--dist", DIST], { stdio: ["ignore", "pipe", "inherit"] });
  const port = new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      const m = /port (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code) => reject(new Error(`fake server exited (${code})`)));
  });
  return { proc, port };
}

async function main() {
  if (!existsSync(path.join(DIST, "index.html"))) throw new Error("web/dist is missing: run npm run build first");
  const tmp = mkdtempSync(path.join(tmpdir(), "voxflow-e2e-"));
  const wav = speechWav(tmp);
  const server = startServer();
  let browser;
  try {
    const port = await server.port;
    const base = `http://127.0.0.1:${port}`;
    const stats = async () => (await fetch(`${base}/test/stats`)).json();
    browser = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        `--use-file-for-fake-audio-capture=${wav}%noloop`, "--autoplay-policy=no-user-gesture-required",
      ],
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error" && !m.text().includes("status of 401")) console.log("[console]", m.text()); });
    page.on("response", (r) => { if (r.status() >= 400 && process.env.E2E_DEBUG) console.log("[http]", r.status(), r.url()); });
    page.setDefaultTimeout(8000);

    await page.goto(base + "/");
    await page.waitForSelector("#error");
    check("signed out: the page asks for a key or a login", (await page.textContent("#error")).includes("Enter an API key or log in"));
    await page.fill("#api-key", "vf_wrong");
    await page.waitForSelector("#error >> text=Missing or invalid credentials");
    check("a wrong key shows the server's problem detail", true);
    await page.fill("#api-key", API_KEY);
    await page.waitForSelector("#error", { state: "detached" });
    await page.waitForSelector('#agent option[value="agt_luigi"]', { state: "attached" });
    const key = await page.evaluate(() => sessionStorage.getItem("voxflow.apiKey"));
    check("agents listed with the API key (kept in sessionStorage)", key === API_KEY);

    const tClick = Date.now();
    await page.click("#talk");
    let s = await until("1 s of microphone audio at the server", async () => {
      const st = await stats();
      return st.seconds >= 1 ? st : null;
    });
    const created = s.sessions_created[0] ?? {};
    check("voice session created for the chosen agent",
      created.agent_id === "agt_luigi" && created.mode === "voice" && created.transport === "websocket");
    check("audio socket opened with the session's token", s.ws_token_ok === true);
    check("microphone frames arrive as 20 ms PCM16 16 kHz (640 bytes)",
      s.frame_sizes.length === 1 && s.frame_sizes[0] === 640, `${s.frames} frames, sizes ${s.frame_sizes}`);
    check("the microphone audio is not silent", s.rms > 0.005, `rms ${s.rms.toFixed(4)}, peak ${s.peak.toFixed(3)}`);

    await page.waitForSelector('#transcript li[data-role="agent"]');
    const lines = await page.$$eval("#transcript li", (els) =>
      els.map((el) => [el.getAttribute("data-role"), el.querySelector(".text")?.textContent, el.getAttribute("data-final")]));
    check("transcript shows the final user line (partial replaced) and the agent line",
      JSON.stringify(lines) === JSON.stringify([["user", "hello there", "true"], ["agent", "Hi! How can I help?", "true"]]),
      JSON.stringify(lines));
    check("current node shown", (await page.textContent("#node")) === "greet");

    const playing = await until("agent audio playing", () => page.evaluate(() => {
      const st = window.voxflowCall?.stats;
      return st && st.outputPeak > 0.1 && st.playing ? { ...st } : null;
    }));
    check("agent audio plays (output peak of the 0.3 tone)", playing.outputPeak > 0.2, `peak ${playing.outputPeak.toFixed(3)}, ${playing.chunksReceived} chunks`);
    check("agent audio is queued ahead (gapless schedule)", playing.buffered > 1, `${playing.buffered.toFixed(2)} s buffered`);

    if (process.env.E2E_SHOT) await page.screenshot({ path: process.env.E2E_SHOT, fullPage: true });
    const tClear = Date.now();
    await fetch(`${base}/test/clear`, { method: "POST" });
    const stopped = await until("playback stopped after clear", () => page.evaluate(() => {
      const st = window.voxflowCall?.stats;
      return st && st.clears === 1 && !st.playing && st.outputLevel < 0.001 ? { ...st } : null;
    }), 2000, 10);
    const stopMs = Date.now() - tClear;
    await sleep(300);
    const after = await page.evaluate(() => ({ ...window.voxflowCall.stats }));
    check("clear stops playback at once and it stays silent",
      stopMs < 500 && !after.playing && after.outputLevel < 0.001 && after.buffered === 0,
      `silent ${stopMs} ms after clear, ${playing.buffered.toFixed(1)} s were still queued`);

    const framesBefore = (await stats()).frames;
    await page.click("#hangup");
    s = await until("hangup at the server", async () => {
      const st = await stats();
      return st.client_msgs.some((m) => m.type === "hangup") && st.ws_closed ? st : null;
    });
    await page.waitForSelector('#phase[data-phase="ended"]');
    const phaseText = await page.textContent("#phase");
    check("Hang up sends {type: hangup}; the page shows the server's outcome", phaseText.includes("caller_hangup"), phaseText);
    await sleep(200);
    const framesAfter = (await stats()).frames;
    check("the microphone stops after hang up", framesAfter - framesBefore < 10, `${framesAfter - framesBefore} frames after the click`);
    check("no page errors", pageErrors.length === 0, pageErrors.join("; "));
    console.log(JSON.stringify({ click_to_1s_audio_ms: Date.now() - tClick, frames: s.frames, seconds: s.seconds }));
  } finally {
    await browser?.close();
    server.proc.kill("SIGTERM");
    if (process.env.E2E_KEEP !== "1") rmSync(tmp, { recursive: true, force: true });
  }
}

const guard = setTimeout(() => {
  console.error("e2e: over 60 s, giving up");
  process.exit(1);
}, 60000);
main()
  .catch((err) => {
    check(`ran to the end: ${err.message}`, false);
  })
  .finally(() => {
    clearTimeout(guard);
    const failed = results.filter((r) => !r.ok).length;
    console.log(`e2e finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`${results.length - failed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
