import { graphql, useFragment } from 'react-relay';
import type { RunProgress_run$key } from './__generated__/RunProgress_run.graphql';

export function RunProgress({ run }: { run: RunProgress_run$key }) {
  const data = useFragment(
    graphql`
      fragment RunProgress_run on SyncRun {
        id
        status
        phase
        progress
        membersAdded
        membersRemoved
        startedAt
        finishedAt
      }
    `,
    run,
  );
  return (
    <progress value={data.progress} title={`${data.status} ${data.phase}: +${data.membersAdded} −${data.membersRemoved}`} />
  );
}
