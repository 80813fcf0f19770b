/**
 * @generated SignedSource<<4a1480b3871aadef40aa76dabc7e272e>>
 * @lightSyntaxTransform
 */

/* tslint:disable */
/* eslint-disable */
// @ts-nocheck

import { ReaderFragment } from 'relay-runtime';
export type SyncRunTrigger = "API" | "CREATE" | "MANUAL" | "PLATFORM_JOB" | "SCHEDULE" | "%future added value";
import { FragmentRefs } from "relay-runtime";
export type SyncHistory_sync$data = {
  readonly id: string;
  readonly runs: {
    readonly edges: ReadonlyArray<{
      readonly node: {
        readonly errorMessage: string | null | undefined;
        readonly id: string;
        readonly trigger: SyncRunTrigger;
        readonly " $fragmentSpreads": FragmentRefs<"RunProgress_run">;
      };
    }>;
  };
  readonly " $fragmentType": "SyncHistory_sync";
};
export type SyncHistory_sync$key = {
  readonly " $data"?: SyncHistory_sync$data;
  readonly " $fragmentSpreads": FragmentRefs<"SyncHistory_sync">;
};

import SyncHistoryRunsPaginationQuery_graphql from './SyncHistoryRunsPaginationQuery.graphql';

const node: ReaderFragment = (function(){
var v0 = [
  "runs"
],
v1 = {
  "alias": null,
  "args": null,
  "kind": "ScalarField",
  "name": "id",
  "storageKey": null
};
return {
  "argumentDefinitions": [
    {
      "defaultValue": 5,
      "kind": "LocalArgument",
      "name": "count"
    },
    {
      "defaultValue": null,
      "kind": "LocalArgument",
      "name": "cursor"
    }
  ],
  "kind": "Fragment",
  "metadata": {
    "connection": [
      {
        "count": "count",
        "cursor": "cursor",
        "direction": "forward",
        "path": (v0/*:: as any*/)
      }
    ],
    "refetch": {
      "connection": {
        "forward": {
          "count": "count",
          "cursor": "cursor"
        },
        "backward": null,
        "path": (v0/*:: as any*/)
      },
      "fragmentPathInResult": [
        "node"
      ],
      "operation": SyncHistoryRunsPaginationQuery_graphql,
      "identifierInfo": {
        "identifierField": "id",
        "identifierQueryVariableName": "id"
      }
    }
  },
  "name": "SyncHistory_sync",
  "selections": [
    {
      "alias": "runs",
      "args": null,
      "concreteType": "AudienceSyncRunsConnection",
      "kind": "LinkedField",
      "name": "__SyncHistory_runs_connection",
      "plural": false,
      "selections": [
        {
          "alias": null,
          "args": null,
          "concreteType": "AudienceSyncRunsConnectionEdge",
          "kind": "LinkedField",
          "name": "edges",
          "plural": true,
          "selections": [
            {
              "alias": null,
              "args": null,
              "concreteType": "SyncRun",
              "kind": "LinkedField",
              "name": "node",
              "plural": false,
              "selections": [
                (v1/*:: as any*/),
                {
                  "alias": null,
                  "args": null,
                  "kind": "ScalarField",
                  "name": "trigger",
                  "storageKey": null
                },
                {
                  "alias": null,
                  "args": null,
                  "kind": "ScalarField",
                  "name": "errorMessage",
                  "storageKey": null
                },
                {
                  "args": null,
                  "kind": "FragmentSpread",
                  "name": "RunProgress_run"
                },
                {
                  "alias": null,
                  "args": null,
                  "kind": "ScalarField",
                  "name": "__typename",
                  "storageKey": null
                }
              ],
              "storageKey": null
            },
            {
              "alias": null,
              "args": null,
              "kind": "ScalarField",
              "name": "cursor",
              "storageKey": null
            }
          ],
          "storageKey": null
        },
        {
          "alias": null,
          "args": null,
          "concreteType": "PageInfo",
          "kind": "LinkedField",
          "name": "pageInfo",
          "plural": false,
          "selections": [
            {
              "alias": null,
              "args": null,
              "kind": "ScalarField",
              "name": "endCursor",
              "storageKey": null
            },
            {
              "alias": null,
              "args": null,
              "kind": "ScalarField",
              "name": "hasNextPage",
              "storageKey": null
            }
          ],
          "storageKey": null
        }
      ],
      "storageKey": null
    },
    (v1/*:: as any*/)
  ],
  "type": "AudienceSync",
  "abstractKey": null
};
})();

(node as any).hash = "c83c5de00404fe5a3bf3a98e9528f7fb";

export default node;
