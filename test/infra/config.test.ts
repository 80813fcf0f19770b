import { expect, test } from 'vitest';
import { readFile } from 'node:fs/promises';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/infra/config.js';

test('defaults: port 4000, embedded database in ./.data, both roles', () => {
  const config = loadConfig({});
  expect(config).toMatchObject({ PORT: 4000, DATA_DIR: './.data', ROLES: ['gateway', 'worker'] });
  expect(config.DATABASE_URL).toBeUndefined();
  expect(config.MONGODB_URL).toBeUndefined();
});

test.each([
  ['PORT', '70000'],
  ['DATABASE_URL', 'mysql://localhost/db'],
  ['MONGODB_URL', 'postgresql://localhost/db'],
  ['REDIS_URL', 'not a url'],
  ['SECRETS_KEY', 'c2hvcnQ='],
  ['ROLES', 'gateway,scheduler'],
  ['MAX_QUERY_DEPTH', '0'],
  ['MAX_REQUEST_BODY_BYTES', 'lots'],
  ['RATE_LIMIT_POINTS', '-1'],
  ['INTROSPECTION', 'no'],
  ['CONSOLE', 'off'],
  ['ADMIN_TOKEN', 'shorter-than-32-characters'],
])('an invalid %s is refused with its name in the message', (name, value) => {
  expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}`));
});

test('empty values count as unset', () => {
  const config = loadConfig({ DATABASE_URL: '', PORT: '' });
  expect(config.PORT).toBe(4000);
  expect(config.DATABASE_URL).toBeUndefined();
});

test('.env.example lists every variable the app reads, and nothing else', async () => {
  const example = await readFile(new URL('../../.env.example', import.meta.url), 'utf8');
  const listed = [...example.matchAll(/^#? ?([A-Z][A-Z_]+)=/gm)].map((match) => match[1]);
  expect(listed.sort()).toEqual([...CONFIG_VARIABLES].sort());
  expect(() => loadConfig(Object.fromEntries(example.split('\n').filter((line) => /^[A-Z]/.test(line)).map((line) => line.split('=') as [string, string])))).not.toThrow();
});
