import { z } from 'zod';
import { Prisma } from '../generated/prisma/client.js';

/**
 * Segment rules: a filter tree over a workspace's contacts, stored as JSON on the audience and
 * compiled to one parameterized SQL predicate over a `contact` row.
 *
 * A node is `{and: [...]}`, `{or: [...]}`, `{not: {...}}` or a condition `{field, operator, value}`.
 * Every compiled predicate is true or false, never NULL, so that `not` is an exact complement
 * (a contact without the field is "not equal" to any value).
 */

export const SEGMENT_OPERATORS = [
  'EQ',
  'NEQ',
  'GT',
  'GTE',
  'LT',
  'LTE',
  'BETWEEN',
  'IN',
  'NOT_IN',
  'EXISTS',
  'NOT_EXISTS',
  'WITHIN_LAST_DAYS',
] as const;
export type SegmentOperator = (typeof SEGMENT_OPERATORS)[number];

export const MAX_RULE_DEPTH = 5;
export const MAX_RULE_CONDITIONS = 50;
export const MAX_IN_LIST_VALUES = 1000;
const MAX_DAYS = 36_500;
const MAX_TEXT_VALUE = 255;

/** Contact columns a rule may test, by field name. */
const TEXT_COLUMNS = {
  email: 'email',
  phone: 'phone',
  firstName: 'first_name',
  lastName: 'last_name',
  country: 'country',
  zip: 'zip',
  externalId: 'external_id',
  mobileAdId: 'mobile_ad_id',
} as const;
const TIME_COLUMNS = { createdAt: 'created_at', updatedAt: 'updated_at' } as const;
type TextField = keyof typeof TEXT_COLUMNS;
type TimeField = keyof typeof TIME_COLUMNS;

const ATTRIBUTE_PREFIX = 'attributes.';
const ATTRIBUTE_KEY = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_ATTRIBUTE_PATH = 5;

export const SEGMENT_FIELDS_HELP =
  `${[...Object.keys(TEXT_COLUMNS), ...Object.keys(TIME_COLUMNS)].join(', ')}, or attributes.<key>[.<key>…] ` +
  `(keys of letters, digits, _ and -, up to ${MAX_ATTRIBUTE_PATH} levels)`;

const OPERATORS_BY_KIND = {
  text: ['EQ', 'NEQ', 'IN', 'NOT_IN', 'EXISTS', 'NOT_EXISTS'],
  time: ['GT', 'GTE', 'LT', 'LTE', 'BETWEEN', 'WITHIN_LAST_DAYS'],
  attribute: SEGMENT_OPERATORS,
} as const satisfies Record<string, readonly SegmentOperator[]>;

type Scalar = string | number | boolean;

export type SegmentCondition = { field: string; operator: SegmentOperator; value?: unknown };
export type SegmentRule = { and: SegmentRule[] } | { or: SegmentRule[] } | { not: SegmentRule } | SegmentCondition;

type FieldRef =
  | { kind: 'text'; field: TextField }
  | { kind: 'time'; field: TimeField }
  | { kind: 'attribute'; path: string[] };

function resolveField(field: string): FieldRef | null {
  if (field in TEXT_COLUMNS) return { kind: 'text', field: field as TextField };
  if (field in TIME_COLUMNS) return { kind: 'time', field: field as TimeField };
  if (!field.startsWith(ATTRIBUTE_PREFIX)) return null;
  const path = field.slice(ATTRIBUTE_PREFIX.length).split('.');
  return path.length <= MAX_ATTRIBUTE_PATH && path.every((key) => ATTRIBUTE_KEY.test(key))
    ? { kind: 'attribute', path }
    : null;
}

const isoInstant = z.union([z.iso.datetime({ offset: true, local: true }), z.iso.date()]);
const isInstant = (value: unknown): value is string => isoInstant.safeParse(value).success;
const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isScalar = (value: unknown): value is Scalar =>
  (typeof value === 'string' && value.length <= MAX_TEXT_VALUE) || typeof value === 'boolean' || isNumber(value);

/** Emails and ad ids are stored lowercased, countries uppercased: rules compare the same way. */
function normalizeText(field: TextField, value: string): string {
  const trimmed = value.trim();
  if (field === 'email' || field === 'mobileAdId') return trimmed.toLowerCase();
  if (field === 'country') return trimmed.toUpperCase();
  return trimmed;
}

/** Checks a condition's value against its field and operator; returns the value to store, or
 * the issue (with a path under the condition). */
function checkCondition(
  ref: FieldRef,
  operator: SegmentOperator,
  value: unknown,
): { ok: true; value: unknown } | { ok: false; path: (string | number)[]; message: string } {
  const fail = (message: string, path: (string | number)[] = ['value']) => ({ ok: false as const, path, message });
  if (operator === 'EXISTS' || operator === 'NOT_EXISTS') {
    return value == null ? { ok: true, value: undefined } : fail(`${operator} takes no value`);
  }
  if (operator === 'WITHIN_LAST_DAYS') {
    return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_DAYS
      ? { ok: true, value }
      : fail(`WITHIN_LAST_DAYS takes a whole number of days, 1–${MAX_DAYS}`);
  }
  if (operator === 'IN' || operator === 'NOT_IN') {
    if (!Array.isArray(value) || value.length === 0 || value.length > MAX_IN_LIST_VALUES) {
      return fail(`${operator} takes a list of 1–${MAX_IN_LIST_VALUES} values`);
    }
    for (const [index, item] of value.entries()) {
      const problem = scalarProblem(ref, item);
      if (problem) return fail(problem, ['value', index]);
    }
    return { ok: true, value: ref.kind === 'text' ? value.map((item) => normalizeText(ref.field, item as string)) : value };
  }
  if (operator === 'EQ' || operator === 'NEQ') {
    const problem = scalarProblem(ref, value);
    return problem ? fail(problem) : { ok: true, value: ref.kind === 'text' ? normalizeText(ref.field, value as string) : value };
  }
  // Ranges: numbers (attributes only) or ISO 8601 dates and date-times.
  const bound = (item: unknown) => isInstant(item) || (ref.kind === 'attribute' && isNumber(item));
  const expected =
    ref.kind === 'attribute' ? 'a number or an ISO 8601 date-time (e.g. "2026-01-31T00:00:00Z")' : 'an ISO 8601 date-time';
  if (operator === 'BETWEEN') {
    if (!Array.isArray(value) || value.length !== 2) return fail('BETWEEN takes a list of two bounds [from, to]');
    const [from, to] = value as unknown[];
    if (!bound(from)) return fail(`must be ${expected}`, ['value', 0]);
    if (!bound(to) || typeof to !== typeof from) return fail(`must be ${expected}, like the lower bound`, ['value', 1]);
    const ordered = isNumber(from) ? from <= (to as number) : Date.parse(from as string) <= Date.parse(to as string);
    return ordered ? { ok: true, value } : fail('the lower bound must not exceed the upper bound', ['value', 1]);
  }
  return bound(value) ? { ok: true, value } : fail(`must be ${expected}`);
}

function scalarProblem(ref: FieldRef, value: unknown): string | null {
  if (ref.kind === 'attribute') {
    return isScalar(value) ? null : `must be a string (up to ${MAX_TEXT_VALUE} characters), a number or a boolean`;
  }
  return typeof value === 'string' && value.trim().length > 0 && value.length <= MAX_TEXT_VALUE
    ? null
    : `must be a non-empty string of at most ${MAX_TEXT_VALUE} characters`;
}

const nodeShape = {
  and: z.array(z.unknown()).nullish(),
  or: z.array(z.unknown()).nullish(),
  not: z.unknown().nullish(),
  field: z.string().nullish(),
  operator: z.enum(SEGMENT_OPERATORS, { message: `must be one of ${SEGMENT_OPERATORS.join(', ')}` }).nullish(),
  value: z.unknown().nullish(),
};

/** The schema of a node `depth` levels below the root; children of the deepest level may only be
 * conditions. */
function nodeSchema(depth: number): z.ZodType<SegmentRule> {
  const child: z.ZodType<SegmentRule> | null = depth < MAX_RULE_DEPTH ? z.lazy(() => nodeSchema(depth + 1)) : null;
  return z
    .object(nodeShape)
    .strict()
    .transform((node, context): SegmentRule => {
      const kinds = (['and', 'or', 'not'] as const).filter((key) => node[key] != null);
      const isCondition = node.field != null || node.operator != null;
      if (kinds.length + (isCondition ? 1 : 0) !== 1) {
        context.addIssue({ code: 'custom', message: 'give exactly one of and, or, not, or a condition (field, operator, value)' });
        return z.NEVER;
      }
      const combinator = kinds[0];
      if (combinator) {
        if (!child) {
          context.addIssue({ code: 'custom', path: [combinator], message: `rules nest at most ${MAX_RULE_DEPTH} levels deep` });
          return z.NEVER;
        }
        if (combinator === 'not') {
          const parsed = child.safeParse(node.not);
          if (!parsed.success) return forward(context, parsed.error, ['not']);
          return { not: parsed.data };
        }
        const items = node[combinator]!;
        if (items.length === 0) {
          context.addIssue({ code: 'custom', path: [combinator], message: 'give at least one rule' });
          return z.NEVER;
        }
        const parsedItems: SegmentRule[] = [];
        let failed = false;
        items.forEach((item, index) => {
          const parsed = child.safeParse(item);
          if (parsed.success) parsedItems.push(parsed.data);
          else {
            forward(context, parsed.error, [combinator, index]);
            failed = true;
          }
        });
        if (failed) return z.NEVER;
        return combinator === 'and' ? { and: parsedItems } : { or: parsedItems };
      }
      if (node.field == null) {
        context.addIssue({ code: 'custom', path: ['field'], message: 'a condition needs a field' });
        return z.NEVER;
      }
      const ref = resolveField(node.field);
      if (!ref) {
        context.addIssue({ code: 'custom', path: ['field'], message: `must be ${SEGMENT_FIELDS_HELP}` });
        return z.NEVER;
      }
      if (node.operator == null) {
        context.addIssue({ code: 'custom', path: ['operator'], message: 'a condition needs an operator' });
        return z.NEVER;
      }
      const allowed: readonly SegmentOperator[] = OPERATORS_BY_KIND[ref.kind];
      if (!allowed.includes(node.operator)) {
        context.addIssue({ code: 'custom', path: ['operator'], message: `${node.field} takes ${allowed.join(', ')}` });
        return z.NEVER;
      }
      const checked = checkCondition(ref, node.operator, node.value);
      if (!checked.ok) {
        context.addIssue({ code: 'custom', path: checked.path, message: checked.message });
        return z.NEVER;
      }
      return checked.value === undefined
        ? { field: node.field, operator: node.operator }
        : { field: node.field, operator: node.operator, value: checked.value };
    });
}

function forward(context: z.RefinementCtx, error: z.ZodError, prefix: (string | number)[]): never {
  for (const issue of error.issues) {
    context.addIssue({ code: 'custom', path: [...prefix, ...issue.path.map((key) => key as string | number)], message: issue.message });
  }
  return z.NEVER;
}

function countConditions(rule: SegmentRule): number {
  if ('and' in rule) return rule.and.reduce((sum, child) => sum + countConditions(child), 0);
  if ('or' in rule) return rule.or.reduce((sum, child) => sum + countConditions(child), 0);
  if ('not' in rule) return countConditions(rule.not);
  return 1;
}

/** Validates a rule as given by a caller (or as stored), returning it in its stored form. */
export const segmentRuleSchema: z.ZodType<SegmentRule> = nodeSchema(1).superRefine((rule, context) => {
  const conditions = countConditions(rule);
  if (conditions > MAX_RULE_CONDITIONS) {
    context.addIssue({ code: 'custom', message: `a rule holds at most ${MAX_RULE_CONDITIONS} conditions (this one has ${conditions})` });
  }
});

/** A rule read back from the database, where only valid rules are stored. */
export function storedSegmentRule(json: unknown): SegmentRule {
  const parsed = segmentRuleSchema.safeParse(json);
  if (!parsed.success) throw new Error('A stored segment rule is invalid: update the audience with a valid rule');
  return parsed.data;
}

/** Whether what a rule matches moves with the clock (WITHIN_LAST_DAYS), with no data changing. */
export function ruleReadsTheClock(rule: SegmentRule): boolean {
  if ('and' in rule) return rule.and.some(ruleReadsTheClock);
  if ('or' in rule) return rule.or.some(ruleReadsTheClock);
  if ('not' in rule) return ruleReadsTheClock(rule.not);
  return rule.operator === 'WITHIN_LAST_DAYS';
}

const UTC_TIMESTAMP = (parameter: Prisma.Sql) => Prisma.sql`(${parameter}::timestamptz AT TIME ZONE 'UTC')`;

/** The attribute as a timestamptz when it is a string in an ISO 8601 format, else NULL (never an
 * error: jsonpath's datetime() runs silently). PostgreSQL's datetime() does not read a "Z"
 * suffix, so it becomes "+00:00" first. */
function attributeInstant(value: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`(CASE WHEN jsonb_typeof(${value}) = 'string' THEN
    (jsonb_path_query_first(to_jsonb(regexp_replace(${value} #>> '{}', '[Zz]$', '+00:00')), '$.datetime()', '{}', true)
      #>> '{}')::timestamptz END)`;
}

const COMPARATORS = { GT: '>', GTE: '>=', LT: '<', LTE: '<=' } as const;

function compileCondition(condition: SegmentCondition, alias: Prisma.Sql): Prisma.Sql {
  const ref = resolveField(condition.field)!;
  const { operator, value } = condition;
  const orFalse = (expression: Prisma.Sql) => Prisma.sql`COALESCE(${expression}, false)`;
  const compare = (left: Prisma.Sql, right: Prisma.Sql) =>
    Prisma.sql`${left} ${Prisma.raw(COMPARATORS[operator as keyof typeof COMPARATORS])} ${right}`;

  if (ref.kind === 'text') {
    const column = Prisma.sql`${alias}.${Prisma.raw(TEXT_COLUMNS[ref.field])}`;
    switch (operator) {
      case 'EQ':
        return orFalse(Prisma.sql`${column} = ${value as string}`);
      case 'NEQ':
        return Prisma.sql`${column} IS DISTINCT FROM ${value as string}`;
      case 'IN':
        return orFalse(Prisma.sql`${column} = ANY(${value as string[]}::text[])`);
      case 'NOT_IN':
        return Prisma.sql`NOT ${orFalse(Prisma.sql`${column} = ANY(${value as string[]}::text[])`)}`;
      case 'EXISTS':
        return Prisma.sql`${column} IS NOT NULL`;
      default:
        return Prisma.sql`${column} IS NULL`;
    }
  }

  if (ref.kind === 'time') {
    const column = Prisma.sql`${alias}.${Prisma.raw(TIME_COLUMNS[ref.field])}`;
    if (operator === 'WITHIN_LAST_DAYS') {
      return Prisma.sql`${column} >= (now() AT TIME ZONE 'UTC') - make_interval(days => ${value as number}::int)`;
    }
    if (operator === 'BETWEEN') {
      const [from, to] = value as [string, string];
      return Prisma.sql`${column} BETWEEN ${UTC_TIMESTAMP(Prisma.sql`${from}`)} AND ${UTC_TIMESTAMP(Prisma.sql`${to}`)}`;
    }
    return compare(column, UTC_TIMESTAMP(Prisma.sql`${value as string}`));
  }

  const attribute = Prisma.sql`(${alias}.attributes #> ${ref.path}::text[])`;
  const json = (item: unknown) => JSON.stringify(item);
  switch (operator) {
    case 'EQ':
      return orFalse(Prisma.sql`${attribute} = ${json(value)}::jsonb`);
    case 'NEQ':
      return Prisma.sql`NOT ${orFalse(Prisma.sql`${attribute} = ${json(value)}::jsonb`)}`;
    case 'IN':
      return orFalse(Prisma.sql`${attribute} = ANY(${(value as unknown[]).map(json)}::jsonb[])`);
    case 'NOT_IN':
      return Prisma.sql`NOT ${orFalse(Prisma.sql`${attribute} = ANY(${(value as unknown[]).map(json)}::jsonb[])`)}`;
    case 'EXISTS':
      return orFalse(Prisma.sql`jsonb_typeof(${attribute}) <> 'null'`);
    case 'NOT_EXISTS':
      return Prisma.sql`NOT ${orFalse(Prisma.sql`jsonb_typeof(${attribute}) <> 'null'`)}`;
    case 'WITHIN_LAST_DAYS':
      return orFalse(Prisma.sql`${attributeInstant(attribute)} >= now() - make_interval(days => ${value as number}::int)`);
  }
  // Ranges: a number compares numbers only, a date-time compares date-time strings only, so a
  // value of another JSON type neither matches nor makes the cast fail.
  const bounds = operator === 'BETWEEN' ? (value as [Scalar, Scalar]) : [value as Scalar];
  const numeric = isNumber(bounds[0]);
  const operand = numeric
    ? Prisma.sql`(CASE WHEN jsonb_typeof(${attribute}) = 'number' THEN (${attribute})::numeric END)`
    : attributeInstant(attribute);
  const bound = (item: Scalar) => (numeric ? Prisma.sql`${item}::numeric` : Prisma.sql`${item}::timestamptz`);
  if (operator === 'BETWEEN') {
    return orFalse(Prisma.sql`${operand} BETWEEN ${bound(bounds[0]!)} AND ${bound(bounds[1]!)}`);
  }
  return orFalse(compare(operand, bound(bounds[0]!)));
}

/** Compiles a validated rule to a boolean SQL expression over the `contact` row aliased `alias`.
 * Values are bound parameters; only column names and operators are spelled into the SQL. */
export function compileSegmentRule(rule: SegmentRule, alias: string): Prisma.Sql {
  const table = Prisma.raw(alias);
  const compile = (node: SegmentRule): Prisma.Sql => {
    if ('and' in node) return Prisma.sql`(${Prisma.join(node.and.map(compile), ' AND ')})`;
    if ('or' in node) return Prisma.sql`(${Prisma.join(node.or.map(compile), ' OR ')})`;
    if ('not' in node) return Prisma.sql`(NOT ${compile(node.not)})`;
    return compileCondition(node, table);
  };
  return compile(rule);
}
