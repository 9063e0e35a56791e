/**
 * The benchmark suite from an installed package, where the devDependency peers (npyjs, h5wasm,
 * @tensorflow/tfjs) are absent: their rows are skipped with a line naming them, and the results
 * go where the user says. Not timed: only what runs and where the files go is checked.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { ROOT, tempDir } from './helpers.js';

test('bench --smoke without npyjs and tfjs skips their rows with a line and writes to --out', () => {
  const dir = tempDir('bench-peers');
  try {
    const out = path.join(dir, 'results');
    const result = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'run.mjs'), '--smoke', '--formats', 'npy,keras', '--out', out, '--dir', dir], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, TENSORIO_BENCH_MISSING: 'npyjs,@tensorflow/tfjs' },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /skipped npyjs .*not installed/);
    assert.match(result.stderr, /skipped bench\/keras\.mjs: @tensorflow\/tfjs not installed/);
    const files = fs.readdirSync(out);
    const json = files.find((f) => f.startsWith('suite-smoke-') && f.endsWith('.json'));
    assert.ok(json, files.join(', '));
    const record = JSON.parse(fs.readFileSync(path.join(out, json), 'utf8')) as { results: Array<{ label: string }> };
    const labels = new Set(record.results.map((r) => r.label));
    assert.ok(labels.has('tensorio readNpy') && labels.has('numpy np.load'));
    assert.ok(!labels.has('npyjs (fs.readFile + parse)'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
