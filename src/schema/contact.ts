import { upsertContacts } from '../audiences/membership.js';
import { db, directTransaction } from '../infra/db.js';
import { MAX_MEMBERS_PER_CALL, MemberInput, normalizeMembers } from './audience.js';
import { builder } from './builder.js';
import { ValidationError } from './errors.js';

const CONTACT_ID = /^[1-9][0-9]{0,17}$/;

builder.prismaNode('Contact', {
  description:
    'A person of the workspace, with normalized identifiers. STATIC audiences list contacts; SEGMENT audiences select them by rule.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, context) => ({
    id: CONTACT_ID.test(id) ? BigInt(id) : -1n,
    workspaceId: context.viewer?.workspaceId ?? '',
  }),
  fields: (t) => ({
    key: t.exposeString('key', {
      description: 'What identifies the contact in the workspace: ext:<externalId>, else email:, phone: or madid:.',
    }),
    email: t.exposeString('email', { nullable: true, description: 'Email address, lowercased (or its SHA-256).' }),
    phone: t.exposeString('phone', { nullable: true, description: 'Phone number in E.164 (or its SHA-256).' }),
    firstName: t.exposeString('firstName', { nullable: true, description: 'First name.' }),
    lastName: t.exposeString('lastName', { nullable: true, description: 'Last name.' }),
    country: t.exposeString('country', { nullable: true, description: 'ISO 3166 alpha-2 country code.' }),
    zip: t.exposeString('zip', { nullable: true, description: 'Postal code.' }),
    externalId: t.exposeString('externalId', { nullable: true, description: 'Your own id for this person.' }),
    mobileAdId: t.exposeString('mobileAdId', { nullable: true, description: 'Mobile advertising id, lowercased.' }),
    attributes: t.expose('attributes', { type: 'JSON', description: 'Free attributes; segment rules test them as attributes.<key>.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the contact was first stored.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the contact last changed.' }),
  }),
});

builder.queryField('contacts', (t) =>
  t.prismaConnection({
    type: 'Contact',
    cursor: 'id',
    description: 'The contacts of your workspace, oldest first.',
    authScopes: { workspace: true },
    resolve: (query, _root, _args, context) =>
      db().contact.findMany({ ...query, where: { workspaceId: context.viewer!.workspaceId }, orderBy: { id: 'asc' } }),
  }),
);

const UpsertContactsSuccess = builder.objectRef<{ created: number; updated: number }>('UpsertContactsSuccess').implement({
  description: 'The contacts were stored.',
  fields: (t) => ({
    created: t.exposeInt('created', { description: 'How many contacts are new.' }),
    updated: t.exposeInt('updated', { description: 'How many existing contacts changed (those sent with the values they have are not counted).' }),
  }),
});

builder.mutationField('upsertContacts', (t) =>
  t.field({
    type: UpsertContactsSuccess,
    description:
      `Creates or updates up to ${MAX_MEMBERS_PER_CALL} contacts without touching any audience's list ` +
      '(SEGMENT audiences pick them up by rule). Contacts are found and updated as in addAudienceMembers. All or nothing.',
    authScopes: { write: true },
    errors: { types: [ValidationError], directResult: true },
    args: { contacts: t.arg({ type: [MemberInput], required: true, description: 'The contacts.' }) },
    resolve: (_root, args, context) => {
      const contacts = normalizeMembers(args.contacts, 'contacts');
      return directTransaction((sql) => upsertContacts(sql, context.viewer!.workspaceId, contacts));
    },
  }),
);
