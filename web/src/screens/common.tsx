import { ProblemError } from '../api';
import { useI18n } from '../i18n/react';

export function ErrorMessage({ error }: { error: Error }) {
  const { t } = useI18n();
  const text = error instanceof ProblemError && error.status === 404 ? t('common.notFound') : error.message || t('common.somethingWrong');
  return (
    <div className="banner banner-error" role="alert">
      {text}
    </div>
  );
}
