// gpt2-node serve: the OpenAI-compatible HTTP server (lib/server) for one model, until SIGINT
// or SIGTERM; then it stops accepting, lets in-flight requests finish (--shutdown-timeout),
// aborts the rest, and disposes the model.
import { UsageError, type Command } from '../command.js';
import { MODEL_HELP, MODEL_OPTIONS, SPECULATION_HELP, SPECULATION_OPTIONS, int, list, loadOptions, openModel, openSpeculation, requireModel, speculationArgs, str, unescape } from '../options.js';
import { onInterrupt } from '../signals.js';

export const command: Command = {
  name: 'serve',
  synopsis: '-m <model.gguf> [--port 8080] [options]',
  summary: 'an OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, ...)',
  help: `Usage: gpt2-node serve -m <model.gguf> [options]

Serves the model over HTTP: POST /v1/completions and /v1/chat/completions in OpenAI's format
(streaming included), GET /v1/models, POST /tokenize and /detokenize, GET /health and
GET /metrics (Prometheus). Concurrent requests share the engine (continuous batching over
--parallel slots); up to --max-queue more generations wait, beyond that requests get 503.
SIGINT or SIGTERM (Ctrl-C) stops the server gracefully; a second one aborts what is running.

Options:
${MODEL_HELP}
      --host <address>          interface to listen on (default 127.0.0.1; 0.0.0.0 for all)
      --port <n>                port (default 8080; 0 picks a free one)
      --allowed-host <name>     on a loopback address, also answer requests for this Host (a proxy's
                                public name; * for any); repeatable. Default: localhost, 127.0.0.1, [::1]
      --parallel <n>            sequences generated at once: KV cache slots, each of --ctx-size positions (default 4)
      --batch-size <n>          tokens per forward pass (default 512)
      --max-queue <n>           generations that may wait for a slot (default 128)
      --api-key <key>           require "Authorization: Bearer <key>" (also from GPT2_NODE_API_KEY)
      --max-body <bytes>        largest request body (default 1048576)
      --model-id <name>         the model's name in the API (default: the file name without .gguf)
      --chat-separator <text>   text that ends every chat turn (default <|endoftext|>, DialoGPT's; \\n for a newline)
      --chat-system-prefix <text>     text before system messages (default none)
      --chat-user-prefix <text>       text before user messages (default none)
      --chat-assistant-prefix <text>  text before assistant messages and the reply (default none)
      --shutdown-timeout <s>    seconds in-flight requests may take to finish at shutdown (default 10)
      --no-batch-invariant      decode a lone stream faster; results may then vary with the load
${SPECULATION_HELP}
  -h, --help                    show this help`,
  options: {
    ...MODEL_OPTIONS,
    host: { type: 'string' },
    port: { type: 'string' },
    'allowed-host': { type: 'string', multiple: true },
    parallel: { type: 'string' },
    'batch-size': { type: 'string' },
    'max-queue': { type: 'string' },
    'api-key': { type: 'string' },
    'max-body': { type: 'string' },
    'model-id': { type: 'string' },
    'chat-separator': { type: 'string' },
    'chat-system-prefix': { type: 'string' },
    'chat-user-prefix': { type: 'string' },
    'chat-assistant-prefix': { type: 'string' },
    'shutdown-timeout': { type: 'string' },
    'no-batch-invariant': { type: 'boolean' },
    ...SPECULATION_OPTIONS,
  },
  async run(values) {
    const modelPath = requireModel(values);
    const port = int(values, 'port', 8080);
    if (port < 0 || port > 65535) throw new UsageError(`--port must be between 0 and 65535 but got ${port}`);
    const parallel = int(values, 'parallel', 4);
    if (parallel < 1) throw new UsageError(`--parallel must be at least 1 but got ${parallel}`);
    const maxQueue = int(values, 'max-queue', 128);
    if (maxQueue < 0) throw new UsageError(`--max-queue must not be negative but got ${maxQueue}`);
    const maxBody = int(values, 'max-body', 1 << 20);
    if (maxBody < 1) throw new UsageError(`--max-body must be at least 1 but got ${maxBody}`);
    const shutdownSeconds = int(values, 'shutdown-timeout', 10);
    if (shutdownSeconds < 0) throw new UsageError(`--shutdown-timeout must not be negative but got ${shutdownSeconds}`);
    const apiKey = str(values, 'api-key') ?? (process.env.GPT2_NODE_API_KEY || undefined);
    if (apiKey === '') throw new UsageError('--api-key must not be empty');
    const chatOption = (key: string) => { const s = str(values, key); return s === undefined ? undefined : unescape(s); };
    const rolePrefixes = { system: chatOption('chat-system-prefix'), user: chatOption('chat-user-prefix'), assistant: chatOption('chat-assistant-prefix') };
    const turnSeparator = chatOption('chat-separator');
    const loadOpts = { ...loadOptions(values), maxSequences: parallel, batchInvariant: values['no-batch-invariant'] !== true };
    const batchSize = int(values, 'batch-size');
    if (batchSize !== undefined) Object.assign(loadOpts, { batchSize });

    const specArgs = speculationArgs(values);

    const { startServer } = await import('../../server/index.js');
    const model = await openModel(modelPath, loadOpts);
    let draft: Awaited<ReturnType<typeof openSpeculation>>['draft'];
    try {
      const spec = await openSpeculation(specArgs, loadOptions(values));   // its decoder for the requests is the model's; its own engine stays idle
      draft = spec.draft;
      const server = await startServer(model, {
        ...(spec.speculation !== undefined ? { speculation: spec.speculation } : {}),
        host: str(values, 'host') ?? '127.0.0.1',
        port,
        allowedHosts: list(values, 'allowed-host'),
        maxQueue,
        maxBodyBytes: maxBody,
        ...(apiKey !== undefined ? { apiKey } : {}),
        ...(str(values, 'model-id') !== undefined ? { modelId: str(values, 'model-id') } : {}),
        chatFormat: {
          ...(turnSeparator !== undefined ? { turnSeparator } : {}),
          rolePrefixes: Object.fromEntries(Object.entries(rolePrefixes).filter(([, s]) => s !== undefined)),
        },
      });
      const info = model.info;
      process.stderr.write(`gpt2-node serve: listening on ${server.url} (model ${JSON.stringify(server.modelId)}, ` +
        `${info.maxSequences} slots of ${info.contextSize} positions, queue ${maxQueue}${apiKey ? ', API key required' : ''})\n`);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        const stop = onInterrupt((s) => { stop(); resolve(s); }, ['SIGINT', 'SIGTERM']);
      });
      process.stderr.write(`gpt2-node serve: ${signal}: shutting down (in-flight requests have ${shutdownSeconds} s; send it again to abort them)\n`);
      const again = onInterrupt(() => { void server.close({ timeoutMs: 0 }); }, ['SIGINT', 'SIGTERM']);
      try {
        await server.close({ timeoutMs: shutdownSeconds * 1000 });
      } finally {
        again();
      }
      process.stderr.write('gpt2-node serve: stopped\n');
    } finally {
      await model.dispose();
      await draft?.dispose();
    }
  },
};
