import { builder } from './builder.js';

export interface IdentifierCount {
  type: string;
  count: number;
}

export const IdentifierCountRef = builder.objectRef<IdentifierCount>('IdentifierCount').implement({
  description: 'How many members a run sent with one type of identifier.',
  fields: (t) => ({
    type: t.exposeString('type', {
      description: "The identifier type, as the destination names it (Meta's EMAIL, PHONE, FN…).",
    }),
    count: t.exposeInt('count', { description: 'Members sent with an identifier of this type.' }),
  }),
});

/** The counts stored on a run (`{"EMAIL": 120}`), in type order. */
export function identifierCountList(stored: unknown): IdentifierCount[] {
  return Object.entries((stored ?? {}) as Record<string, number>)
    .map(([type, count]) => ({ type, count }))
    .sort((a, b) => a.type.localeCompare(b.type));
}
