/** Longest quote of a platform's or receiver's own words in an error message or an invalid sample. */
export const MAX_QUOTED_CHARS = 200;

/**
 * A text another system sent back (a documented error field: a message, a reason, a trace id), made fit
 * to quote in what we show: the secrets blanked (longest first, so a secret holding another goes whole),
 * control characters and runs of whitespace made one space, and at most MAX_QUOTED_CHARS characters.
 * Only parsed fields are ever quoted: the raw body of an unknown reply is not.
 */
export function quoteForeignText(text: string, secrets: readonly string[] = []): string {
  const redacted = [...secrets]
    .filter((secret) => secret.length > 0)
    .sort((a, b) => b.length - a.length)
    .reduce((clean, secret) => clean.replaceAll(secret, '[redacted]'), text);
  const clean = redacted.replace(/[\s\x00-\x1f\x7f]+/g, ' ').trim();
  const characters = [...clean];
  return characters.length > MAX_QUOTED_CHARS ? `${characters.slice(0, MAX_QUOTED_CHARS - 1).join('')}…` : clean;
}
