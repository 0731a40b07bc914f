// Runs one browser scenario (../scenarios/browser/NAME.mjs) with nats.ws inside Debian's
// Chromium, driven by playwright-core, and prints the scenario's observation as one JSON line.
//
//   node js/browser.mjs scenarios/browser/NAME.mjs
//   node js/browser.mjs --node scenarios/browser/NAME.mjs
//
// With --node the same scenario runs in Node instead, with nats.js v3 (`wsconnect` of
// @nats-io/nats-core, Node's built-in WebSocket) behind the same `nats` interface: `connect`
// is `wsconnect`, and `StringCodec` is supplied (v3 dropped codecs).
//
// Environment: NATS_WS_URL (ws:// or wss:// of the server under test), NATS_URL (its TCP
// port), NATS_WS_CERT (the server certificate, for wss: Chromium is told to accept exactly
// that key with --ignore-certificate-errors-spki-list), CHROMIUM_BIN (default
// /usr/bin/chromium). Nothing here downloads a browser: playwright-core only drives the
// executable it is given, in a fresh profile directory removed afterwards.
//
// The page is served from a loopback HTTP server: `/` (an empty page), `/nats.js` (nats.ws's
// ESM bundle) and `/s/NAME.mjs` (the scenario and its `_helpers.mjs`). The scenario module
// exports `async function run(nats, env)`; `env` has `url`, `natsUrl` and `restart()`, which
// asks the runner (over stdout `@@restart`, answered `ok` on stdin) to restart the server on
// the same ports. Page console output goes to stderr.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const nodeMode = process.argv.includes("--node");
const scenarioPath = path.resolve(process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "");
const scenarioDir = path.dirname(scenarioPath);
const natsBundle = path.join(HERE, "node_modules", "nats.ws", "esm", "nats.js");
const timeoutMs = Number(process.env.BROWSER_SCENARIO_TIMEOUT_MS ?? 60000);

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

if (!fs.existsSync(scenarioPath)) fail(`no scenario at ${scenarioPath}`);
if (!process.env.NATS_WS_URL) fail("NATS_WS_URL is not set");
const executablePath = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
if (!nodeMode && !fs.existsSync(executablePath)) {
  fail(`no browser at ${executablePath} (proto-conformance/install --browser)`);
}

/** base64 SHA-256 of the certificate's SubjectPublicKeyInfo, as Chromium's flag wants it. */
function spkiHash(certFile) {
  const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
  const der = cert.publicKey.export({ type: "spki", format: "der" });
  return crypto.createHash("sha256").update(der).digest("base64");
}

function serve() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const send = (type, body) => {
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (url.pathname === "/") return send("text/html", "<!doctype html><meta charset=utf-8><title>chorus</title>");
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204);
      return res.end();
    }
    if (url.pathname === "/nats.js") return send("text/javascript", fs.readFileSync(natsBundle));
    const m = url.pathname.match(/^\/s\/([A-Za-z0-9_.-]+\.mjs)$/);
    if (m && fs.existsSync(path.join(scenarioDir, m[1]))) {
      return send("text/javascript", fs.readFileSync(path.join(scenarioDir, m[1])));
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Lines from the runner on stdin (answers to @@restart), read only by the process that runs
// the scenario.
const stdinLines = [];
const stdinWaiters = [];
let stdinOpen = false;
function nextStdinLine() {
  if (!stdinOpen) {
    stdinOpen = true;
    readline.createInterface({ input: process.stdin }).on("line", (line) => {
      const w = stdinWaiters.shift();
      if (w) w(line);
      else stdinLines.push(line);
    }).on("close", () => {
      for (const w of stdinWaiters.splice(0)) w("<stdin closed>");
    });
  }
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  return new Promise((resolve) => stdinWaiters.push(resolve));
}

async function restartServer() {
  process.stdout.write("@@restart\n");
  const answer = await nextStdinLine();
  if (answer !== "ok") throw new Error(`server restart failed: ${answer}`);
}

/** The scenario in this Node process, with nats.js v3 over Node's WebSocket. */
async function runInNode() {
  if (typeof WebSocket === "undefined") {
    // Node 20 has WebSocket behind a flag (22 has it by default): run again with it.
    const { spawnSync } = await import("node:child_process");
    const args = ["--experimental-websocket", ...process.argv.slice(1)];
    const r = spawnSync(process.execPath, args, { stdio: "inherit" });
    process.exit(r.status ?? 1);
  }
  const core = await import("@nats-io/nats-core");
  const nats = {
    ...core,
    connect: core.wsconnect,
    StringCodec: () => ({
      encode: (s) => new TextEncoder().encode(s),
      decode: (b) => new TextDecoder().decode(b),
    }),
  };
  const sc = await import(new URL(`file://${scenarioPath}`).href);
  const env = { url: process.env.NATS_WS_URL, natsUrl: process.env.NATS_URL ?? "", restart: restartServer };
  const timer = setTimeout(() => {
    console.error(`scenario did not finish within ${timeoutMs} ms`);
    process.exit(3);
  }, timeoutMs);
  const obs = await sc.run(nats, env);
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(obs) + "\n");
}

async function main() {
  const httpServer = await serve();
  const pageUrl = `http://127.0.0.1:${httpServer.address().port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chorus-chromium-"));
  const args = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ];
  if (process.env.NATS_WS_CERT) {
    args.push(`--ignore-certificate-errors-spki-list=${spkiHash(process.env.NATS_WS_CERT)}`);
  }
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args,
  });
  const timer = setTimeout(() => {
    console.error(`browser scenario did not finish within ${timeoutMs} ms`);
    process.exit(3);
  }, timeoutMs);
  try {
    const page = await context.newPage();
    page.on("console", (msg) => console.error(`page ${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (err) => console.error(`page error: ${err}`));
    await page.exposeFunction("__chorusRestartServer", restartServer);
    await page.goto(pageUrl);
    const result = await page.evaluate(
      async ({ scenario, url, natsUrl }) => {
        const nats = await import("/nats.js");
        const sc = await import(`/s/${scenario}`);
        const env = { url, natsUrl, restart: () => window.__chorusRestartServer() };
        try {
          return { ok: await sc.run(nats, env) };
        } catch (err) {
          return { error: String(err?.stack ?? err) };
        }
      },
      {
        scenario: path.basename(scenarioPath),
        url: process.env.NATS_WS_URL,
        natsUrl: process.env.NATS_URL ?? "",
      },
    );
    if (result.error !== undefined) {
      console.error(result.error);
      process.exitCode = 1;
    } else {
      process.stdout.write(JSON.stringify(result.ok) + "\n");
    }
  } finally {
    clearTimeout(timer);
    await context.close().catch(() => {});
    httpServer.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

(nodeMode ? runInNode() : main()).then(
  () => process.exit(process.exitCode ?? 0),
  (err) => fail(err?.stack ?? String(err)),
);
