import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';

/** Keys people put in a config that are secrets: they are refused there and belong in the
 * write-only credentials (the config is readable through the API). */
const SECRET_KEYS = new Set(
  [
    'accessToken',
    'accessTokenSecret',
    'refreshToken',
    'clientSecret',
    'consumerSecret',
    'consumerKey',
    'developerToken',
    'signingSecret',
    'token',
    'secret',
    'password',
    'apiKey',
    'headers',
  ].map((key) => key.toLowerCase()),
);

/** Suggest a known key only when the unknown one is a near miss (a typo, a different case). */
const MAX_SUGGESTION_DISTANCE = 3;

function unknownKeyMessage(key: string, known: readonly string[]): string {
  if (SECRET_KEYS.has(key.toLowerCase())) return `${key} is a secret: this belongs in credentials, not in config`;
  const suggestion = known.length > 0 ? closest(key, [...known]) : undefined;
  const near =
    suggestion !== undefined &&
    (suggestion.toLowerCase() === key.toLowerCase() || distance(key, suggestion) <= MAX_SUGGESTION_DISTANCE);
  return near
    ? `unknown key "${key}": did you mean "${suggestion}"?`
    : `unknown key "${key}": the known keys are ${known.join(', ')}`;
}

/**
 * `fields` refusing keys it does not know, each with an issue at its own path naming the closest
 * known key (a `baseURL` typo must not quietly fall back to the default URL), and refusing secrets
 * with "this belongs in credentials". Checked even when other fields are wrong, so every problem is
 * reported at once.
 */
export function strictConfig<Fields extends z.ZodObject>(fields: Fields): z.ZodType<z.output<Fields>, z.input<Fields>> {
  const known = Object.keys(fields.shape);
  return fields.catchall(z.unknown()).superRefine(
    (value, context) => {
      if (typeof value !== 'object' || value === null) return;
      for (const key of Object.keys(value)) {
        if (!known.includes(key)) context.addIssue({ code: 'custom', path: [key], message: unknownKeyMessage(key, known) });
      }
    },
    { when: () => true },
  ) as unknown as z.ZodType<z.output<Fields>, z.input<Fields>>;
}
