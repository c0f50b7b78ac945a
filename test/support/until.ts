/**
 * How much slower than usual this run may be: scripts/sanitize.sh sets GPT2_NODE_TEST_TIME_SCALE
 * (ThreadSanitizer runs code 5-15 times slower). Waits for the engine scale with it; nothing
 * else does (no test asserts a speed).
 */
export const TIME_SCALE = Math.max(1, Number(process.env['GPT2_NODE_TEST_TIME_SCALE'] ?? 1) || 1);

/** Polls until cond() holds (the engine runs on its own thread); false after timeoutMs (× TIME_SCALE). */
export async function until(cond: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs * TIME_SCALE;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}
