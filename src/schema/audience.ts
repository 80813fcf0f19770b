import { z } from 'zod';
import { normalizeContact, type NormalizedContact } from '../audiences/contact-input.js';
import { addMembers, lockLiveAudience, removeMembers } from '../audiences/membership.js';
import { audienceDefinition, countAudienceMembers, type AudienceDefinition } from '../audiences/audience-members.js';
import { ruleReadsTheClock, segmentRuleSchema } from '../audiences/segment-rule.js';
import { SEGMENT_TEMPLATES, SEGMENT_TEMPLATE_KEYS } from '../audiences/segment-templates.js';
import { splitGroupsSchema } from '../audiences/split-groups.js';
import { deleteAudiences } from '../workflows/delete-audiences.js';
import { db, directTransaction } from '../infra/db.js';
import { requestCleanup } from '../jobs/housekeeping.js';
import type { Prisma } from '../generated/prisma/client.js';
import { AudienceKind, ConsentBasis } from '../generated/prisma/enums.js';
import { builder } from './builder.js';
import { NotFoundError, ValidationError, parseInput, type FieldIssue } from './errors.js';
import { parseGlobalId } from './global-id.js';
import { SegmentRuleInput, SegmentTemplateKeyEnum } from './segment-rule.js';
import { SplitGroupInput, SplitGroupRef, splitGroupsWithCounts } from './split-group.js';

/** Most members one add or remove call accepts. */
export const MAX_MEMBERS_PER_CALL = 100_000;

export const ConsentBasisEnum = builder.enumType(ConsentBasis, {
  name: 'ConsentBasis',
  description: 'The GDPR lawful basis for processing an audience’s members (Art. 6(1)).',
  values: {
    CONSENT: { description: 'The people consented.' },
    LEGITIMATE_INTEREST: { description: 'A legitimate interest of yours.' },
    CONTRACT: { description: 'A contract with the people.' },
    LEGAL_OBLIGATION: { description: 'A legal obligation.' },
  },
});

export const AudienceKindEnum = builder.enumType(AudienceKind, {
  name: 'AudienceKind',
  description: 'How an audience decides its members.',
  values: {
    STATIC: { description: 'Members are added and removed by calls (addAudienceMembers, imports).' },
    SEGMENT: { description: 'Members are the contacts of the workspace matching the audience’s rule, evaluated at each run.' },
  },
});

const segmentReadsTheClock = (definition: AudienceDefinition) =>
  definition.kind === 'SEGMENT' && ruleReadsTheClock(definition.rule);

export const AudienceRef = builder.prismaNode('Audience', {
  description: 'A list of contacts to send to destinations.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (https://pothos-graphql.dev/docs/plugins/prisma/selections).
  select: { id: true },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '', deletedAt: null }),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name.' }),
    externalId: t.exposeString('externalId', {
      nullable: true,
      description: 'Your own id for the audience, set by `syncAudiences` (null for audiences created otherwise).',
    }),
    consentBasis: t.expose('consentBasis', {
      type: ConsentBasisEnum,
      nullable: true,
      description: 'The GDPR lawful basis for processing its members, as given to `syncAudiences`.',
    }),
    description: t.exposeString('description', { nullable: true, description: 'What this audience is for.' }),
    kind: t.expose('kind', { type: AudienceKindEnum, description: 'Whether members are listed (STATIC) or follow a rule (SEGMENT).' }),
    segmentRule: t.expose('segmentRule', {
      type: 'JSON',
      nullable: true,
      description: 'The rule of a SEGMENT audience, in the shape of SegmentRuleInput; null for a STATIC one.',
    }),
    memberCount: t.int({
      description: 'How many contacts the audience holds now (for a SEGMENT audience: how many match its rule).',
      select: { id: true, workspaceId: true, kind: true, segmentRule: true, _count: { select: { members: true } } },
      resolve: (audience, _args, context) => {
        if (audience.kind !== 'SEGMENT') return audience._count.members;
        const definition = audienceDefinition(audience);
        if (segmentReadsTheClock(definition)) context.readsTheClock = true;
        return countAudienceMembers(db(), definition);
      },
    }),
    splitGroups: t.field({
      type: [SplitGroupRef],
      description: 'The split groups dividing the members, in order; empty when the audience is not split.',
      select: { id: true, workspaceId: true, kind: true, segmentRule: true, splitGroups: true },
      resolve: (audience, _args, context) => {
        if (segmentReadsTheClock(audienceDefinition(audience))) context.readsTheClock = true;
        return splitGroupsWithCounts(audience);
      },
    }),
    syncs: t.relatedConnection('syncs', {
      cursor: 'id',
      description: 'The syncs that send this audience, newest first.',
      query: { where: { deletedAt: null }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the audience was created.' }),
  }),
});

builder.queryField('audiences', (t) =>
  t.prismaConnection({
    type: 'Audience',
    cursor: 'id',
    description: 'The audiences of your workspace, newest first.',
    authScopes: { workspace: true },
    resolve: (query, _root, _args, context) =>
      db().audience.findMany({
        ...query,
        where: { workspaceId: context.viewer!.workspaceId, deletedAt: null },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      }),
  }),
);

const CreateAudienceInput = builder.inputType('CreateAudienceInput', {
  description: 'A new audience.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–255 characters.' }),
    description: t.string({ required: false, description: 'What the audience is for, up to 2,000 characters.' }),
    segmentRule: t.field({
      type: SegmentRuleInput,
      required: false,
      description: 'Makes a SEGMENT audience: its members are the contacts matching this rule.',
    }),
    segmentTemplate: t.field({
      type: SegmentTemplateKeyEnum,
      required: false,
      description: 'Makes a SEGMENT audience from a ready-made rule (see `segmentTemplates`); not with `segmentRule`.',
    }),
    splitGroups: t.field({
      type: [SplitGroupInput],
      required: false,
      description: 'Divides the members into named groups by percentage (adding up to 100); syncs can send one group.',
    }),
  }),
});

const audienceNameSchema = z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters');
const audienceDescriptionSchema = z.string().trim().max(2000, 'must be at most 2,000 characters').nullish();

const createAudienceSchema = z
  .object({
    name: audienceNameSchema,
    description: audienceDescriptionSchema,
    segmentRule: segmentRuleSchema.nullish(),
    segmentTemplate: z.enum(SEGMENT_TEMPLATE_KEYS).nullish(),
    splitGroups: splitGroupsSchema.nullish(),
  })
  .superRefine((input, context) => {
    if (input.segmentRule != null && input.segmentTemplate != null) {
      context.addIssue({ code: 'custom', path: ['segmentTemplate'], message: 'give either segmentRule or segmentTemplate, not both' });
    }
  });

builder.mutationField('createAudience', (t) =>
  t.field({
    type: AudienceRef,
    description:
      'Creates an audience: an empty STATIC one, or a SEGMENT one from `segmentRule` or `segmentTemplate`, ' +
      'optionally divided into split groups.',
    authScopes: { write: true },
    errors: { types: [ValidationError], dataField: { name: 'audience', description: 'The new audience.' } },
    args: { input: t.arg({ type: CreateAudienceInput, required: true, description: 'The audience.' }) },
    resolve: (_root, { input }, context) => {
      const { name, description, segmentRule, segmentTemplate, splitGroups } = parseInput(createAudienceSchema, input);
      const rule = segmentRule ?? (segmentTemplate ? SEGMENT_TEMPLATES[segmentTemplate].rule : null);
      return db().audience.create({
        data: {
          workspaceId: context.viewer!.workspaceId,
          name,
          description,
          kind: rule ? 'SEGMENT' : 'STATIC',
          segmentRule: (rule as Prisma.InputJsonValue | null) ?? undefined,
          splitGroups: splitGroups ?? [],
        },
      });
    },
  }),
);

const UpdateAudienceInput = builder.inputType('UpdateAudienceInput', {
  description: 'Changes to an audience; omitted fields stay as they are.',
  fields: (t) => ({
    name: t.string({ required: false, description: 'Display name, 1–255 characters.' }),
    description: t.string({ required: false, description: 'What the audience is for, up to 2,000 characters.' }),
    segmentRule: t.field({ type: SegmentRuleInput, required: false, description: 'Replaces the rule of a SEGMENT audience.' }),
    splitGroups: t.field({
      type: [SplitGroupInput],
      required: false,
      description:
        'Replaces the split groups (an empty list removes them). A group that a sync sends cannot be removed or renamed.',
    }),
  }),
});

const updateAudienceSchema = z.object({
  name: audienceNameSchema.nullish(),
  description: audienceDescriptionSchema,
  segmentRule: segmentRuleSchema.nullish(),
  splitGroups: splitGroupsSchema.nullish(),
});

builder.mutationField('updateAudience', (t) =>
  t.field({
    type: AudienceRef,
    description: 'Changes an audience. Only the fields given change.',
    authScopes: { write: true },
    errors: {
      types: [ValidationError, NotFoundError],
      dataField: { name: 'audience', description: 'The audience as changed.' },
    },
    args: {
      id: t.arg.id({ required: true, description: 'The audience to change.' }),
      input: t.arg({ type: UpdateAudienceInput, required: true, description: 'The changes.' }),
    },
    resolve: async (_root, { id, input }, context) => {
      const fields = parseInput(updateAudienceSchema, input);
      const audienceId = parseGlobalId(id, 'Audience', 'id');
      return db().$transaction(async (tx) => {
        // Locked so that no sync starts sending a group this change removes.
        const [audience] = await tx.$queryRaw<{ kind: string }[]>`
          SELECT kind FROM audience
          WHERE id = ${audienceId}::uuid AND workspace_id = ${context.viewer!.workspaceId}::uuid AND deleted_at IS NULL
          FOR UPDATE`;
        if (!audience) throw new NotFoundError('id', 'audience');
        if (fields.segmentRule && audience.kind !== 'SEGMENT') {
          throw ValidationError.of('input.segmentRule', 'a STATIC audience has no rule: create a SEGMENT audience instead');
        }
        if (fields.splitGroups) {
          const names = fields.splitGroups.map((group) => group.name);
          const stranded = await tx.audienceSync.findMany({
            where: { audienceId, deletedAt: null, splitGroup: { not: null, notIn: names } },
            select: { name: true, splitGroup: true },
            orderBy: { createdAt: 'asc' },
          });
          if (stranded.length > 0) {
            throw new ValidationError(
              stranded.map((sync) => ({
                field: 'input.splitGroups',
                message: `the sync "${sync.name}" sends split group "${sync.splitGroup}": keep that group, or change the sync first`,
              })),
            );
          }
        }
        return tx.audience.update({
          where: { id: audienceId },
          data: {
            name: fields.name ?? undefined,
            description: input.description === undefined ? undefined : fields.description,
            segmentRule: (fields.segmentRule as Prisma.InputJsonValue | null) ?? undefined,
            splitGroups: fields.splitGroups ?? undefined,
          },
        });
      });
    },
  }),
);

export const MemberInput = builder.inputType('AudienceMemberInput', {
  description:
    'A person. At least one of email, phone, externalId or mobileAdId. Emails and phones may be given ' +
    'pre-hashed (SHA-256, 64 lowercase hex characters). The contact is found by externalId, else email, ' +
    'else phone, else mobileAdId, and updated with the values given.',
  fields: (t) => ({
    email: t.string({ required: false, description: 'Email address.' }),
    phone: t.string({ required: false, description: 'Phone number, E.164 (or national with `country`).' }),
    firstName: t.string({ required: false, description: 'First name.' }),
    lastName: t.string({ required: false, description: 'Last name.' }),
    country: t.string({ required: false, description: 'ISO 3166 alpha-2 country code.' }),
    zip: t.string({ required: false, description: 'Postal code.' }),
    externalId: t.string({ required: false, description: 'Your own id for this person.' }),
    mobileAdId: t.string({ required: false, description: 'Mobile advertising id (IDFA or GAID).' }),
    attributes: t.field({ type: 'JSON', required: false, description: 'Free attributes, as a JSON object.' }),
  }),
});

/** Normalizes every member, collecting all invalid ones into one validation error on `field`. */
export function normalizeMembers(
  members: readonly Parameters<typeof normalizeContact>[0][],
  field = 'members',
): NormalizedContact[] {
  if (members.length === 0) throw ValidationError.of(field, 'give at least one member');
  if (members.length > MAX_MEMBERS_PER_CALL) {
    throw ValidationError.of(field, `at most ${MAX_MEMBERS_PER_CALL} members per call (got ${members.length})`);
  }
  const issues: FieldIssue[] = [];
  const contacts: NormalizedContact[] = [];
  members.forEach((member, index) => {
    const result = normalizeContact(member);
    if (result.ok) contacts.push(result.contact);
    else if (issues.length < 100) issues.push({ field: `${field}.${index}.${result.field}`, message: result.message });
  });
  if (issues.length > 0) throw new ValidationError(issues);
  return contacts;
}

/** The success type of a membership change: the audience and how many memberships changed. */
function membersChangeSuccess(name: string, countField: 'added' | 'removed') {
  return builder.objectRef<{ audienceId: string; changed: number }>(name).implement({
    description: `The members were ${countField}.`,
    fields: (t) => ({
      audience: t.prismaField({
        type: 'Audience',
        description: 'The audience as it is now.',
        resolve: (query, change) => db().audience.findUniqueOrThrow({ ...query, where: { id: change.audienceId } }),
      }),
      [countField]: t.exposeInt('changed', {
        description: `How many memberships were ${countField} (members already in that state are not counted).`,
      }),
    }),
  });
}

for (const [fieldName, verb, success] of [
  ['addAudienceMembers', 'add', membersChangeSuccess('AddAudienceMembersSuccess', 'added')],
  ['removeAudienceMembers', 'remove', membersChangeSuccess('RemoveAudienceMembersSuccess', 'removed')],
] as const) {
  builder.mutationField(fieldName, (t) =>
    t.field({
      type: success,
      description:
        verb === 'add'
          ? `Adds up to ${MAX_MEMBERS_PER_CALL} members, creating or updating their contacts. All or nothing.`
          : `Removes up to ${MAX_MEMBERS_PER_CALL} members, found the same way as when added. All or nothing.`,
      authScopes: { write: true },
      errors: { types: [ValidationError, NotFoundError], directResult: true },
      args: {
        audienceId: t.arg.id({ required: true, description: 'The audience to change.' }),
        members: t.arg({ type: [MemberInput], required: true, description: 'The members.' }),
      },
      resolve: async (_root, args, context) => {
        const workspaceId = context.viewer!.workspaceId;
        const contacts = normalizeMembers(args.members);
        const audienceId = parseGlobalId(args.audienceId, 'Audience', 'audienceId');
        const changed = await directTransaction(async (sql) => {
          const audience = await lockLiveAudience(sql, workspaceId, audienceId);
          if (!audience) throw new NotFoundError('audienceId', 'audience');
          if (audience.kind === 'SEGMENT') {
            throw ValidationError.of(
              'audienceId',
              'is a SEGMENT audience: its members follow its rule (change contacts with upsertContacts, the rule with updateAudience)',
            );
          }
          return verb === 'add'
            ? addMembers(sql, workspaceId, audienceId, contacts)
            : removeMembers(sql, workspaceId, audienceId, contacts.map((contact) => contact.key));
        });
        return { audienceId, changed };
      },
    }),
  );
}

const DeleteAudienceSuccess = builder.objectRef<{ deletedId: string }>('DeleteAudienceSuccess').implement({
  description: 'The audience was deleted: it leaves every list, and its syncs are deleted (platform audiences stay).',
  fields: (t) => ({ deletedId: t.exposeID('deletedId', { description: 'The global id of the deleted audience.' }) }),
});

builder.mutationField('deleteAudience', (t) =>
  t.field({
    type: DeleteAudienceSuccess,
    description:
      'Deletes an audience and its syncs (their queued runs are cancelled, their schedules removed). ' +
      'The platform audiences are left as they are.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError], directResult: true },
    args: { id: t.arg.id({ required: true, description: 'The audience to delete.' }) },
    resolve: async (_root, { id }, context) => {
      const audienceId = parseGlobalId(id, 'Audience', 'id');
      const deleted = await db().$transaction((tx) => deleteAudiences(tx, context.viewer!.workspaceId, { id: audienceId }));
      if (deleted.length === 0) throw new NotFoundError('id', 'audience');
      // The synced state of its syncs goes in the background, once the deletion is committed.
      await requestCleanup();
      return { deletedId: String(id) };
    },
  }),
);
