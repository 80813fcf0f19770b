import { audienceDefinition, countSplitGroupMembers } from '../audiences/audience-members.js';
import { SPLIT_BUCKETS, storedSplitGroups, type SplitGroup } from '../audiences/split-groups.js';
import { db } from '../infra/db.js';
import type { AudienceKind } from '../generated/prisma/enums.js';
import { builder } from './builder.js';

interface SplitGroupView extends SplitGroup {
  /** The member counts of every group of the audience, counted once, when first asked for. */
  counts: () => Promise<number[]>;
  index: number;
}

export const SplitGroupRef = builder.objectRef<SplitGroupView>('AudienceSplitGroup').implement({
  description:
    `A named share of an audience's members. Each member falls in one group, by a stable hash of the audience and ` +
    `the contact into ${SPLIT_BUCKETS} buckets: the same person stays in the same group while the percentages stand.`,
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The group name, unique in the audience; syncs name it in `splitGroup`.' }),
    percent: t.exposeFloat('percent', { description: 'Its share of the members, in percent (two decimals at most).' }),
    memberCount: t.int({
      description: 'How many members of the audience fall in this group now.',
      resolve: async (group) => (await group.counts())[group.index]!,
    }),
  }),
});

export const SplitGroupInput = builder.inputType('SplitGroupInput', {
  description: 'A split group: a name and a share of the members.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Unique in the audience, 1–64 characters.' }),
    percent: t.float({
      required: true,
      description: 'More than 0, at most two decimals; the percentages of all groups add up to exactly 100.',
    }),
  }),
});

/** The audience's groups, their member counts computed in one query if asked for. */
export function splitGroupsWithCounts(audience: {
  id: string;
  workspaceId: string;
  kind: AudienceKind;
  segmentRule: unknown;
  splitGroups: unknown;
}): SplitGroupView[] {
  const groups = storedSplitGroups(audience.splitGroups);
  let counting: Promise<number[]> | undefined;
  const counts = () => (counting ??= countSplitGroupMembers(db(), audienceDefinition(audience), groups));
  return groups.map((group, index) => ({ ...group, index, counts }));
}
