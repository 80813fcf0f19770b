import { pino } from 'pino';

/** The one logger; the app factory sets its level from the configuration. Secrets and raw identifiers are never passed to it; the redact list is a
 * second line of defence for fields that could carry them. */
export const logger = pino({
  redact: {
    paths: ['*.authorization', '*.accessToken', '*.credentials', '*.apiKey', 'req.headers.authorization'],
    censor: '[redacted]',
  },
});
