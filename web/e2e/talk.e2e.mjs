// Browser test of the Talk page against the real server: `voxflow serve` (offline models:
// faster-whisper tiny.en + hibari) on a free port with a temporary SQLite database and data dir,
// an org and API key from `voxflow orgs create --json`, Luigi's agent created through the API,
// and headless Debian Chromium whose fake microphone plays an espeak-ng sentence.
// Run: npm run build && node e2e/talk.e2e.mjs
// env: VOXFLOW (the voxflow command; default ../.venv/bin/voxflow), CHROMIUM, E2E_KEEP=1 keeps
// the temporary folder, E2E_DEBUG=1 prints the server's log. The screenshot (and, on failure, the
// server's log) go to e2e/test-artifacts/.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(HERE, "..");
const REPO = path.resolve(WEB, "..");
const DIST = path.join(WEB, "dist");
const ARTIFACTS = path.join(HERE, "test-artifacts");
const VOXFLOW = process.env.VOXFLOW ?? path.join(REPO, ".venv/bin/voxflow");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SENTENCE = "I would like to book a table.";
const LEADING_SILENCE_S = 4; // the greeting plays first
// Generous: the first call loads the speech models, and the machine may be busy.
const SERVER_START_MS = 90_000;
const TURN_MS = 120_000;
const OVERALL_MS = 300_000;

const started = Date.now();
const results = [];
let liveServer = null; // killed by the overall time guard too
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(name, ok, detail = "") {
  results.push({ name, ok });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? `  (${detail})` : ""}`);
}

async function until(what, probe, timeoutMs, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (last: ${JSON.stringify(last)})`);
}

const words = (text) => new Set((text.toLowerCase().match(/[a-z]+/g) ?? []));

/** The fake microphone: silence, then the sentence, then silence; 16 kHz mono 16-bit PCM. */
function speechWav(dir) {
  const raw = path.join(dir, "raw.wav");
  const out = path.join(dir, "speech16k.wav");
  execFileSync("espeak-ng", ["-v", "en-us", "-s", "150", "-w", raw, SENTENCE]);
  // 16-bit: Chromium captures silence, without an error, from a 24-bit file.
  execFileSync("sox", [raw, "-r", "16000", "-c", "1", "-b", "16", out, "pad", String(LEADING_SILENCE_S), "2"]);
  const wav = readFileSync(out);
  const bits = wav.readUInt16LE(34);
  const pcm = new Int16Array(wav.buffer, wav.byteOffset + 44, (wav.length - 44) >> 1);
  let sum = 0;
  for (const s of pcm) sum += (s / 32768) ** 2;
  const rms = Math.sqrt(sum / pcm.length);
  if (bits !== 16 || rms < 0.01) throw new Error(`the speech WAV is wrong (${bits}-bit, rms ${rms.toFixed(4)})`);
  return out;
}

async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** The server's environment: everything in `dir`, offline models, nothing from the caller's. */
function serverEnv(dir, port) {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("VOXFLOW_") || name.startsWith("LIVEKIT_")) delete env[name];
  }
  return {
    ...env,
    VOXFLOW_ENVIRONMENT: "test",
    VOXFLOW_DATABASE_URL: `sqlite+aiosqlite:///${path.join(dir, "voxflow.db")}`,
    VOXFLOW_DATA_DIR: path.join(dir, "data"),
    VOXFLOW_MASTER_KEY_FILE: path.join(dir, "data", "master.key"),
    VOXFLOW_PUBLIC_URL: `http://127.0.0.1:${port}`,
    VOXFLOW_STT: "local",
    VOXFLOW_TTS: "local",
    VOXFLOW_LOG_FORMAT: "json",
    HF_HUB_OFFLINE: "1",
  };
}

function voxflow(args, env, cwd) {
  return execFileSync(VOXFLOW, args, { env, cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function startServer(env, cwd, port, logFile) {
  const log = [];
  const proc = spawn(VOXFLOW, ["serve", "--host", "127.0.0.1", "--port", String(port)], {
    env,
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [proc.stdout, proc.stderr]) {
    stream.on("data", (chunk) => {
      log.push(chunk);
      if (process.env.E2E_DEBUG) process.stderr.write(chunk);
    });
  }
  const exited = once(proc, "exit");
  liveServer = proc;
  return {
    proc,
    saveLog: () => writeFileSync(logFile, Buffer.concat(log)),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function api(base, key, method, route, body, contentType = "application/json") {
  const response = await fetch(base + route, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body !== undefined ? { "Content-Type": contentType } : {}) },
    body: body === undefined ? undefined : contentType === "application/json" ? JSON.stringify(body) : body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return text && response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
}

/** Luigi's example, published, and an agent on it that records its calls. */
async function createLuigisAgent(base, key) {
  const yaml = readFileSync(path.join(REPO, "examples", "luigis.yaml"));
  const workflow = await api(base, key, "POST", "/v1/workflows", yaml, "application/yaml");
  await api(base, key, "POST", `/v1/workflows/${workflow.id}/publish`);
  return api(base, key, "POST", "/v1/agents", { name: "luigis", workflow_id: workflow.id, record: true });
}

async function main() {
  if (!existsSync(path.join(DIST, "index.html"))) throw new Error("web/dist is missing: run npm run build first");
  rmSync(ARTIFACTS, { recursive: true, force: true }); // nothing left from an earlier run
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = mkdtempSync(path.join(tmpdir(), "voxflow-e2e-"));
  const wav = speechWav(tmp);
  const port = await freePort();
  const env = serverEnv(tmp, port);
  const base = `http://127.0.0.1:${port}`;
  let server;
  let browser;
  let failed = true;
  try {
    voxflow(["db", "upgrade"], env, tmp);
    const { api_key: key } = JSON.parse(voxflow(["orgs", "create", "e2e", "--json"], env, tmp));
    server = startServer(env, tmp, port, path.join(ARTIFACTS, "server.log"));
    await until("the server to answer /healthz", async () => {
      if (server.proc.exitCode !== null) throw new Error(`voxflow serve exited (${server.proc.exitCode})`);
      return (await fetch(`${base}/healthz`).catch(() => null))?.ok;
    }, SERVER_START_MS, 250);
    const agent = await createLuigisAgent(base, key);
    check("Luigi's agent created through the API", agent.id?.startsWith("agt_") && agent.record === true, agent.id);

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
    page.setDefaultTimeout(30_000);

    await page.goto(base + "/");
    await page.waitForSelector("#error >> text=Enter an API key or log in");
    check("signed out: the page asks for a key or a login", true);
    await page.fill("#api-key", "vf_wrong");
    await page.waitForSelector("#error >> text=The API key is unknown or revoked");
    check("a wrong key shows the server's problem detail", true);
    await page.fill("#api-key", key);
    await page.waitForSelector(`#agent option[value="${agent.id}"]`, { state: "attached" });
    check("the page lists the agent with the API key", true);

    await page.click("#talk");
    const greeting = await page.waitForSelector('#transcript li[data-role="agent"][data-final="true"] .text', { timeout: TURN_MS });
    check("the agent greets", (await greeting.textContent()).includes("Luigi"), await greeting.textContent());

    const heard = await page.waitForSelector('#transcript li[data-role="user"][data-final="true"] .text', { timeout: TURN_MS });
    const heardText = await heard.textContent();
    const common = [...words(SENTENCE)].filter((w) => words(heardText).has(w));
    check("the user's transcript shows the sentence (fuzzy)", common.includes("book") || common.includes("table") || common.length >= 3,
      `heard "${heardText}"`);

    const answer = await until("the agent's answer", () => page.$$eval('#transcript li[data-role="agent"] .text',
      (els) => els.map((el) => el.textContent).find((t) => /how many/i.test(t ?? "")) ?? null), TURN_MS);
    check("the agent answers the booking intent", /how many/i.test(answer), answer);
    check("the node moved to ask_party", (await page.textContent("#node")) === "ask_party");

    // The page's own meter is an AnalyserNode on the player's output (Playwright mutes the
    // speakers, the analyser still hears it).
    const playing = await until("the answer playing", () => page.evaluate(() => {
      const st = window.voxflowCall?.stats;
      return st && st.playing && st.outputLevel > 0.02 ? { ...st } : null;
    }), 30_000, 20);
    check("the agent's answer plays out loud", playing.outputLevel > 0.02,
      `level ${playing.outputLevel.toFixed(3)}, peak ${playing.outputPeak.toFixed(3)}, ${playing.chunksReceived} chunks`);
    const shot = path.join(ARTIFACTS, "talk.png");
    await page.screenshot({ path: shot, fullPage: true });
    check("screenshot saved", existsSync(shot), path.relative(REPO, shot));
    check("microphone frames were 20 ms PCM16 16 kHz", playing.framesSent > 0 && playing.bytesSent === playing.framesSent * 640,
      `${playing.framesSent} frames`);

    await page.click("#hangup");
    await page.waitForSelector('#phase[data-phase="ended"]');
    const calls = await api(base, key, "GET", `/v1/calls?agent_id=${agent.id}`);
    const callId = calls.items[0]?.id;
    const record = await until("the call to end", async () => {
      const r = await api(base, key, "GET", `/v1/calls/${callId}`);
      return r.outcome ? r : null;
    }, 30_000, 250);
    check("the call is stored, ended by the hang-up", record.outcome === "abandoned", `outcome ${record.outcome}`);
    const recording = await fetch(`${base}/v1/calls/${callId}/recording`, { headers: { Authorization: `Bearer ${key}` } });
    if (recording.ok) {
      const bytes = Buffer.from(await recording.arrayBuffer());
      const pcm = new Int16Array(bytes.buffer, bytes.byteOffset + 44, (bytes.length - 44) >> 1);
      const level = [0, 0];
      pcm.forEach((s, i) => { level[i % 2] += (s / 32768) ** 2; });
      const [caller, agentSide] = level.map((sum) => Math.sqrt((sum * 2) / pcm.length));
      check("the call's recording: stereo 16 kHz, the caller left, the agent right",
        bytes.readUInt16LE(22) === 2 && bytes.readUInt32LE(24) === 16000 && caller > 0.005 && agentSide > 0.005,
        `${(pcm.length / 32000).toFixed(1)} s, rms ${caller.toFixed(3)} / ${agentSide.toFixed(3)}`);
    } else {
      console.log(`skip the call's recording (${recording.status}: the call does not record yet)`);
    }
    check("no page errors", pageErrors.length === 0, pageErrors.join("; "));
    failed = results.some((r) => !r.ok);
  } finally {
    await browser?.close().catch(() => {});
    await server?.stop();
    if (failed) {
      server?.saveLog();
      copyFileSync(wav, path.join(ARTIFACTS, "speech16k.wav"));
      console.log(`server log and microphone WAV in ${path.relative(REPO, ARTIFACTS)}/`);
    }
    if (process.env.E2E_KEEP !== "1") rmSync(tmp, { recursive: true, force: true });
    else console.log(`kept ${tmp}`);
  }
}

const guard = setTimeout(() => {
  console.error(`e2e: over ${OVERALL_MS / 1000} s, giving up`);
  liveServer?.kill("SIGKILL");
  process.exit(1);
}, OVERALL_MS);
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
