// A registry of our own on loopback, serving packed tarballs as the npm registry serves packages
// (a packument per name, the tarballs, 404 for the rest), so that npm, pnpm and bun install
// gpt2-node exactly as users will before it is published. Used by pack-check and the
// install-time bench.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename } from 'node:path';

/** Serves the tarballs; resolves with the registry's URL (ending in /) and a close(). */
export async function startRegistry(tarballs) {
  const packuments = new Map();
  const files = new Map();
  for (const t of tarballs) {
    const manifest = JSON.parse(execFileSync('tar', ['-xzOf', t, 'package/package.json'], { encoding: 'utf8' }));
    const data = readFileSync(t);
    files.set(basename(t), data);
    const doc = packuments.get(manifest.name) ?? { name: manifest.name, 'dist-tags': {}, versions: {} };
    doc['dist-tags'].latest = manifest.version;
    doc.versions[manifest.version] = {
      ...manifest,
      _id: `${manifest.name}@${manifest.version}`,
      dist: {
        tarball: `TARBALL/${basename(t)}`,
        integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
        shasum: createHash('sha1').update(data).digest('hex'),
      },
    };
    packuments.set(manifest.name, doc);
  }
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    if (path.startsWith('/-/tarballs/') && files.has(path.slice(12))) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(files.get(path.slice(12)));
      return;
    }
    const doc = packuments.get(path.slice(1));
    if (!doc) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"Not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc).replaceAll('TARBALL/', `http://${req.headers.host}/-/tarballs/`));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}
