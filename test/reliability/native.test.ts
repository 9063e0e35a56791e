/**
 * Native details the reliability work depends on. The fuzz harnesses (native/fuzz/, built by
 * scripts/fuzz-native.sh with clang) and the sanitizer suite (scripts/test-sanitized.sh) run
 * outside this suite; see docs/reliability.md. Imports the addon binding (src/native.ts) on purpose.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { native } from '../../src/native.js';
import { NATIVE_MODE, ROOT } from '../helpers.js';

test('the F16C probe agrees with /proc/cpuinfo (cpuid, portable to clang 14)', () => {
  if (!NATIVE_MODE) {
    assert.equal(native, null);
    return;
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
  assert.equal(native?.features().f16c, flags.has('f16c') && flags.has('avx'));
});

test('the fuzz harnesses are not addon sources', () => {
  const cmake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  const gyp = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8');
  for (const harness of fs.readdirSync(path.join(ROOT, 'native', 'fuzz'))) {
    assert.ok(!cmake.includes(harness) && !gyp.includes(harness), `${harness} is listed as an addon source`);
  }
});
