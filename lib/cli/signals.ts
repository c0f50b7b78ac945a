// Ctrl-C (SIGINT) and SIGTERM for commands that stop work cleanly instead of dying.
/** Calls `handler` on SIGINT/SIGTERM until the returned function is called. */
export function onInterrupt(handler: (signal: NodeJS.Signals) => void, signals: readonly NodeJS.Signals[] = ['SIGINT']): () => void {
  for (const s of signals) process.on(s, handler);
  return () => { for (const s of signals) process.off(s, handler); };
}
