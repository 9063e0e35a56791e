/**
 * Progress of a long copy: a redrawn bar (bytes, rate, ETA) on a terminal, and a plain line
 * every tenth of the way otherwise, so logs stay readable.
 */

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
}

export class Progress {
  private done = 0;
  private lastStep = -1;
  private readonly start = process.hrtime.bigint();

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly tty: boolean = out.isTTY === true,
  ) {}

  /** Adds `bytes` to what is done and redraws. */
  advance(bytes: number, label = ''): void {
    this.done = Math.min(this.total, this.done + bytes);
    const elapsed = Number(process.hrtime.bigint() - this.start) / 1e9;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const fraction = this.total === 0 ? 1 : this.done / this.total;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const text = `${formatBytes(this.done)}/${formatBytes(this.total)} ${formatBytes(rate)}/s ETA ${formatSeconds(eta)}${label ? ` ${label}` : ''}`;
    if (this.tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      this.out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${text}\x1b[K`);
      return;
    }
    const step = Math.floor(fraction * 10);
    if (step > this.lastStep) {
      this.lastStep = step;
      this.out.write(`${(fraction * 100).toFixed(0)}% ${text}\n`);
    }
  }

  finish(): void {
    if (this.tty) this.out.write('\n');
  }
}
