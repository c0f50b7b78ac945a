// The server's counters and the engine's statistics in Prometheus' text format (version 0.0.4),
// as llama.cpp's server offers them on GET /metrics.
import type { ModelStats } from '../model.js';

export class Metrics {
  /** `${endpoint}\n${status}` → count */
  readonly #requests = new Map<string, number>();
  promptTokens = 0;
  completionTokens = 0;
  /** Requests whose client disconnected before their response was complete. */
  cancelled = 0;
  /** Requests refused with 503 because the queue was full. */
  rejected = 0;
  /** Times a stream waited for a slow client to read (socket full). */
  stalls = 0;

  request(endpoint: string, status: number): void {
    const key = `${endpoint}\n${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  render(gauges: { requestsActive: number; sequencesInFlight: number; maxQueue: number }, stats: ModelStats | undefined): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [string, number][]) => {
      out.push(`# HELP gpt2_node_${name} ${help}`, `# TYPE gpt2_node_${name} ${type}`);
      for (const [labels, value] of samples) out.push(`gpt2_node_${name}${labels} ${value}`);
    };
    const requests: [string, number][] = [...this.#requests].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, n]) => {
      const [endpoint, status] = key.split('\n');
      return [`{endpoint="${endpoint}",status="${status}"}`, n];
    });
    metric('requests_total', 'counter', 'HTTP requests by endpoint and status code.', requests);
    metric('prompt_tokens_total', 'counter', 'Prompt tokens of completion and chat requests.', [['', this.promptTokens]]);
    metric('completion_tokens_total', 'counter', 'Tokens generated for completion and chat requests.', [['', this.completionTokens]]);
    metric('requests_cancelled_total', 'counter', 'Requests cancelled because their client disconnected.', [['', this.cancelled]]);
    metric('requests_rejected_total', 'counter', 'Requests refused with 503 because the queue was full.', [['', this.rejected]]);
    metric('stream_stalls_total', 'counter', 'Times a stream waited for its client to read.', [['', this.stalls]]);
    metric('requests_active', 'gauge', 'Completion and chat requests in progress (generating or queued).', [['', gauges.requestsActive]]);
    metric('sequences_in_flight', 'gauge', 'Generations of this server that are running or queued.', [['', gauges.sequencesInFlight]]);
    metric('queue_limit', 'gauge', 'Generations that may wait for a slot beyond the running ones.', [['', gauges.maxQueue]]);
    if (stats) {
      metric('engine_sequences_active', 'gauge', 'Sequences the engine is running.', [['', stats.activeSequences]]);
      metric('engine_sequences_queued', 'gauge', 'Sequences waiting for a KV slot.', [['', stats.queuedSequences]]);
      metric('engine_slots', 'gauge', 'KV cache slots (maxSequences).', [['', stats.slots]]);
      metric('engine_kv_used', 'gauge', 'KV cache positions in use.', [['', stats.kvUsed]]);
      metric('engine_kv_capacity', 'gauge', 'KV cache positions in all.', [['', stats.kvCapacity]]);
      metric('engine_kv_usage_ratio', 'gauge', 'KV cache positions in use, as a fraction.', [['', stats.kvCapacity > 0 ? stats.kvUsed / stats.kvCapacity : 0]]);
      metric('engine_prompt_tokens_total', 'counter', 'Prompt tokens the engine computed.', [['', stats.promptTokens]]);
      metric('engine_cached_tokens_total', 'counter', 'Prompt tokens reused from the KV cache instead of computed.', [['', stats.cachedTokens]]);
      metric('engine_generated_tokens_total', 'counter', 'Tokens the engine generated.', [['', stats.generatedTokens]]);
      metric('engine_steps_total', 'counter', 'Forward passes of the engine.', [['', stats.steps]]);
      metric('engine_busy_seconds_total', 'counter', 'Seconds the engine spent computing.', [['', stats.busySeconds]]);
      metric('engine_tokens_per_second', 'gauge', 'Prompt and generated tokens per second of busy time.', [['', stats.tokensPerSecond]]);
    }
    return out.join('\n') + '\n';
  }
}
