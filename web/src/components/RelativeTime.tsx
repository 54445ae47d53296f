// A time as people say it ("in 20 min", "tomorrow 08:00"), in a <time> that carries the
// instant. The absolute time is its title on hover, and is shown beside it while the row it is
// in has keyboard focus (and always to screen readers), so that no one has to hover to know
// exactly when. It follows the clock: the words are recomputed every half minute.

import { createContext, useContext, useEffect, useState } from 'react';
import { absoluteTime, clockTime, relativeTime } from '../relative';
import { useI18n } from '../i18n/react';
import { useApp } from '../state';

/** How often a relative time is said again. */
const TICK_MS = 30_000;

/** The current time; tests provide a fixed one. */
export const ClockContext = createContext<() => Date>(() => new Date());

/** The current time, again every half minute. */
export function useNow(): Date {
  const clock = useContext(ClockContext);
  const [now, setNow] = useState(clock);
  useEffect(() => {
    const timer = setInterval(() => setNow(clock()), TICK_MS);
    return () => clearInterval(timer);
  }, [clock]);
  return now;
}

/**
 * `at` relative to now. `clock`: under a heading that already names the day, only the time of
 * day, unless it is within the hour ("in 20 min").
 */
export function RelativeTime({ at, className, clock = false }: { at: string; className?: string; clock?: boolean }) {
  const { settings } = useApp();
  const { locale } = useI18n();
  const now = useNow();
  const absolute = absoluteTime(at, settings.timeZone, locale);
  const near = Math.abs(Date.parse(at) - now.getTime()) < 3_600_000;
  return (
    <time dateTime={at} title={absolute} className={className ? `relative-time ${className}` : 'relative-time'}>
      {clock && !near ? clockTime(at, settings.timeZone, locale) : relativeTime(at, now, settings.timeZone, locale)}
      <span className="absolute-time"> ({absolute})</span>
    </time>
  );
}
