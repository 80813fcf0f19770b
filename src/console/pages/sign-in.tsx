import { useState } from 'preact/hooks';

interface Props {
  onSignIn(apiKey: string): Promise<string | null>;
  /** Why the last session ended, when the gateway ended it. */
  notice: string | null;
}

export function SignInPage({ onSignIn, notice }: Props) {
  const [key, setKey] = useState('');
  const [problem, setProblem] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setProblem(await onSignIn(key.trim()));
    setBusy(false);
  };

  return (
    <main id="main" class="sign-in">
      <h1>Audience sync console</h1>
      <form onSubmit={submit} aria-describedby="sign-in-help">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={key}
          onInput={(event) => setKey(event.currentTarget.value)}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? 'sign-in-problem' : undefined}
        />
        <button type="submit" disabled={busy || key.trim() === ''}>{busy ? 'Signing in…' : 'Sign in'}</button>
        {problem && <p id="sign-in-problem" class="error" role="alert">{problem}</p>}
      </form>
      <p id="sign-in-help" class="hint">
        Paste an API key of your workspace. On the embedded default, the first start printed one and saved it to{' '}
        <code>.data/api-key</code>. The key stays in this browser tab until you sign out or close it.
      </p>
    </main>
  );
}
