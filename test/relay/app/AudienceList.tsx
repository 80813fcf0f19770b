import { graphql, useLazyLoadQuery, usePaginationFragment } from 'react-relay';
import { AudienceRow } from './AudienceRow';
import type { AudienceListQuery } from './__generated__/AudienceListQuery.graphql';
import type { AudienceList_query$key } from './__generated__/AudienceList_query.graphql';

/** The dashboard's front page: every audience, 20 at a time, each with its first syncs. */
export function AudienceList() {
  const query = useLazyLoadQuery<AudienceListQuery>(
    graphql`
      query AudienceListQuery {
        ...AudienceList_query
      }
    `,
    {},
  );
  return <Audiences query={query} />;
}

function Audiences({ query }: { query: AudienceList_query$key }) {
  const { data, hasNext, loadNext, refetch } = usePaginationFragment(
    graphql`
      fragment AudienceList_query on Query
      @refetchable(queryName: "AudienceListPaginationQuery")
      @argumentDefinitions(count: { type: "Int", defaultValue: 20 }, cursor: { type: "String" }) {
        audiences(first: $count, after: $cursor) @connection(key: "AudienceList_audiences") {
          edges {
            node {
              id
              ...AudienceRow_audience
            }
          }
        }
      }
    `,
    query,
  );
  return (
    <main>
      <button onClick={() => refetch({}, { fetchPolicy: 'network-only' })}>Refresh</button>
      {data.audiences.edges.map((edge) => (
        <AudienceRow key={edge.node.id} audience={edge.node} />
      ))}
      {hasNext ? <button onClick={() => loadNext(20)}>More audiences</button> : null}
    </main>
  );
}
