import { createHash } from 'node:crypto';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** SHA-256 of the UTF-8 bytes of `value`, as lowercase hex — the form every ad platform expects. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** True for a lowercase hex SHA-256 digest (64 characters). */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}
