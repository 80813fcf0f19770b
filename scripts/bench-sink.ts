// The benchmark's destination, in a process of its own so that its memory is not counted as the
// sync's: takes Meta-shaped uploads as fast as it can read them. Prints its URL, then serves.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer(async (request, response) => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
  response.writeHead(200, { 'content-type': 'application/json' });
  if (request.url?.endsWith('/customaudiences')) return response.end(JSON.stringify({ id: '1' }));
  const received = body.payload?.data?.length ?? 0;
  response.end(
    JSON.stringify({ audience_id: '1', num_received: received, num_invalid_entries: 0, invalid_entry_samples: {} }),
  );
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
