// Writes the SDL of the Pothos schema (src/schema) to schema/schema.graphql, sorted.
import { mkdir, writeFile } from 'node:fs/promises';
import { printSchema } from 'graphql';
import { schema } from '../src/schema/index.js';

await mkdir(new URL('../schema/', import.meta.url), { recursive: true });
await writeFile(new URL('../schema/schema.graphql', import.meta.url), `${printSchema(schema)}\n`);
