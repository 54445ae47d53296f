// Sign-in. With an OIDC provider configured, one button to the BFF's authorization-code
// flow (the provider's page does the rest); on the embedded default, a name, which the BFF
// turns into a session through the local issuer.

import { useState, type FormEvent } from 'react';
import { ProblemError, signInLocal, type SessionInfo } from '../api';
import { Bell } from '../components/Bell';
import { Field, FormError } from '../components/Field';

const SIGN_IN_ERRORS: Record<string, string> = {
  session: 'Your sign-in took too long or started in another tab. Please try again.',
  state: 'That sign-in could not be verified. Please try again.',
  refused: 'The sign-in was cancelled or refused by the provider.',
  token: 'The provider’s answer could not be verified. Please try again.',
};

export function SignIn({ session, onSignedIn }: { session: SessionInfo; onSignedIn: () => void }) {
  const [user, setUser] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const fromProvider = new URLSearchParams(window.location.search).get('signInError');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signInLocal(user);
      onSignedIn();
    } catch (err) {
      setError(err instanceof ProblemError ? (err.byPointer()['/user'] ?? err.message) : 'Sign-in failed.');
    } finally {
      setBusy(false);
    }
  };

  const returnTo = encodeURIComponent(window.location.pathname === '/' ? '/' : window.location.pathname);
  return (
    <main className="centered signin" id="main">
      <h1>
        <Bell /> Chime
      </h1>
      <p className="lead">Reminders that arrive when they should, in your time zone.</p>
      <FormError message={fromProvider ? (SIGN_IN_ERRORS[fromProvider] ?? 'Sign-in failed.') : undefined} />
      {session.signIn === 'oidc' ? (
        <a className="button primary" href={`/bff/auth/login?returnTo=${returnTo}`}>
          Sign in with your organisation
        </a>
      ) : (
        <form onSubmit={submit} noValidate>
          <Field id="user" label="Your name" error={error} hint="This server runs on its own: sign in with any name. Your tasks are kept under it.">
            {(props) => (
              <input {...props} value={user} onChange={(e) => setUser(e.target.value)} autoComplete="username" required />
            )}
          </Field>
          <button type="submit" className="primary" disabled={busy}>
            Sign in
          </button>
        </form>
      )}
    </main>
  );
}
