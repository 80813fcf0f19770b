import { graphql, useLazyLoadQuery, usePaginationFragment } from 'react-relay';
import { RunProgress } from './RunProgress';
import type { SyncHistoryQuery } from './__generated__/SyncHistoryQuery.graphql';
import type { SyncHistory_sync$key } from './__generated__/SyncHistory_sync.graphql';

/** A sync's page: its settings and its runs, newest first, 5 at a time. */
export function SyncHistory({ syncId }: { syncId: string }) {
  const { node } = useLazyLoadQuery<SyncHistoryQuery>(
    graphql`
      query SyncHistoryQuery($id: ID!) {
        node(id: $id) {
          ... on AudienceSync {
            name
            mode
            schedule {
              cron
              frequency
              timezone
              cadenceHours
            }
            audience {
              id
              name
            }
            ...SyncHistory_sync @alias(as: "history")
          }
        }
      }
    `,
    { id: syncId },
  );
  return node?.history ? <Runs sync={node.history} /> : <p>No such sync</p>;
}

function Runs({ sync }: { sync: SyncHistory_sync$key }) {
  const { data, hasNext, loadNext } = usePaginationFragment(
    graphql`
      fragment SyncHistory_sync on AudienceSync
      @refetchable(queryName: "SyncHistoryRunsPaginationQuery")
      @argumentDefinitions(count: { type: "Int", defaultValue: 5 }, cursor: { type: "String" }) {
        runs(first: $count, after: $cursor) @connection(key: "SyncHistory_runs") {
          edges {
            node {
              id
              trigger
              errorMessage
              ...RunProgress_run
            }
          }
        }
      }
    `,
    sync,
  );
  return (
    <ol>
      {data.runs.edges.map((edge) => (
        <li key={edge.node.id}>
          <RunProgress run={edge.node} />
          {edge.node.errorMessage}
        </li>
      ))}
      {hasNext ? <button onClick={() => loadNext(5)}>Older runs</button> : null}
    </ol>
  );
}
