// A progress line on stderr for hub downloads (downloadModel's / loadModel's progress callback):
//
//   model.safetensors [##########----------]  48%  120.5/248.9 MiB  31.2 MiB/s
//
// One line per file, redrawn at most ten times a second; only when the stream is a terminal
// (a log file or a pipe gets nothing).
import type { DownloadProgress } from '../hub/download.js';

export interface DownloadProgressBar {
  /** Pass as `onProgress` (downloadModel) or `onDownloadProgress` (loadModel). */
  onProgress(progress: DownloadProgress): void;
  /** Ends the current line; call when the download finished or failed. */
  end(): void;
}

const WIDTH = 20;
const REDRAW_MS = 100;

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

export function downloadProgressBar(stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): DownloadProgressBar {
  const tty = stream.isTTY === true;
  let file: string | undefined;
  let started = 0;
  let startBytes = 0;
  let lastDraw = -Infinity;
  let drawn = false;

  const draw = (p: DownloadProgress) => {
    const t = now();
    const total = p.totalBytes;
    const done = total !== undefined && p.downloadedBytes >= total;
    if (!done && t - lastDraw < REDRAW_MS) return;
    lastDraw = t;
    const fraction = total ? Math.min(p.downloadedBytes / total, 1) : 0;
    const fill = Math.round(fraction * WIDTH);
    const seconds = (t - started) / 1000;
    const rate = seconds > 0 ? `  ${mib((p.downloadedBytes - startBytes) / seconds)} MiB/s` : '';
    const bar = total !== undefined
      ? ` [${'#'.repeat(fill)}${'-'.repeat(WIDTH - fill)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${mib(p.downloadedBytes)}/${mib(total)} MiB`
      : `  ${mib(p.downloadedBytes)} MiB`;
    let line = `${p.file}${bar}${rate}`;
    const columns = stream.columns ?? 80;
    if (line.length > columns - 1) line = `…${line.slice(line.length - (columns - 2))}`;
    stream.write(`\r${line}\x1b[K`);
    drawn = true;
  };

  return {
    onProgress(p) {
      if (!tty) return;
      if (p.file !== file) {
        if (drawn) stream.write('\n');
        file = p.file;
        started = now();
        startBytes = p.downloadedBytes;
        lastDraw = -Infinity;
        drawn = false;
      }
      draw(p);
    },
    end() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
      file = undefined;
    },
  };
}
