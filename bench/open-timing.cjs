// Times one open of a safetensors file in this process, for bench/safetensors.mjs.
//
//   node bench/open-timing.cjs open|open-sync|open-second <file>
//
// Run directly, it is a CommonJS entry point; the bench also calls timeOpen from its own
// ES module child. The two differ in what the process allocated before the open: loading an
// ES module entry point leaves less of V8's first young generation free, so the process's
// first scavenge tends to fall inside the open.
'use strict';
const { PerformanceObserver } = require('node:perf_hooks');

/**
 * 'open' (openSafetensors), 'open-sync' (openSafetensorsSync), or 'open-second' (the
 * process has opened `${file}.twin`, a file with the same header, first: the time is the
 * library's own work, without V8's first compilation and heap growth).
 */
async function timeOpen(tensorio, op, file) {
  if (op === 'open-second') (await tensorio.openSafetensors(`${file}.twin`)).close();
  // Garbage collections inside the open are reported apart: a process's first scavenges
  // cost 2.5-3.5 ms on the VM this was written on, and whether one lands in the open depends
  // on what the process allocated before it, not only on the open.
  const pauses = [];
  const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  // CPU time too: on a shared machine the wall time of a few ms includes waiting for a core.
  // Page faults too: each page the process touches for the first time is one, and their cost
  // depends on the machine (see pageFaultMicros).
  const cpu = process.cpuUsage();
  const faults = process.resourceUsage().minorPageFault;
  const start = performance.now();
  const view = op === 'open-sync' ? tensorio.openSafetensorsSync(file) : await tensorio.openSafetensors(file);
  const end = performance.now();
  const used = process.cpuUsage(cpu);
  const pageFaults = process.resourceUsage().minorPageFault - faults;
  const tensors = view.keys().length;
  const mapped = view.mapped;
  view.close();
  await new Promise((resolve) => setTimeout(resolve, 5)); // GC entries arrive asynchronously
  observer.disconnect();
  const gcMs = pauses.filter((e) => e.startTime >= start && e.startTime < end).reduce((sum, e) => sum + e.duration, 0);
  return { ms: end - start, gcMs, pageFaults, faultMicros: pageFaultMicros(), cpuMs: (used.user + used.system) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024, tensors, mapped };
}

/**
 * What one page fault on fresh memory costs this process, in µs: a 1 MiB buffer (allocated
 * with mmap in a fresh process, so its pages are new to it) touched one byte per page. About
 * 0.1-0.5 µs on bare metal; 12-15 µs on the Firecracker VMs this bench was written on, whose
 * kernel hands freed memory back to the host (free page reporting), so that every first touch
 * of a page waits for the host. Undefined when the buffer came from memory the process had
 * already touched (malloc may reuse freed memory), which leaves too few faults to time.
 */
function pageFaultMicros() {
  const bytes = new Uint8Array(2 ** 20);
  const faults = process.resourceUsage().minorPageFault;
  const start = performance.now();
  for (let at = 0; at < bytes.length; at += 4096) bytes[at] = 1;
  const ms = performance.now() - start;
  const taken = process.resourceUsage().minorPageFault - faults;
  return taken >= 128 ? (ms * 1000) / taken : undefined;
}

module.exports = { timeOpen };

if (require.main === module) {
  const tensorio = require('../dist/index.js');
  timeOpen(tensorio, process.argv[2], process.argv[3]).then((out) => process.stdout.write(JSON.stringify(out)));
}
