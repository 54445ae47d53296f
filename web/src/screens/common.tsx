import { ProblemError } from '../api';

export function ErrorMessage({ error }: { error: Error }) {
  const text =
    error instanceof ProblemError && error.status === 404
      ? 'Not found: it may have been deleted.'
      : error.message || 'Something went wrong.';
  return (
    <div className="banner banner-error" role="alert">
      {text}
    </div>
  );
}
