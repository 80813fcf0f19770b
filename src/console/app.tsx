import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { Provider } from '@urql/preact';
import { Link, Route, Router, Switch } from 'wouter-preact';
import { forgetApiKey, readApiKey, saveApiKey } from './api-key.js';
import { createConsoleClient, type ConsoleClient } from './client.js';
import { graphql } from '../generated/console/gql.js';
import type { ConsoleViewerQuery } from '../generated/console/graphql.js';
import { CreatePage } from './pages/create.js';
import { SignInPage } from './pages/sign-in.js';
import { SyncPage } from './pages/sync.js';
import { SyncsPage } from './pages/syncs.js';

export const ConsoleViewer = graphql(`
  query ConsoleViewer {
    viewer { role workspace { id name } apiKey { name prefix } }
  }
`);

export type Viewer = ConsoleViewerQuery['viewer'];

const ViewerContext = createContext<Viewer | null>(null);

/** Who is signed in; pages use it to offer changes only to WRITE keys. */
export const useViewer = (): Viewer => useContext(ViewerContext)!;

interface Session {
  client: ConsoleClient;
  viewer: Viewer;
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [checking, setChecking] = useState(readApiKey() !== null);

  const signOut = (reason: string | null) => {
    forgetApiKey();
    setRefusal(reason);
    setSession((current) => {
      current?.client.dispose();
      return null;
    });
  };

  const signIn = async (apiKey: string): Promise<string | null> => {
    const client = createConsoleClient(apiKey, () => signOut('The gateway refused this API key (revoked or unknown): sign in again.'));
    const result = await client.urql.query(ConsoleViewer, {}, { requestPolicy: 'network-only' }).toPromise();
    const viewer = result.data?.viewer;
    if (!viewer?.workspace) {
      client.dispose();
      return result.error?.graphQLErrors[0]?.message ?? result.error?.message ?? 'This key has no workspace: use an API key, not the admin token.';
    }
    saveApiKey(apiKey);
    setRefusal(null);
    setSession({ client, viewer });
    return null;
  };

  // A key saved earlier in this tab's session signs in again on reload.
  useEffect(() => {
    const saved = readApiKey();
    if (!saved) return;
    void signIn(saved).then((problem) => {
      if (problem) signOut(problem);
      setChecking(false);
    });
  }, []);

  if (checking) return <p class="loading" role="status">Signing in…</p>;
  if (!session) return <SignInPage onSignIn={signIn} notice={refusal} />;
  const { viewer } = session;
  return (
    <Provider value={session.client.urql}>
      <ViewerContext.Provider value={viewer}>
        <Router base="/console">
          <header class="top">
            <a class="skip" href="#main">Skip to content</a>
            <nav aria-label="Console">
              <Link href="/" class="brand">Audience sync</Link>
              <Link href="/">Syncs</Link>
              <Link href="/new">New sync</Link>
              <a href="/graphql">GraphiQL</a>
            </nav>
            <p class="who">
              <span>{viewer.workspace?.name}</span> · <span>{viewer.apiKey?.name}</span> ({viewer.role})
              <button type="button" class="link" onClick={() => signOut(null)}>Sign out</button>
            </p>
          </header>
          <main id="main" tabIndex={-1}>
            <Switch>
              <Route path="/" component={SyncsPage} />
              <Route path="/new" component={CreatePage} />
              <Route path="/syncs/:id">{(params: { id: string }) => <SyncPage id={decodeURIComponent(params.id)} />}</Route>
              <Route>
                <h1>Not found</h1>
                <p><Link href="/">Back to the syncs</Link></p>
              </Route>
            </Switch>
          </main>
        </Router>
      </ViewerContext.Provider>
    </Provider>
  );
}
