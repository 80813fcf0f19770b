import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const VERSION = 'v1';

/** Encrypts destination credentials at rest with AES-256-GCM. */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('The secrets key must be 32 bytes');
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64')}`;
  }

  open(sealed: string): string {
    const [version, body] = sealed.split(':');
    if (version !== VERSION || !body) throw new Error('Unrecognised sealed secret');
    const bytes = Buffer.from(body, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
  }
}

let box: SecretBox | undefined;

/** The process's secret box, opened by the app factory. */
export function secretBox(): SecretBox {
  if (!box) throw new Error('The secrets key is not loaded: start the app first');
  return box;
}

/** The key from SECRETS_KEY, or else the one kept in `$DATA_DIR/secrets-key` (made on first use). */
export async function loadSecretBox(secretsKey: string | undefined, dataDir: string): Promise<SecretBox> {
  box = await readOrCreateKey(secretsKey, dataDir);
  return box;
}

async function readOrCreateKey(secretsKey: string | undefined, dataDir: string): Promise<SecretBox> {
  if (secretsKey) return new SecretBox(Buffer.from(secretsKey, 'base64'));
  const path = join(dataDir, 'secrets-key');
  try {
    return new SecretBox(Buffer.from((await readFile(path, 'utf8')).trim(), 'base64'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return new SecretBox(key);
}

/** A hint that lets a person recognise a secret without revealing it: its last 4 characters, and
 * nothing at all of a secret too short for 4 characters to be a small part of it. */
export function secretHint(secret: string): string {
  return secret.length >= 16 ? `…${secret.slice(-4)}` : '…';
}
