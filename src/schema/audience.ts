import { z } from 'zod';
import { normalizeContact, type NormalizedContact } from '../audiences/contact-input.js';
import { addMembers, removeMembers } from '../audiences/membership.js';
import { db } from '../db.js';
import { builder } from './builder.js';
import { NotFoundError, ValidationError, parseInput, type FieldIssue } from './errors.js';
import { parseGlobalId } from './global-id.js';

/** Most members one add or remove call accepts. */
export const MAX_MEMBERS_PER_CALL = 100_000;

export const AudienceRef = builder.prismaNode('Audience', {
  description: 'A list of contacts to send to destinations.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '' }),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name.' }),
    description: t.exposeString('description', { nullable: true, description: 'What this audience is for.' }),
    memberCount: t.relationCount('members', { description: 'How many contacts the audience holds now.' }),
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
        where: { workspaceId: context.viewer!.workspaceId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      }),
  }),
);

const CreateAudienceInput = builder.inputType('CreateAudienceInput', {
  description: 'A new audience.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–255 characters.' }),
    description: t.string({ required: false, description: 'What the audience is for, up to 2,000 characters.' }),
  }),
});

const createAudienceSchema = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters'),
  description: z.string().trim().max(2000, 'must be at most 2,000 characters').nullish(),
});

builder.mutationField('createAudience', (t) =>
  t.field({
    type: AudienceRef,
    description: 'Creates an empty audience.',
    authScopes: { write: true },
    errors: { types: [ValidationError], dataField: { name: 'audience', description: 'The new audience.' } },
    args: { input: t.arg({ type: CreateAudienceInput, required: true, description: 'The audience.' }) },
    resolve: (_root, { input }, context) => {
      const { name, description } = parseInput(createAudienceSchema, input);
      return db().audience.create({ data: { workspaceId: context.viewer!.workspaceId, name, description } });
    },
  }),
);

const MemberInput = builder.inputType('AudienceMemberInput', {
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

/** Normalizes every member, collecting all invalid ones into one validation error. */
function normalizeMembers(members: readonly Parameters<typeof normalizeContact>[0][]): NormalizedContact[] {
  if (members.length === 0) throw ValidationError.of('members', 'give at least one member');
  if (members.length > MAX_MEMBERS_PER_CALL) {
    throw ValidationError.of('members', `at most ${MAX_MEMBERS_PER_CALL} members per call (got ${members.length})`);
  }
  const issues: FieldIssue[] = [];
  const contacts: NormalizedContact[] = [];
  members.forEach((member, index) => {
    const result = normalizeContact(member);
    if (result.ok) contacts.push(result.contact);
    else if (issues.length < 100) issues.push({ field: `members.${index}.${result.field}`, message: result.message });
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
        const audience = await db().audience.findFirst({ where: { id: audienceId, workspaceId } });
        if (!audience) throw new NotFoundError('audienceId', 'audience');
        const changed = await db().$transaction(
          (tx) =>
            verb === 'add'
              ? addMembers(tx, workspaceId, audience.id, contacts)
              : removeMembers(tx, workspaceId, audience.id, contacts.map((contact) => contact.key)),
          { timeout: 120_000 },
        );
        return { audienceId: audience.id, changed };
      },
    }),
  );
}
