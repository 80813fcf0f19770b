import { graphql, useFragment } from 'react-relay';
import { DestinationBadge } from './DestinationBadge';
import { RunProgress } from './RunProgress';
import type { SyncCard_sync$key } from './__generated__/SyncCard_sync.graphql';

export function SyncCard({ sync }: { sync: SyncCard_sync$key }) {
  const data = useFragment(
    graphql`
      fragment SyncCard_sync on AudienceSync {
        id
        name
        status
        statusError
        lastSyncedAt
        lastSyncedCount
        destination {
          ...DestinationBadge_destination
        }
        lastRun {
          ...RunProgress_run
        }
      }
    `,
    sync,
  );
  return (
    <li>
      <h3>{data.name}</h3>
      <DestinationBadge destination={data.destination} />
      {data.lastRun ? <RunProgress run={data.lastRun} /> : null}
      {data.statusError ? <p role="alert">{data.statusError}</p> : null}
    </li>
  );
}
