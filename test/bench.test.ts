/** The benchmark suite's smoke mode runs in the test suite, so the scripts never rot. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { ROOT, tempDir } from './helpers.js';

test('npm run bench -- --smoke writes a table, a JSON record and an SVG chart with every peer', () => {
  const out = tempDir('bench');
  const run = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'run.mjs'), '--smoke', '--out', out, '--dir', out], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  // The table rows come first on stderr and a failure last: show from the last part it started.
  const last = run.stderr.lastIndexOf('running bench/');
  assert.equal(run.status, 0, `bench/run.mjs --smoke exited ${run.status} (${run.signal ?? 'no signal'}):\n${run.stderr.slice(last >= 0 ? last : -4000).slice(0, 6000)}`);
  const files = fs.readdirSync(out);
  const json = files.find((f) => f.startsWith('suite-') && f.endsWith('.json'));
  assert.ok(json && files.some((f) => f.endsWith('.svg')) && files.some((f) => f.endsWith('.md')), files.join(', '));
  const record = JSON.parse(fs.readFileSync(path.join(out, json), 'utf8')) as { description: string; results: Array<{ group: string; label: string; seconds: number }> };
  assert.match(record.description, /NumPy \d/);
  const labels = new Set(record.results.map((r) => r.label));
  for (const peer of ['tensorio readNpy', 'numpy np.load', 'npyjs (fs.readFile + parse)', 'fs.readFile (bytes only)', 'dd to /dev/null (ceiling)', 'numpy np.save (no fsync)']) {
    assert.ok(labels.has(peer), `missing ${peer}`);
  }
  assert.ok(record.results.every((r) => r.seconds > 0));
  // The formats' own benchmarks ran too, with their peers in the same run.
  const report = fs.readFileSync(path.join(out, files.find((f) => f.startsWith('suite-') && f.endsWith('.md')) as string), 'utf8');
  for (const peer of ['### npz', 'np.savez', '### safetensors', 'python json+memmap', '### keras', 'h5py', 'h5wasm', '### tfjs weights', 'tfjs tf.io']) assert.ok(report.includes(peer), `report lacks ${peer}`);
  assert.match(fs.readFileSync(path.join(out, files.find((f) => f.endsWith('.svg')) as string), 'utf8'), /^<svg[\s\S]*polyline/);
});
