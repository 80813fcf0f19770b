import { graphql, usePaginationFragment } from 'react-relay';
import { SyncCard } from './SyncCard';
import type { AudienceRow_audience$key } from './__generated__/AudienceRow_audience.graphql';

/** One audience with its syncs, paginated on its own (a `node` refetch by the audience's id). */
export function AudienceRow({ audience }: { audience: AudienceRow_audience$key }) {
  const { data, hasNext, loadNext } = usePaginationFragment(
    graphql`
      fragment AudienceRow_audience on Audience
      @refetchable(queryName: "AudienceRowSyncsPaginationQuery")
      @argumentDefinitions(count: { type: "Int", defaultValue: 10 }, cursor: { type: "String" }) {
        id
        name
        kind
        memberCount
        syncs(first: $count, after: $cursor) @connection(key: "AudienceRow_syncs") {
          edges {
            node {
              id
              ...SyncCard_sync
            }
          }
        }
      }
    `,
    audience,
  );
  return (
    <section>
      <h2>{`${data.name} (${data.memberCount})`}</h2>
      <ul>
        {data.syncs.edges.map((edge) => (
          <SyncCard key={edge.node.id} sync={edge.node} />
        ))}
      </ul>
      {hasNext ? <button onClick={() => loadNext(10)}>More syncs</button> : null}
    </section>
  );
}
