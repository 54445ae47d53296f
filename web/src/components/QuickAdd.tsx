// Quick add: one line of English ("Call mom tomorrow at 9", "Rent on the 1st of every month"),
// read by the server, which says what it understood and when it would be due before anything
// is saved. A line it cannot read exactly is refused with why, never guessed.

import { useEffect, useState, type FormEvent } from 'react';
import { bff, ProblemError, type Task } from '../api';
import { useRouter } from '../router';
import { useApp } from '../state';
import { track } from '../telemetry';
import { dateTime } from '../time';
import { useI18n } from '../i18n/react';

interface Answer {
  task: Record<string, unknown>;
  understood: string;
  occurrences: string[];
}

export function QuickAdd() {
  const { t, locale } = useI18n();
  const { settings, announce } = useApp();
  const { navigate } = useRouter();
  const [text, setText] = useState('');
  const [answer, setAnswer] = useState<Answer>();
  const [problem, setProblem] = useState<string>();
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    if (!text.trim()) {
      setAnswer(undefined);
      setProblem(undefined);
      return;
    }
    let live = true;
    const timer = setTimeout(async () => {
      try {
        const read = await bff<Answer>('/api/tasks/quick?count=3', { method: 'POST', body: { text, timeZone: settings.timeZone } });
        if (!live) return;
        setAnswer(read);
        setProblem(undefined);
      } catch (err) {
        if (!live) return;
        setAnswer(undefined);
        setProblem(err instanceof ProblemError ? (err.byPointer()['/text'] ?? err.message) : t('quickAdd.couldNotRead'));
      }
    }, 300);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text, settings.timeZone, t]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    if (!answer || saving) return;
    setSaving(true);
    try {
      const task = await bff<Task>('/api/tasks', { method: 'POST', body: answer.task });
      track('quick_add');
      announce(t('quickAdd.added', { name: task.name }));
      navigate(`/tasks/${task.id}`);
    } catch (err) {
      setProblem(err instanceof ProblemError ? err.message : t('common.savingFailed'));
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="quick-add" onSubmit={add} noValidate>
      <label htmlFor="quick-add">{t('quickAdd.quickAdd')}</label>
      <div className="quick-add-row">
        <input
          id="quick-add"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder={t('quickAdd.waterThePlantsEvery')}
          aria-describedby="quick-add-read"
          aria-invalid={Boolean(problem)}
          autoComplete="off"
        />
        <button type="submit" className="primary" disabled={!answer || saving}>
          {t('quickAdd.add')}
        </button>
      </div>
      <div id="quick-add-read" aria-live="polite">
        {answer && (
          <p className="hint">
            <strong>{String(answer.task.name)}</strong>: {answer.understood}
            {answer.occurrences.length > 0 && (
              <>
                {t('quickAdd.next', { times: answer.occurrences.map((at) => dateTime(at, settings.timeZone, locale)).join(', ') })}
              </>
            )}
          </p>
        )}
        {problem && <p className="error">{problem}</p>}
      </div>
    </form>
  );
}
