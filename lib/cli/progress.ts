// A progress bar on stderr for work that takes seconds (quantize, perplexity, score, bench).
// Drawn only when stderr is a terminal, so piped and redirected output stays parseable.
export interface ProgressBar {
  update(done: number, total: number): void;
  /** Clears the bar's line (call before printing anything else, and at the end). */
  end(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const tty = stream.isTTY === true;
  const started = Date.now();
  let last = -1;
  let drawn = false;
  return {
    update(done, total) {
      if (!tty) return;
      const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
      if (pct === last) return;
      last = pct;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      const elapsed = (Date.now() - started) / 1000;
      const eta = pct > 0 && pct < 100 ? ` ${Math.ceil((elapsed * (100 - pct)) / pct)} s left` : '';
      stream.write(`\r\x1b[2K${label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(pct).padStart(3)}%${eta}`);
      drawn = true;
    },
    end() {
      if (tty && drawn) stream.write('\r\x1b[2K');
      drawn = false;
      last = -1;
    },
  };
}
