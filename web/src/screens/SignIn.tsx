// Sign-in. With an OIDC provider configured, one button to the BFF's authorization-code
// flow (the provider's page does the rest); on the embedded default, a name, which the BFF
// turns into a session through the local issuer.

import { useState, type FormEvent } from 'react';
import { ProblemError, signInLocal, type SessionInfo } from '../api';
import { Bell } from '../components/Bell';
import { Field, FormError } from '../components/Field';
import type { MessageKey } from '../i18n';
import { useI18n } from '../i18n/react';

/** What the BFF's `signInError` means, by its code. */
const SIGN_IN_ERRORS: Record<string, MessageKey> = {
  session: 'signIn.errorSession',
  state: 'signIn.errorState',
  refused: 'signIn.errorRefused',
  token: 'signIn.errorToken',
};

export function SignIn({ session, onSignedIn }: { session: SessionInfo; onSignedIn: () => void }) {
  const { t } = useI18n();
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
      setError(err instanceof ProblemError ? (err.byPointer()['/user'] ?? err.message) : t('signIn.failed'));
    } finally {
      setBusy(false);
    }
  };

  const returnTo = encodeURIComponent(window.location.pathname === '/' ? '/' : window.location.pathname);
  return (
    <main className="centered signin" id="main">
      <h1>
        <Bell /> {t('app.chime')}
      </h1>
      <p className="lead">{t('signIn.remindersThatArriveWhen')}</p>
      <FormError message={fromProvider ? t(SIGN_IN_ERRORS[fromProvider] ?? 'signIn.failed') : undefined} />
      {session.signIn === 'oidc' ? (
        <a className="button primary" href={`/bff/auth/login?returnTo=${returnTo}`}>
          {t('signIn.signInWithYour')}
        </a>
      ) : (
        <form onSubmit={submit} noValidate>
          <Field id="user" label={t('signIn.yourName')} error={error} hint={t('signIn.hint')}>
            {(props) => (
              <input {...props} value={user} onChange={(e) => setUser(e.target.value)} autoComplete="username" required />
            )}
          </Field>
          <button type="submit" className="primary" disabled={busy}>
            {t('signIn.signIn')}
          </button>
        </form>
      )}
    </main>
  );
}
