import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'graphql-yoga';
import type { PersistedOperationsMode } from './persisted-documents.js';

/** Where `npm run build:console` (scripts/build-console.ts) writes the console's bundle. */
export const CONSOLE_BUILD_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
/** The console's address on the gateway; its pages are routed in the browser under it. */
export const CONSOLE_PATH = '/console';

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
/** The bundle's file names: Vite's `name-hash.ext`, nothing that could leave the folder. */
const ASSET_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.(js|css|svg)$/;

// The page loads only its own files and talks only to this gateway (HTTP and WebSocket: CSP 3's
// 'self' covers ws: and wss: on the same host).
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const NOT_BUILT_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Console not built</title></head>
<body><h1>The console is not built</h1><p>Run <code>npm run build:console</code> (<code>npm start</code> does it),
then reload. GraphiQL is at <a href="/graphql">/graphql</a>.</p></body></html>`;

/**
 * Serves the console at /console (and sends / there): its hashed assets under /console/assets/, and its page for every
 * other path under /console (the console routes in the browser). Everything comes from the built
 * bundle on this machine; the page reaches the gateway only through the public GraphQL API.
 */
export function useConsole(persistedOperations: PersistedOperationsMode, buildDir = CONSOLE_BUILD_DIR): Plugin {
  // The page tells the console whether the gateway knows its documents by hash (PERSISTED_OPERATIONS).
  const mode = `<meta name="persisted-operations" content="${persistedOperations}">`;
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      const { pathname } = url;
      if (pathname === '/' && request.method === 'GET') {
        return endResponse(new fetchAPI.Response(null, { status: 302, headers: { location: `${CONSOLE_PATH}/` } }));
      }
      if (pathname !== CONSOLE_PATH && !pathname.startsWith(`${CONSOLE_PATH}/`)) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return endResponse(new fetchAPI.Response('Method not allowed', { status: 405, headers: { allow: 'GET, HEAD' } }));
      }
      const assetsPrefix = `${CONSOLE_PATH}/assets/`;
      if (pathname.startsWith(assetsPrefix)) {
        const name = pathname.slice(assetsPrefix.length);
        const body = ASSET_NAME.test(name) ? await readIfPresent(join(buildDir, 'assets', name)) : null;
        if (!body) return endResponse(new fetchAPI.Response('Not found', { status: 404 }));
        return endResponse(
          new fetchAPI.Response(body, {
            headers: {
              'content-type': ASSET_TYPES[extname(name)]!,
              // Vite puts a content hash in every asset name: a changed file gets a new name.
              'cache-control': 'public, max-age=31536000, immutable',
              'x-content-type-options': 'nosniff',
            },
          }),
        );
      }
      const page = await readIfPresent(join(buildDir, 'index.html'));
      const body = page ? new TextDecoder().decode(page).replace('</head>', `${mode}</head>`) : NOT_BUILT_PAGE;
      endResponse(new fetchAPI.Response(body, { status: page ? 200 : 503, headers: PAGE_HEADERS }));
    },
  };
}

async function readIfPresent(path: string): Promise<Uint8Array<ArrayBuffer> | null> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
