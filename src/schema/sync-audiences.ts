import { SYNC_AUDIENCES_TASK } from '../workflows/member-tasks.js';
import { MAX_SYNC_MEMBERS, validateSyncAudiences } from '../workflows/sync-audiences.js';
import { encodeTaskPayload } from '../workflows/task-run.js';
import { submitMemberTask } from '../jobs/tasks.js';
import { ConsentBasisEnum } from './audience.js';
import { builder } from './builder.js';
import { ValidationError } from './errors.js';
import { TaskRef } from './task.js';

const UidTypeEnum = builder.enumType('SyncAudiencesUidType', {
  description: 'Kinds of user id a member may carry besides its hashed email and phone.',
  values: { MOBILE_AD_ID: { description: 'A mobile advertising id (IDFA or GAID), a UUID.' } } as const,
});

const UidInput = builder.inputType('SyncAudiencesUidInput', {
  description: 'A user id of a member.',
  fields: (t) => ({
    type: t.field({ type: UidTypeEnum, required: true, description: 'What kind of id `value` is.' }),
    value: t.string({ required: true, description: 'The id.' }),
  }),
});

const MemberInput = builder.inputType('SyncAudiencesMemberInput', {
  description:
    'A member to add. Send hashed identifiers, never raw ones. The contact is found (or created) by `externalId` ' +
    'and updated with the identifiers given.',
  fields: (t) => ({
    externalId: t.string({ required: true, description: 'Your own id for the person, 1–255 characters.' }),
    hashedEmail: t.string({
      required: false,
      description: 'SHA-256 of the trimmed, lowercased email: 64 lowercase hexadecimal characters.',
    }),
    hashedPhone: t.string({
      required: false,
      description: 'SHA-256 of the E.164 phone number (with its `+`): 64 lowercase hexadecimal characters.',
    }),
    uids: t.field({ type: [UidInput], required: false, description: 'Other ids: at most one MOBILE_AD_ID.' }),
  }),
});

const AudienceInput = builder.inputType('SyncAudiencesAudienceInput', {
  description: 'One audience to create or update (members added, then removed), or to delete.',
  fields: (t) => ({
    audienceId: t.string({
      required: true,
      description: 'Your own id for the audience, 1–255 characters (`Audience.externalId`); unique in the request.',
    }),
    name: t.string({ required: false, description: 'Display name (max 255); the audienceId when a new audience has none.' }),
    consentBasis: t.field({ type: ConsentBasisEnum, required: false, description: 'The GDPR lawful basis.' }),
    add: t.field({ type: [MemberInput], required: false, description: 'Members to add (or update).' }),
    remove: t.stringList({ required: false, description: 'The externalIds of members to remove.' }),
    delete: t.boolean({
      required: false,
      description: 'Delete the audience and its syncs (as `deleteAudience` does). Cannot go with `add`.',
    }),
  }),
});

const SyncAudiencesInput = builder.inputType('SyncAudiencesInput', {
  description: `Audiences and member changes to apply, ${MAX_SYNC_MEMBERS.toLocaleString('en')} members (adds and removes) at most.`,
  fields: (t) => ({
    audiences: t.field({ type: [AudienceInput], required: true, description: 'At least one audience.' }),
    deleteMissing: t.boolean({
      required: false,
      description:
        'Also delete the audiences managed through syncAudiences (those with an externalId) that this request does ' +
        'not name. Audiences created otherwise (createAudience, imports) are never touched.',
    }),
    notifyUrl: t.string({
      required: false,
      description:
        'Called (POST, JSON: the task id, kind, status, result and error) when the task ends. Same rules as webhook URLs: ' +
        'https, no private addresses.',
    }),
    notifySecret: t.string({
      required: false,
      description:
        'Signs the notifyUrl call as webhook destinations sign theirs: `x-timestamp` and `x-signature: sha256=<hex ' +
        'HMAC-SHA256 of "<timestamp>.<body>">`. 32–1024 printable characters; stored encrypted, never shown again.',
    }),
  }),
});

builder.mutationField('syncAudiences', (t) =>
  t.field({
    type: TaskRef,
    description:
      'Syncs audiences you identify by your own ids: creates or updates them, adds and removes members, deletes ' +
      'audiences. Validated whole (any problem rejects all, nothing changes), then applied in the background: ' +
      'follow the returned task (`taskUpdated`, `task`); its result lists, per audience, what changed.',
    authScopes: { write: true },
    errors: { types: [ValidationError], dataField: { name: 'task', description: 'The task applying the request.' } },
    args: { input: t.arg({ type: SyncAudiencesInput, required: true, description: 'The request.' }) },
    resolve: async (_root, { input }, context) => {
      const validated = validateSyncAudiences(input);
      if (!validated.ok) throw new ValidationError(validated.issues);
      return submitMemberTask(context.viewer!.workspaceId, SYNC_AUDIENCES_TASK, encodeTaskPayload(validated.request), {
        notifyUrl: input.notifyUrl,
        notifySecret: input.notifySecret,
        total: validated.members,
      });
    },
  }),
);
