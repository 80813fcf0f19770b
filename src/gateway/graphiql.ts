import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';
import { PAGE_OPTIONS_ELEMENT_ID, type GraphiQLPageOptions } from '../graphiql/page-options.js';

/** Where `npm run build:graphiql` (scripts/build-graphiql.ts) writes GraphiQL's bundle. */
export const GRAPHIQL_BUILD_DIR = fileURLToPath(new URL('../../dist/graphiql/', import.meta.url));
/** Where the gateway serves that bundle's files: nothing the page loads comes from anywhere else. */
export const GRAPHIQL_ASSETS_PATH = '/graphiql/';

/** The first tab of a first visit: how to send the API key, and a query to run with it. */
export const WELCOME_TAB = `# Welcome to the audience sync gateway.
#
# Every operation needs an API key. Open the Headers tab (below this editor) and put:
#
#   { "Authorization": "Bearer <your API key>" }
#
# On the embedded default, the first key was printed at first start and saved in .data/api-key.
# The headers are shared: a tab opened afterwards starts with them.
#
# Then run this query with the run button (or Ctrl-Enter). The Docs button, top left, lists
# everything the API offers. To follow a sync's runs live, use the console at /console.

query Welcome {
  viewer {
    role
    workspace { name }
  }
  audienceSyncs(first: 5) {
    edges { node { id name status lastSyncedAt } }
  }
}
`;

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ttf': 'font/ttf',
};
/** Vite's `name-hash.ext`: nothing that could leave the folder. */
const ASSET_NAME = /^[A-Za-z0-9_.-]+\.(js|css|svg|ttf)$/;

// The page runs only its own scripts (and its editor's workers) and talks only to this gateway. The
// editor sets styles inline and loads its icon font from a data: URL.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; " +
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const NOT_BUILT_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GraphiQL not built</title></head>
<body><h1>GraphiQL is not built</h1><p>Run <code>npm run build:graphiql</code> (<code>npm ci</code> does it), then reload.</p></body></html>`;

/** The built page, read once; null when it has not been built. */
let builtPage: string | null | undefined;
function readBuiltPage(): string | null {
  if (builtPage === undefined) {
    try {
      builtPage = readFileSync(join(GRAPHIQL_BUILD_DIR, 'index.html'), 'utf8');
    } catch {
      builtPage = null;
    }
  }
  return builtPage;
}

/** GraphiQL's page for yoga's `renderGraphiQL`: the built page with its title and options written in
 * (useGraphiQLAssets adds its headers). */
export function renderLocalGraphiQL(options: GraphiQLOptions = {}): string {
  const page = readBuiltPage();
  if (!page) return NOT_BUILT_PAGE;
  const pageOptions: GraphiQLPageOptions = {
    endpoint: options.endpoint ?? '/graphql',
    defaultTabs: options.defaultTabs?.map((tab) => ({ query: tab.query ?? '' })) ?? [{ query: WELCOME_TAB }],
  };
  // `<` escaped: the JSON cannot close its script element.
  const json = JSON.stringify(pageOptions).replaceAll('<', '\\u003c');
  const html = page
    .replace(/<title>[^<]*<\/title>/, `<title>${escapeHtml(options.title ?? 'GraphiQL')}</title>`)
    .replace('</head>', `<script type="application/json" id="${PAGE_OPTIONS_ELEMENT_ID}">${json}</script></head>`);
  return html;
}

/** Serves the files of GraphiQL's bundle under GRAPHIQL_ASSETS_PATH, and gives the page (yoga answers
 * GET /graphql with it) its security headers. */
export function useGraphiQLAssets(buildDir = GRAPHIQL_BUILD_DIR): Plugin {
  const assetsPrefix = `${GRAPHIQL_ASSETS_PATH}assets/`;
  return {
    async onRequest({ url, endResponse, fetchAPI }) {
      if (!url.pathname.startsWith(GRAPHIQL_ASSETS_PATH)) return;
      const name = url.pathname.slice(assetsPrefix.length);
      const body =
        url.pathname.startsWith(assetsPrefix) && ASSET_NAME.test(name)
          ? await readFile(join(buildDir, 'assets', name)).catch(() => null)
          : null;
      if (!body) return endResponse(new fetchAPI.Response('Not found', { status: 404 }));
      endResponse(
        new fetchAPI.Response(body, {
          // Vite puts a content hash in every asset name: a changed file gets a new name.
          headers: { 'content-type': ASSET_TYPES[extname(name)]!, 'cache-control': 'public, max-age=31536000, immutable' },
        }),
      );
    },
    onResponse({ request, response }) {
      if (request.method !== 'GET' || !response.headers.get('content-type')?.startsWith('text/html')) return;
      for (const [name, value] of Object.entries(PAGE_HEADERS)) response.headers.set(name, value);
    },
  };
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
