// procs.mjs - starts the mock upstream and llmpin for the SDK conformance
// tests, on ephemeral 127.0.0.1 ports, and stops them afterwards.
//
// Each process writes "HOST:PORT\n" to its --ready-file once listening.
// Binaries come from the environment (set by ctest): LLMPIN_BIN and
// LLMPIN_MOCK_BIN.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const READY_TIMEOUT_MS = 30000;

export class Proc {
  constructor(name, argv, env = {}) {
    this.name = name;
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmpin-conf-'));
    this.readyFile = path.join(this.tmp, 'ready');
    this.stderrPath = path.join(this.tmp, 'stderr');
    this.argv = [...argv, '--ready-file', this.readyFile];
    this.env = { ASAN_OPTIONS: 'detect_leaks=0', ...process.env, ...env };
  }

  async start() {
    const err = fs.openSync(this.stderrPath, 'w');
    this.child = spawn(this.argv[0], this.argv.slice(1), {
      cwd: this.tmp, env: this.env, stdio: ['ignore', 'ignore', err],
    });
    fs.closeSync(err);
    this.exited = false;
    this.exitCode = null;
    this.child.on('exit', (code) => { this.exited = true; this.exitCode = code; });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`${this.name} exited with ${this.exitCode} before ready:\n${this.stderr()}`);
      try {
        const text = fs.readFileSync(this.readyFile, 'utf8');
        if (text.endsWith('\n') && text.includes(':')) {
          this.addr = text.trim();
          return this;
        }
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.stop();
    throw new Error(`${this.name} not ready within ${READY_TIMEOUT_MS} ms:\n${this.stderr()}`);
  }

  stderr() {
    try { return fs.readFileSync(this.stderrPath, 'utf8'); } catch { return ''; }
  }

  async stop() {
    if (this.child && !this.exited) {
      const done = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => { if (!this.exited) this.child.kill('SIGKILL'); }, 5000);
      await done;
      clearTimeout(t);
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

export async function startMock(...extra) {
  const bin = process.env.LLMPIN_MOCK_BIN;
  if (!bin) throw new Error('LLMPIN_MOCK_BIN is not set');
  const p = new Proc('mock', [bin, '--listen', '127.0.0.1:0', ...extra]);
  await p.start();
  p.baseURL = `http://${p.addr}/v1`;
  p.stats = async () => (await fetch(`http://${p.addr}/_mock/stats`)).json();
  p.reset = async () => (await fetch(`http://${p.addr}/_mock/reset`, { method: 'POST', body: '{}' })).json();
  return p;
}

// config: a config document (docs/configuration.md) written to a temp file.
export async function startLlmpin(config, env = {}) {
  const bin = process.env.LLMPIN_BIN;
  if (!bin) throw new Error('LLMPIN_BIN is not set');
  const p = new Proc('llmpin', [bin, 'serve'], env);
  const cfg = { drift: { db_path: path.join(p.tmp, 'drift.db') }, ...config };
  const cfgPath = path.join(p.tmp, 'config.json');
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  p.argv.splice(2, 0, '--config', cfgPath);
  await p.start();
  p.baseURL = `http://${p.addr}/v1`;
  return p;
}

export async function waitUntil(pred, timeoutMs = 2000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
