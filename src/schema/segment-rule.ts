import { countAudienceMembers } from '../audiences/audience-members.js';
import {
  MAX_IN_LIST_VALUES,
  MAX_RULE_CONDITIONS,
  MAX_RULE_DEPTH,
  SEGMENT_FIELDS_HELP,
  SEGMENT_OPERATORS,
  ruleReadsTheClock,
  segmentRuleSchema,
  type SegmentOperator,
} from '../audiences/segment-rule.js';
import { SEGMENT_TEMPLATES, SEGMENT_TEMPLATE_KEYS, type SegmentTemplateKey } from '../audiences/segment-templates.js';
import { db } from '../infra/db.js';
import { builder } from './builder.js';
import { parseInput } from './errors.js';

const OPERATOR_DESCRIPTIONS: Record<SegmentOperator, string> = {
  EQ: 'Equals `value` (text fields and attributes).',
  NEQ: 'Does not equal `value`; contacts without the field match.',
  GT: 'Greater than `value`: a number (attributes) or an ISO 8601 date-time.',
  GTE: 'Greater than or equal to `value`.',
  LT: 'Less than `value`.',
  LTE: 'Less than or equal to `value`.',
  BETWEEN: 'Between the two bounds of `value` ([from, to], inclusive), numbers or ISO 8601 date-times.',
  IN: `Equals one of the values of the list \`value\` (at most ${MAX_IN_LIST_VALUES}).`,
  NOT_IN: 'Equals none of the values of the list `value`; contacts without the field match.',
  EXISTS: 'The field has a value (no `value`).',
  NOT_EXISTS: 'The field has no value (no `value`).',
  WITHIN_LAST_DAYS: 'A date-time within the last `value` days (createdAt, updatedAt, date-time attributes).',
};

export const SegmentOperatorEnum = builder.enumType('SegmentOperator', {
  description: 'How a segment condition compares a contact field with its value.',
  values: Object.fromEntries(SEGMENT_OPERATORS.map((operator) => [operator, { description: OPERATOR_DESCRIPTIONS[operator] }])),
});

export interface SegmentRuleInputShape {
  and?: SegmentRuleInputShape[] | null;
  or?: SegmentRuleInputShape[] | null;
  not?: SegmentRuleInputShape | null;
  field?: string | null;
  operator?: string | null;
  // The JSON scalar's input type is `unknown`, which Pothos cannot match against an optional field of a shape.
  value?: any;
}

export const SegmentRuleInput = builder.inputRef<SegmentRuleInputShape>('SegmentRuleInput').implement({
  description:
    'A filter over the contacts of the workspace. Give exactly one of `and`, `or`, `not`, or a condition ' +
    `(\`field\`, \`operator\`, \`value\`). At most ${MAX_RULE_DEPTH} levels deep and ${MAX_RULE_CONDITIONS} conditions.`,
  fields: (t) => ({
    and: t.field({ type: [SegmentRuleInput], required: false, description: 'Contacts matching every rule of the list.' }),
    or: t.field({ type: [SegmentRuleInput], required: false, description: 'Contacts matching at least one rule of the list.' }),
    not: t.field({ type: SegmentRuleInput, required: false, description: 'Contacts not matching the rule.' }),
    field: t.string({ required: false, description: `The contact field a condition tests: ${SEGMENT_FIELDS_HELP}.` }),
    operator: t.field({ type: SegmentOperatorEnum, required: false, description: 'How the condition compares.' }),
    value: t.field({
      type: 'JSON',
      required: false,
      description: 'What the condition compares with: a string, number or boolean; a list for IN, NOT_IN and BETWEEN; days for WITHIN_LAST_DAYS.',
    }),
  }),
});

export const SegmentTemplateKeyEnum = builder.enumType('SegmentTemplateKey', {
  description: 'A ready-made segment rule.',
  values: Object.fromEntries(
    SEGMENT_TEMPLATE_KEYS.map((key) => [key, { description: SEGMENT_TEMPLATES[key].description }]),
  ) as Record<SegmentTemplateKey, { description: string }>,
});

const SegmentTemplateRef = builder.objectRef<SegmentTemplateKey>('SegmentTemplate').implement({
  description: 'A ready-made segment rule, to create an audience from (`segmentTemplate`) or to start a rule of your own.',
  fields: (t) => ({
    key: t.field({ type: SegmentTemplateKeyEnum, description: 'Pass as `segmentTemplate` to createAudience.', resolve: (key) => key }),
    name: t.string({ description: 'A short title.', resolve: (key) => SEGMENT_TEMPLATES[key].name }),
    description: t.string({ description: 'Which contacts it holds.', resolve: (key) => SEGMENT_TEMPLATES[key].description }),
    rule: t.field({ type: 'JSON', description: 'The rule, in the shape of SegmentRuleInput.', resolve: (key) => SEGMENT_TEMPLATES[key].rule }),
  }),
});

builder.queryField('segmentTemplates', (t) =>
  t.field({
    type: [SegmentTemplateRef],
    description: 'The ready-made segment rules.',
    authScopes: { workspace: true },
    resolve: () => SEGMENT_TEMPLATE_KEYS,
  }),
);

builder.queryField('previewSegment', (t) =>
  t.int({
    description: 'How many contacts of your workspace a segment rule matches now (a ValidationError when the rule is invalid).',
    authScopes: { workspace: true },
    args: { rule: t.arg({ type: SegmentRuleInput, required: true, description: 'The rule to try.' }) },
    resolve: (_root, args, context) => {
      const rule = parseInput(segmentRuleSchema, args.rule, 'rule');
      if (ruleReadsTheClock(rule)) context.readsTheClock = true;
      // An unsaved segment: its id would only matter to split buckets, which a count does not use.
      return countAudienceMembers(db(), { id: '', workspaceId: context.viewer!.workspaceId, kind: 'SEGMENT', rule });
    },
  }),
);
