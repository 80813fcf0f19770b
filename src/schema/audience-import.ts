import { readCsvHeader } from '../workflows/csv-import.js';
import { IMPORT_MEMBERS_TASK } from '../workflows/member-tasks.js';
import { encodeTaskPayload } from '../workflows/task-run.js';
import { db } from '../infra/db.js';
import { submitMemberTask } from '../jobs/tasks.js';
import { builder } from './builder.js';
import { NotFoundError, ValidationError } from './errors.js';
import { parseGlobalId } from './global-id.js';
import { TaskRef } from './task.js';

builder.mutationField('importAudienceMembers', (t) =>
  t.field({
    type: TaskRef,
    description:
      'Imports a CSV file (sent as a GraphQL multipart request) into a static audience, in the background. ' +
      'The header row names the columns: at least one identifier (email, phone, external_id, mobile_ad_id, or ' +
      'hashed_email, hashed_phone), optionally first_name, last_name, country, zip; other columns become ' +
      'attributes. UTF-8, comma-separated, quoted fields, CRLF or LF, with or without a BOM. Rows that cannot be ' +
      'used are counted and sampled in the task result; the others are added.',
    authScopes: { write: true },
    errors: {
      types: [ValidationError, NotFoundError],
      dataField: { name: 'task', description: 'The task importing the file.' },
    },
    args: {
      audienceId: t.arg.id({ required: true, description: 'The static audience to add the members to.' }),
      file: t.arg({
        type: 'File',
        required: true,
        description: 'The CSV file, at most the request body limit (MAX_REQUEST_BODY_BYTES).',
      }),
    },
    resolve: async (_root, args, context) => {
      const workspaceId = context.viewer!.workspaceId;
      const audienceId = parseGlobalId(args.audienceId, 'Audience', 'audienceId');
      const audience = await db().audience.findFirst({ where: { id: audienceId, workspaceId, deletedAt: null } });
      if (!audience) throw new NotFoundError('audienceId', 'audience');
      if (audience.kind !== 'STATIC') {
        throw ValidationError.of('audienceId', 'is a segment audience: its members follow its rule and cannot be imported');
      }
      // The body limit bounds the upload: yoga refuses a larger request (413) before it gets here.
      const bytes = new Uint8Array(await args.file.arrayBuffer());
      const header = readCsvHeader(bytes);
      if (!header.ok) throw ValidationError.of('file', header.message);
      return submitMemberTask(workspaceId, IMPORT_MEMBERS_TASK, encodeTaskPayload({ audienceId }, bytes));
    },
  }),
);
