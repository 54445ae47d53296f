/** The app's mark; decorative (its text label sits beside it). */
export function Bell() {
  return (
    <svg className="bell" viewBox="0 0 32 32" width="24" height="24" aria-hidden="true" focusable="false">
      <circle cx="16" cy="16" r="15" fill="currentColor" opacity="0.2" />
      <path d="M16 7a6 6 0 0 0-6 6v5l-2 3h16l-2-3v-5a6 6 0 0 0-6-6zm-2 16a2 2 0 0 0 4 0z" fill="currentColor" />
    </svg>
  );
}
