/** One invalid field, as a ValidationError lists it (`input.config.webhook.url`: what is wrong). */
export interface FieldIssue {
  field: string;
  message: string;
}

/** Whether an issue names this input field (its dotted path ends with `name`). */
export const issueFor = (issues: FieldIssue[], name: string): FieldIssue | undefined =>
  issues.find((issue) => issue.field === name || issue.field.endsWith(`.${name}`));

/** What the gateway refused, read aloud as it appears: each invalid field, or else the message. */
export function FormProblems({ message, issues }: { message: string | null; issues: FieldIssue[] }) {
  if (!message && issues.length === 0) return null;
  return (
    <div class="error form-problems" role="alert">
      {issues.length > 0 ? (
        <ul>{issues.map((issue) => <li key={issue.field}><code>{issue.field}</code>: {issue.message}</li>)}</ul>
      ) : (
        <p>{message}</p>
      )}
    </div>
  );
}
