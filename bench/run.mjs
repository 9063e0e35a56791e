// The benchmark suite: `npm run bench` (or `tensorio bench`). Sweeps sizes from 1 MiB to
// 4 GiB, warm and cold page cache, plus many small arrays; writes a JSON record, a markdown
// table and an SVG chart of throughput against size to bench/results/, and refreshes the
// table in bench/README.md.
//   node bench/run.mjs [--smoke] [--sizes 1,16,256,1024,4096] [--repeat 3] [--out DIR] [--no-readme] [--formats npy,npz,...]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { nativeStatus } from 'tensorio';
import { hasNodePeer, machine, pythonVersions } from './lib.mjs';
import { manySmallBench, npyBench } from './npy.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    sizes: { type: 'string' },
    repeat: { type: 'string' },
    out: { type: 'string' },
    dir: { type: 'string', default: os.tmpdir() },
    'no-readme': { type: 'boolean' },
    // Which of the suite's parts to run (npy,npz,safetensors,keras,tfjs); default all.
    formats: { type: 'string' },
  },
});
const smoke = values.smoke === true;
// From a clone, results go to bench/results (the committed records, and README.md's section).
// From an installed package (`npx tensorio bench`), never into node_modules: to --out, or to
// ./tensorio-bench-results in the current folder.
const installed = here.split(path.sep).includes('node_modules');
values.out = path.resolve(values.out ?? (installed ? path.join(process.cwd(), 'tensorio-bench-results') : path.join(here, 'results')));
process.env.TENSORIO_BENCH_RESULTS = values.out;
const only = values.formats === undefined ? undefined : new Set(values.formats.split(','));
const sizes = (values.sizes ?? (smoke ? '1' : '1,16,256,1024,4096')).split(',').map(Number);
const repeat = Number(values.repeat ?? (smoke ? 1 : 3));
const log = (line) => console.error(line);

const started = new Date();
const results = [];
for (const sizeMb of only && !only.has('npy') ? [] : sizes) {
  for (const cache of smoke ? ['warm'] : ['warm', 'cold']) {
    const rows = await npyBench({ sizeMb, repeat, cache, dir: values.dir, log });
    for (const row of rows) results.push({ format: 'npy', sizeMb, cache, ...row });
  }
}
for (const row of only && !only.has('npy') ? [] : await manySmallBench({ count: smoke ? 20 : 1000, repeat, dir: values.dir, log })) {
  results.push({ format: 'npy', sizeMb: row.count / 256, cache: 'warm', ...row });
}

// ---- the formats' own benchmarks ----------------------------------------------------------
// Each prints its own table (NumPy, h5py, h5wasm, Python json + memmap, dd in the same run);
// the suite keeps their output in its report.
import { spawnSync } from 'node:child_process';

// Each format run names the Node peers it imports; a run whose peers are not installed is
// skipped with a line naming them.
const formatRuns = [
  ['npz', 'npz.mjs', smoke ? ['--size-mb', '1', '--repeat', '1', '--deflate-repeat', '1'] : ['--size-mb', '512', '--repeat', String(repeat)]],
  ['safetensors', 'safetensors.mjs', smoke ? ['--trials', '1', '--shape', '8x64'] : ['--trials', String(repeat)]],
  ['keras', 'keras.mjs', smoke ? ['--size-mib', '4', '--trials', '1', '--no-keras'] : ['--trials', String(repeat)], ['@tensorflow/tfjs', 'h5wasm']],
  ['tfjs weights', 'tfjs-formats.mjs', smoke ? ['--size-mib', '4', '--units', '256', '--trials', '1'] : ['--trials', String(repeat)], ['@tensorflow/tfjs']],
];
const formatKey = { npz: 'npz', safetensors: 'safetensors', keras: 'keras', 'tfjs weights': 'tfjs' };
const formatReports = [];
for (const [name, script, args, peers = []] of formatRuns) {
  if (only && !only.has(formatKey[name])) continue;
  const missing = peers.filter((peer) => !hasNodePeer(peer));
  if (missing.length) {
    log(`skipped bench/${script}: ${missing.join(', ')} not installed (npm install ${missing.join(' ')} to include it)`);
    formatReports.push({ name, command: `node bench/${script} ${args.join(' ')}`, output: `skipped: ${missing.join(', ')} not installed` });
    continue;
  }
  log(`running bench/${script} ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [path.join(here, script), '--dir', values.dir, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TENSORIO_BENCH_RESULTS: values.out },
    maxBuffer: 64 << 20,
  });
  if (result.status !== 0) throw new Error(`bench/${script} ${args.join(' ')} exited ${result.status ?? result.signal ?? result.error}: ${result.stderr.slice(-3000)}`);
  formatReports.push({ name, command: `node bench/${script} ${args.join(' ')}`, output: result.stdout.trim() });
}

// ---- report ---------------------------------------------------------------------------

const peerOf = (label) => label.split(' ')[0];
const description = `${started.toISOString()} | ${machine()} | ${pythonVersions()} | tensorio native: ${nativeStatus().loaded} | median of ${repeat} fresh-process trials per cell, peers interleaved`;

function markdownTable() {
  // One row per (size, cache, group, operation), with the ratio to the best peer of that cell.
  const lines = ['| size | cache | group | operation | median ms | MiB/s | time / best | peak RSS MiB |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  const cells = new Map();
  for (const r of results) {
    const key = `${r.sizeMb}|${r.cache}|${r.group}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(r);
  }
  for (const rows of cells.values()) {
    const peers = rows.filter((r) => !r.label.startsWith('dd'));
    const best = Math.min(...peers.map((r) => r.seconds));
    for (const r of rows) {
      const size = r.group === 'many' ? `${r.count} x 4 KiB` : r.sizeMb >= 1024 ? `${r.sizeMb / 1024} GiB` : `${r.sizeMb} MiB`;
      lines.push(
        `| ${size} | ${r.cache} | ${r.group} | ${r.label} | ${(r.seconds * 1000).toFixed(2)} | ${r.group === 'open' ? '-' : r.mbps.toFixed(0)} | ${r.label.startsWith('dd') ? 'ceiling' : (r.seconds / best).toFixed(2)} | ${r.maxRssMb === undefined ? '-' : r.maxRssMb.toFixed(0)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Throughput against size, one line per library, for the eager read and the write groups. */
function svgChart() {
  const groups = [
    ['read', 'warm', 'Eager read, warm cache'],
    ['read', 'cold', 'Eager read, cold cache'],
    ['write', 'warm', 'Write (no fsync)'],
  ];
  const width = 460;
  const height = 300;
  const margin = { left: 60, right: 10, top: 30, bottom: 40 };
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#7f7f7f'];
  const sizesSorted = [...new Set(results.filter((r) => r.group !== 'many').map((r) => r.sizeMb))].sort((a, b) => a - b);
  const panels = groups.map(([group, cache, title], index) => {
    const rows = results.filter((r) => r.group === group && r.cache === cache);
    const labels = [...new Set(rows.map((r) => r.label))];
    const maxRate = Math.max(1, ...rows.map((r) => r.mbps));
    const x = (size) => margin.left + (sizesSorted.length <= 1 ? 0 : (sizesSorted.indexOf(size) / (sizesSorted.length - 1)) * (width - margin.left - margin.right));
    const y = (rate) => height - margin.bottom - (rate / maxRate) * (height - margin.top - margin.bottom);
    const lines = labels.map((label, i) => {
      const points = rows.filter((r) => r.label === label).sort((a, b) => a.sizeMb - b.sizeMb).map((r) => `${x(r.sizeMb).toFixed(1)},${y(r.mbps).toFixed(1)}`);
      const color = colors[i % colors.length];
      return `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>` +
        points.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`).join('') +
        `<text x="${margin.left + 8}" y="${margin.top + 14 + i * 14}" font-size="11" fill="${color}">${peerOf(label) === 'dd' ? 'dd (ceiling)' : label}</text>`;
    });
    const ticks = sizesSorted.map((s) => `<text x="${x(s)}" y="${height - margin.bottom + 16}" font-size="10" text-anchor="middle">${s >= 1024 ? `${s / 1024}G` : `${s}M`}</text>`);
    const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${margin.left - 6}" y="${y(f * maxRate) + 3}" font-size="10" text-anchor="end">${(f * maxRate).toFixed(0)}</text><line x1="${margin.left}" x2="${width - margin.right}" y1="${y(f * maxRate)}" y2="${y(f * maxRate)}" stroke="#eee"/>`);
    return `<g transform="translate(${index * width},0)"><text x="${width / 2}" y="18" font-size="13" text-anchor="middle">${title}</text>${yTicks.join('')}${ticks.join('')}<text x="${width / 2}" y="${height - 6}" font-size="11" text-anchor="middle">file size</text><text x="14" y="${height / 2}" font-size="11" transform="rotate(-90 14 ${height / 2})" text-anchor="middle">MiB/s</text>${lines.join('')}</g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width * groups.length}" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${panels.join('')}</svg>\n`;
}

fs.mkdirSync(values.out, { recursive: true });
const stamp = started.toISOString().slice(0, 16).replace(/[:T]/g, '-');
const base = path.join(values.out, `suite-${smoke ? 'smoke-' : ''}${stamp}`);
const table = markdownTable();
const formatText = formatReports.map((r) => `### ${r.name}\n\n\`${r.command}\`\n\n\`\`\`\n${r.output}\n\`\`\``).join('\n\n');
fs.writeFileSync(`${base}.json`, JSON.stringify({ description, sizes, repeat, results, formats: formatReports }, null, 2));
fs.writeFileSync(`${base}.md`, `${description}\n\n${table}\n\n${formatText}\n`);
fs.writeFileSync(`${base}.svg`, svgChart());
console.log(`${description}\n\n${table}`);
console.error(`wrote ${base}.json, .md, .svg`);

if (!smoke && !installed && !values['no-readme']) {
  // Refresh the latest table and chart in bench/README.md between its markers.
  const readme = path.join(here, 'README.md');
  const chart = path.join(here, 'results', 'latest.svg');
  fs.copyFileSync(`${base}.svg`, chart);
  const text = fs.readFileSync(readme, 'utf8');
  const section = `<!-- suite:begin -->\n${description}\n\n![throughput against size](results/latest.svg)\n\n${table}\n\n${formatText}\n<!-- suite:end -->`;
  fs.writeFileSync(readme, text.replace(/<!-- suite:begin -->[\s\S]*<!-- suite:end -->/, section));
}
