import { z } from 'zod';
import { platformUrlProblem } from '../infra/address-policy.js';

/**
 * A config setting that replaces a platform API's URL (`baseUrl`, `tokenUrl`): only `officialUrls`,
 * unless the operator allows custom platform URLs, and then under the private-address rules. Checked
 * when a destination is saved and again whenever its connector is built for a call.
 */
export function platformUrl(name: string, officialUrls: readonly string[]) {
  return z.string({ error: `${name} must be a URL` }).superRefine((value, context) => {
    const problem = platformUrlProblem(value, officialUrls);
    if (problem) context.addIssue({ code: 'custom', message: `${name} ${problem}` });
  });
}
