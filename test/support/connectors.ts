import { createHash } from 'node:crypto';
import { beforeAll, expect } from 'vitest';
import { DestinationError, type ContactIdentity, type UploadSession } from '../../src/destinations/destination.js';
import { setAddressPolicy } from '../../src/infra/address-policy.js';

// Factories and checks shared by the destination connector tests.

/** The platform fakes listen on loopback: a connector test runs under the address policy an operator sets
 * for that (ALLOW_PRIVATE_URLS and ALLOW_CUSTOM_PLATFORM_URLS). */
export function useLoopbackFakes(): void {
  beforeAll(() => setAddressPolicy({ allowPrivate: true, allowCustomPlatformUrls: true }));
}

/** SHA-256 hex, computed here rather than by the code under test. */
export const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

/** A contact as the sync engine streams it: every identifier null unless given. */
export function contact(fields: Partial<Omit<ContactIdentity, 'id'>>): ContactIdentity {
  return {
    id: 1n,
    email: null,
    phone: null,
    firstName: null,
    lastName: null,
    country: null,
    zip: null,
    externalId: null,
    mobileAdId: null,
    ...fields,
  };
}

/** A one-batch upload, unless the overrides say otherwise. */
export function uploadSession(overrides: Partial<UploadSession> = {}): UploadSession {
  return { id: 'run-1:adds', batchSeq: 1, lastBatch: true, estimatedTotal: 1, ...overrides };
}

/** The DestinationError a call fails with; fails the test when the call succeeds or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<DestinationError> {
  const error = await promise.then(
    () => expect.fail('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DestinationError);
  return error as DestinationError;
}
