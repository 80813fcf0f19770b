import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { renderGraphiQL, type GraphiQLOptions, type Plugin } from 'graphql-yoga';

/** Where the gateway serves GraphiQL's own files, from the @graphql-yoga/graphiql npm package:
 * yoga's page would fetch them from a CDN, which offline or locked-down networks cannot reach. */
const ASSETS_PATH = '/graphiql-assets/';
const CDN_ASSETS = /https:\/\/unpkg\.com\/@graphql-yoga\/graphiql@[^/]+\/dist\//g;
const ASSETS: Record<string, string> = {
  'graphiql.css': 'text/css',
  'yoga-graphiql.umd.js': 'text/javascript',
  'monacoeditorwork/editor.worker.bundle.js': 'text/javascript',
  'monacoeditorwork/json.worker.bundle.js': 'text/javascript',
  'monacoeditorwork/graphql.worker..bundle.js': 'text/javascript',
};
const assetsDir = join(dirname(createRequire(import.meta.url).resolve('@graphql-yoga/graphiql')), '..', 'dist');

/** Yoga's GraphiQL page, loading its files from this gateway. */
export function renderLocalGraphiQL(options: GraphiQLOptions = {}): string {
  return renderGraphiQL(options).replace(CDN_ASSETS, ASSETS_PATH);
}

/** Serves the GraphiQL files the page asks for (a fixed list; nothing else of the package). */
export function useGraphiQLAssets(): Plugin {
  return {
    async onRequest({ url, endResponse, fetchAPI }) {
      if (!url.pathname.startsWith(ASSETS_PATH)) return;
      const name = url.pathname.slice(ASSETS_PATH.length);
      const type = ASSETS[name];
      if (!type) return endResponse(new fetchAPI.Response('Not found', { status: 404 }));
      const body = await readFile(join(assetsDir, name));
      endResponse(
        new fetchAPI.Response(body, { headers: { 'content-type': type, 'cache-control': 'public, max-age=86400' } }),
      );
    },
  };
}
