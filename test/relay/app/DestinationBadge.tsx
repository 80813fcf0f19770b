import { graphql, useFragment } from 'react-relay';
import type { DestinationBadge_destination$key } from './__generated__/DestinationBadge_destination.graphql';

export function DestinationBadge({ destination }: { destination: DestinationBadge_destination$key }) {
  const data = useFragment(
    graphql`
      fragment DestinationBadge_destination on Destination {
        id
        name
        platform
        credentialsConfigured
      }
    `,
    destination,
  );
  return <span className={data.credentialsConfigured ? 'ok' : 'missing'}>{`${data.platform} · ${data.name}`}</span>;
}
