// Node built-ins that only the server and the hub use, required where they are used rather than
// imported at the top: importing node:http, node:https and node:crypto costs every process that
// loads the library a few MiB of RSS, and most processes never serve or download
// (bench/RESULTS.md, seventh run). process.getBuiltinModule caches like import does.
export const nodeHttp = () => process.getBuiltinModule('node:http');
export const nodeHttps = () => process.getBuiltinModule('node:https');
export const nodeCrypto = () => process.getBuiltinModule('node:crypto');
