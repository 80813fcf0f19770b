import { Readable } from 'node:stream';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { CsvError, parse, type Info, type Options } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import { isSha256Hex } from '../destinations/hashing.js';
import { normalizeContact, type ContactInput, type NormalizedContact } from '../audiences/contact-input.js';
import { addMembers, lockLiveAudience } from '../audiences/membership.js';
import { TaskFailure, type Checkpoint, type TaskRun } from './task-run.js';

/** Rows upserted and added per committed step. */
const BATCH_ROWS = 5_000;
const MAX_INVALID_SAMPLES = 20;
const MAX_COLUMNS = 200;
/** The header row must fit in the file's first bytes (it is read before the file is accepted). */
const HEADER_WINDOW_BYTES = 64 * 1024;
const CHUNK_BYTES = 64 * 1024;

type ContactField = Exclude<keyof ContactInput, 'attributes'>;

/** Header names (lowercased, without spaces, dashes or underscores) and the contact field each feeds;
 * `hashed` columns must hold SHA-256 hex digests. Any other column becomes an attribute. */
const COLUMN_NAMES: Record<string, { field: ContactField; hashed: boolean }> = {};
const names = (field: ContactField, hashed: boolean, ...aliases: string[]) => {
  for (const alias of aliases) COLUMN_NAMES[alias] = { field, hashed };
};
names('email', false, 'email', 'emailaddress', 'mail');
names('email', true, 'hashedemail', 'emailsha256', 'sha256email', 'emailhash');
names('phone', false, 'phone', 'phonenumber', 'mobile', 'mobilephone', 'telephone');
names('phone', true, 'hashedphone', 'phonesha256', 'sha256phone', 'phonehash');
names('externalId', false, 'externalid', 'extid', 'customerid');
names('mobileAdId', false, 'mobileadid', 'madid', 'maid', 'idfa', 'gaid', 'adid');
names('firstName', false, 'firstname', 'givenname', 'fn');
names('lastName', false, 'lastname', 'familyname', 'surname', 'ln');
names('country', false, 'country', 'countrycode');
names('zip', false, 'zip', 'zipcode', 'postalcode', 'postcode');
const IDENTIFIER_FIELDS: ContactField[] = ['email', 'phone', 'externalId', 'mobileAdId'];

export type CsvColumn =
  | { name: string; field: ContactField; hashed: boolean }
  | { name: string; attribute: string };

/** Options shared by every read of an upload: a UTF-8 BOM, CRLF or LF line ends, quoted fields
 * (with doubled quotes inside), stray quotes inside unquoted fields and blank lines are all accepted. */
const PARSE_OPTIONS: Options = {
  bom: true,
  relax_quotes: true,
  relax_column_count: true,
  skip_empty_lines: true,
};

/** The columns of a CSV upload, from its header row; or what is wrong with the file. */
export function readCsvHeader(file: Uint8Array): { ok: true; columns: CsvColumn[] } | { ok: false; message: string } {
  const fail = (message: string) => ({ ok: false as const, message });
  if (!/\S/.test(Buffer.from(file.subarray(0, HEADER_WINDOW_BYTES)).toString('utf8').replace(/^\uFEFF/, ''))) {
    return fail('the file is empty: upload a CSV with a header row and at least one row');
  }
  let header: string[] | undefined;
  let headerBytes = 0;
  try {
    const [first] = parseSync(Buffer.from(file.subarray(0, HEADER_WINDOW_BYTES)), { ...PARSE_OPTIONS, to: 1, info: true }) as unknown as {
      record: string[];
      info: Info;
    }[];
    header = first?.record;
    headerBytes = first?.info.bytes ?? 0;
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
  }
  if (!header || headerBytes === 0 || (headerBytes >= HEADER_WINDOW_BYTES && file.length > HEADER_WINDOW_BYTES)) {
    return fail('the header row could not be read: it must be the first line, at most 64 KiB, with any quotes closed');
  }
  if (header.length > MAX_COLUMNS) return fail(`the file has ${header.length} columns; at most ${MAX_COLUMNS} are accepted`);
  const columns: CsvColumn[] = [];
  const byTarget = new Map<string, string>();
  for (const [index, raw] of header.entries()) {
    const name = raw.trim();
    if (!name) return fail(`column ${index + 1} of the header row has no name`);
    if (name.includes('\u0000')) return fail(`column ${index + 1} of the header row has a NUL character`);
    const known = COLUMN_NAMES[name.toLowerCase().replace(/[\s_-]+/g, '')];
    const target = known ? `field:${known.field}` : `attribute:${name}`;
    const previous = byTarget.get(target);
    if (previous !== undefined) {
      return fail(`the columns "${previous}" and "${name}" both give ${known ? `the ${known.field}` : 'one attribute'}: keep one`);
    }
    byTarget.set(target, name);
    columns.push(known ? { name, ...known } : { name, attribute: name });
  }
  if (!columns.some((column) => 'field' in column && IDENTIFIER_FIELDS.includes(column.field))) {
    return fail(
      'the header row names no identifier column: give at least one of email, phone, external_id or mobile_ad_id ' +
        '(or hashed_email, hashed_phone); first_name, last_name, country and zip may go with them, other columns become attributes',
    );
  }
  if (!/\S/.test(Buffer.from(file.subarray(headerBytes, headerBytes + HEADER_WINDOW_BYTES)).toString('utf8'))) {
    return fail('the file has a header row but no rows');
  }
  return { ok: true, columns };
}

export interface CsvImportResult {
  /** The audience's global id. */
  audienceId: string;
  /** Valid rows, upserted as contacts and put in the audience. */
  imported: number;
  /** Memberships that are new (rows already members, or repeated in the file, are not counted). */
  added: number;
  /** Rows left out because they are unusable. */
  invalid: number;
  /** Up to 20 of them: the line and the reason (never the value). */
  invalidSamples: { line: number; reason: string }[];
}

function* chunks(file: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < file.length; offset += CHUNK_BYTES) yield file.subarray(offset, offset + CHUNK_BYTES);
}

/** The rows of the file (not the header), with the line each starts on. Throws a TaskFailure if the
 * CSV cannot be read to its end. */
async function* csvRows(file: Buffer): AsyncGenerator<{ values: string[]; line: number }> {
  const parser = Readable.from(chunks(file)).pipe(parse({ ...PARSE_OPTIONS, info: true }));
  // csv-parse counts a CRLF inside quotes as two lines: lines are counted here, from the bytes.
  let scanned = 0;
  let lineBreaks = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      for (let at = file.indexOf(0x0a, scanned); at !== -1 && at < info.bytes; at = file.indexOf(0x0a, at + 1)) lineBreaks++;
      scanned = info.bytes;
      const inside = record.reduce((sum, value) => sum + value.split('\n').length - 1, 0);
      const endsWithBreak = file[info.bytes - 1] === 0x0a;
      const line = 1 + lineBreaks - (endsWithBreak ? 1 : 0) - inside;
      if (info.records > 1) yield { values: record, line };
    }
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    throw new TaskFailure(
      `The CSV could not be read past line ${error.lines ?? '?'}: a quoted field is not closed. ` +
        'Close the quote (a quote inside a quoted field is written twice) and upload the file again; nothing was imported.',
    );
  }
}

/** Counts the file's rows, reading it to its end before anything is imported. */
async function countRows(file: Buffer): Promise<number> {
  let rows = 0;
  for await (const _ of csvRows(file)) rows++;
  return rows;
}

/** A row as a contact, or why it is unusable (naming the column, never the value). */
function rowContact(columns: CsvColumn[], values: string[]): { contact: NormalizedContact } | { reason: string } {
  if (values.length !== columns.length) {
    return { reason: `has ${values.length} fields where the header has ${columns.length}` };
  }
  // PostgreSQL text cannot hold NUL: such a row would fail the whole task.
  if (values.some((value) => value.includes('\u0000'))) return { reason: 'has a NUL character, which cannot be stored' };
  const input: ContactInput = {};
  const attributes: Record<string, string> = {};
  for (const [index, column] of columns.entries()) {
    const value = values[index]!.trim();
    if (!value) continue;
    if ('attribute' in column) attributes[column.attribute] = value;
    else if (column.hashed && !isSha256Hex(value.toLowerCase())) {
      return { reason: `${column.name} is not a SHA-256 hex digest (64 hexadecimal characters)` };
    } else input[column.field] = column.hashed ? value.toLowerCase() : value;
  }
  const normalized = normalizeContact({ ...input, attributes });
  if (normalized.ok) return { contact: normalized.contact };
  if (!IDENTIFIER_FIELDS.some((field) => input[field])) return { reason: 'has no identifier (email, phone, external id or mobile ad id)' };
  const column = columns.find((candidate) => 'field' in candidate && candidate.field === normalized.field);
  return { reason: `${column?.name ?? normalized.field} ${normalized.message}` };
}

/**
 * Imports a CSV upload into a static audience: rows are read as a stream, normalized like every
 * member, and upserted and added set-based in steps of 5,000 rows, each committed with the task's
 * checkpoint (an interrupted import resumes after its last step). Unusable rows are counted.
 */
export async function importCsvMembers(run: TaskRun, parameters: unknown, file: Buffer): Promise<CsvImportResult> {
  const { audienceId } = parameters as { audienceId: string };
  const header = readCsvHeader(file);
  if (!header.ok) throw new TaskFailure(`The file cannot be imported: ${header.message}`);
  const total = await countRows(file);
  let checkpoint: Checkpoint<CsvImportResult> = {
    processed: run.processed,
    total,
    result: (run.result as CsvImportResult | null) ?? {
      audienceId: encodeGlobalID('Audience', audienceId),
      imported: 0,
      added: 0,
      invalid: 0,
      invalidSamples: [],
    },
  };

  let contacts: NormalizedContact[] = [];
  let invalid: CsvImportResult['invalidSamples'] = [];
  let rows = 0;
  const flush = async () => {
    const batch = { contacts, invalid, rows };
    contacts = [];
    invalid = [];
    rows = 0;
    checkpoint = await run.commitMembers(async (sql) => {
      const audience = await lockLiveAudience(sql, run.workspaceId, audienceId);
      if (!audience) throw new TaskFailure('The audience was deleted before the import finished; the rows imported before stay');
      if (audience.kind !== 'STATIC') throw new TaskFailure('The audience is a segment: its members follow its rule');
      const added = await addMembers(sql, run.workspaceId, audienceId, batch.contacts);
      const { result } = checkpoint;
      return {
        processed: checkpoint.processed + batch.rows,
        total,
        result: {
          ...result,
          imported: result.imported + batch.contacts.length,
          added: result.added + added,
          invalid: result.invalid + batch.invalid.length,
          invalidSamples: [...result.invalidSamples, ...batch.invalid].slice(0, MAX_INVALID_SAMPLES),
        },
      };
    });
  };

  let index = 0;
  for await (const { values, line } of csvRows(file)) {
    if (++index <= checkpoint.processed) continue;
    const row = rowContact(header.columns, values);
    if ('contact' in row) contacts.push(row.contact);
    else invalid.push({ line, reason: row.reason });
    if (++rows >= BATCH_ROWS) await flush();
  }
  if (rows > 0 || checkpoint.processed === 0) await flush();
  return checkpoint.result;
}
