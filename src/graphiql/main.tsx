import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import './page.css';
import { useGraphiQL } from '@graphiql/react';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { PAGE_OPTIONS_ELEMENT_ID, type GraphiQLPageOptions } from './page-options.js';
import { withSubscriptionsOverSSE } from './sse-fetcher.js';

// The gateway's GraphiQL: everything it loads comes from the gateway. Its options (endpoint, first tabs)
// are in a JSON block the gateway writes into the page.
const options = JSON.parse(document.getElementById(PAGE_OPTIONS_ELEMENT_ID)!.textContent!) as GraphiQLPageOptions;
const fetcher = withSubscriptionsOverSSE(options.endpoint, createGraphiQLFetcher({ url: options.endpoint }));

/** The headers last typed in any tab: a tab opened, or switched to, with no headers gets them, so the
 * API key is set once for every tab. */
let sharedHeaders = '';

function ShareHeadersAcrossTabs() {
  const headerEditor = useGraphiQL((state) => state.headerEditor);
  const activeTabIndex = useGraphiQL((state) => state.activeTabIndex);
  useEffect(() => {
    if (!headerEditor) return;
    const headers = headerEditor.getValue();
    if (headers.trim()) sharedHeaders = headers;
    else if (sharedHeaders) headerEditor.setValue(sharedHeaders);
  }, [headerEditor, activeTabIndex]);
  return null;
}

// A link may carry the operation to open, as `?query=…` (and `&variables=…`).
const linked = new URLSearchParams(location.search);

function Page() {
  return (
    <GraphiQL
      fetcher={fetcher}
      defaultTabs={options.defaultTabs}
      initialQuery={linked.get('query') ?? undefined}
      initialVariables={linked.get('variables') ?? undefined}
      defaultEditorToolsVisibility="headers"
      onEditHeaders={(headers) => {
        if (headers.trim()) sharedHeaders = headers;
      }}
    >
      <GraphiQL.Logo>Audience sync gateway</GraphiQL.Logo>
      <GraphiQL.Toolbar>
        {({ prettify, merge, copy }) => (
          <>
            {prettify}
            {merge}
            {copy}
            <ShareHeadersAcrossTabs />
          </>
        )}
      </GraphiQL.Toolbar>
    </GraphiQL>
  );
}

createRoot(document.getElementById('graphiql')!).render(<Page />);
