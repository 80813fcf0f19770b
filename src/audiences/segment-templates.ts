import type { SegmentRule } from './segment-rule.js';

/** Ready-made rules a segment audience can start from (`segmentTemplate` on createAudience). */
export const SEGMENT_TEMPLATES = {
  WITH_EMAIL: {
    name: 'Contacts with an email',
    description: 'Every contact that has an email address.',
    rule: { field: 'email', operator: 'EXISTS' },
  },
  WITH_PHONE: {
    name: 'Contacts with a phone',
    description: 'Every contact that has a phone number.',
    rule: { field: 'phone', operator: 'EXISTS' },
  },
  WITH_MOBILE_AD_ID: {
    name: 'Contacts with a mobile ad id',
    description: 'Every contact that has a mobile advertising id (IDFA or GAID).',
    rule: { field: 'mobileAdId', operator: 'EXISTS' },
  },
  REACHABLE: {
    name: 'Reachable contacts',
    description: 'Every contact with an email, a phone or a mobile ad id.',
    rule: {
      or: [
        { field: 'email', operator: 'EXISTS' },
        { field: 'phone', operator: 'EXISTS' },
        { field: 'mobileAdId', operator: 'EXISTS' },
      ],
    },
  },
  NEW_LAST_30_DAYS: {
    name: 'New in the last 30 days',
    description: 'Contacts created in the last 30 days.',
    rule: { field: 'createdAt', operator: 'WITHIN_LAST_DAYS', value: 30 },
  },
  UPDATED_LAST_7_DAYS: {
    name: 'Updated in the last 7 days',
    description: 'Contacts created or changed in the last 7 days.',
    rule: { field: 'updatedAt', operator: 'WITHIN_LAST_DAYS', value: 7 },
  },
} as const satisfies Record<string, { name: string; description: string; rule: SegmentRule }>;

export type SegmentTemplateKey = keyof typeof SEGMENT_TEMPLATES;
export const SEGMENT_TEMPLATE_KEYS = Object.keys(SEGMENT_TEMPLATES) as SegmentTemplateKey[];
