import { GraphQLError } from 'graphql';
import type { z } from 'zod';
import { builder } from './builder.js';

/** Every typed error a mutation can return implements the `Error` interface. They are also
 * GraphQLErrors: thrown where no result union catches them (query and subscription arguments),
 * they reach the caller with their message and code instead of being masked as internal errors. */
export abstract class DomainError extends GraphQLError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message, { extensions: { code } });
  }
}

export interface FieldIssue {
  /** Dotted path of the input field, e.g. `input.schedule.cron`. */
  field: string;
  message: string;
}

export class ValidationError extends DomainError {
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((issue) => `${issue.field}: ${issue.message}`).join('; '), 'VALIDATION_FAILED');
  }

  static of(field: string, message: string): ValidationError {
    return new ValidationError([{ field, message }]);
  }
}

export class NotFoundError extends DomainError {
  constructor(
    readonly field: string,
    what: string,
  ) {
    super(`No ${what} with this id exists in your workspace`, 'NOT_FOUND');
  }
}

export class ConflictError extends DomainError {
  constructor(message: string) {
    super(message, 'CONFLICT');
  }
}

/** Parses mutation input with a zod schema, turning every issue into a field-level error. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown, root = 'input'): z.output<Schema> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    parsed.error.issues.map((issue) => ({
      field: [root, ...issue.path.map(String)].join('.'),
      message: issue.message,
    })),
  );
}

export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'A problem that stopped a mutation; nothing was changed.',
  fields: (t) => ({
    message: t.exposeString('message', { description: 'What went wrong, in words meant for the caller.' }),
    code: t.exposeString('code', { description: 'A stable machine-readable code.' }),
  }),
});

const FieldIssueRef = builder.objectRef<FieldIssue>('FieldIssue').implement({
  description: 'One invalid input field.',
  fields: (t) => ({
    field: t.exposeString('field', { description: 'Dotted path of the field, e.g. `input.schedule.cron`.' }),
    message: t.exposeString('message', { description: 'What is wrong with it.' }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'The input was invalid. `field` names the first bad field; `issues` lists them all.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    field: t.string({
      description: 'Dotted path of the first invalid field.',
      resolve: (error) => error.issues[0]?.field ?? 'input',
    }),
    issues: t.field({ type: [FieldIssueRef], description: 'Every invalid field.', resolve: (error) => error.issues }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description: 'An id in the input does not name an object of your workspace.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    field: t.exposeString('field', { description: 'The input field holding the unknown id.' }),
  }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description: 'The change conflicts with existing data (for example a second sync of one audience to one destination).',
  interfaces: [ErrorInterface],
});

/** The platform failed to answer; `retryable` says whether trying again later may help. */
export class PlatformError extends DomainError {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message, 'PLATFORM_ERROR');
  }
}

builder.objectType(PlatformError, {
  name: 'PlatformError',
  description: 'The ad platform refused or failed the call; nothing was changed.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    retryable: t.exposeBoolean('retryable', { description: 'True when the problem looks temporary: try again later.' }),
  }),
});
