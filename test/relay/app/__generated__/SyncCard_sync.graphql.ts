/**
 * @generated SignedSource<<d9fc742ff1ba2c531fdc01e87ff7506e>>
 * @lightSyntaxTransform
 */

/* tslint:disable */
/* eslint-disable */
// @ts-nocheck

import { ReaderFragment } from 'relay-runtime';
export type SyncStatus = "ACTIVE" | "DRAFT" | "ERROR" | "PAUSED" | "%future added value";
import { FragmentRefs } from "relay-runtime";
export type SyncCard_sync$data = {
  readonly destination: {
    readonly " $fragmentSpreads": FragmentRefs<"DestinationBadge_destination">;
  };
  readonly id: string;
  readonly lastRun: {
    readonly " $fragmentSpreads": FragmentRefs<"RunProgress_run">;
  } | null | undefined;
  readonly lastSyncedAt: any | null | undefined;
  readonly lastSyncedCount: number | null | undefined;
  readonly name: string;
  readonly status: SyncStatus;
  readonly statusError: string | null | undefined;
  readonly " $fragmentType": "SyncCard_sync";
};
export type SyncCard_sync$key = {
  readonly " $data"?: SyncCard_sync$data;
  readonly " $fragmentSpreads": FragmentRefs<"SyncCard_sync">;
};

const node: ReaderFragment = {
  "argumentDefinitions": [],
  "kind": "Fragment",
  "metadata": null,
  "name": "SyncCard_sync",
  "selections": [
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "id",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "name",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "status",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "statusError",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "lastSyncedAt",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "lastSyncedCount",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "concreteType": "Destination",
      "kind": "LinkedField",
      "name": "destination",
      "plural": false,
      "selections": [
        {
          "args": null,
          "kind": "FragmentSpread",
          "name": "DestinationBadge_destination"
        }
      ],
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "concreteType": "SyncRun",
      "kind": "LinkedField",
      "name": "lastRun",
      "plural": false,
      "selections": [
        {
          "args": null,
          "kind": "FragmentSpread",
          "name": "RunProgress_run"
        }
      ],
      "storageKey": null
    }
  ],
  "type": "AudienceSync",
  "abstractKey": null
};

(node as any).hash = "30d4fefe35a6fc8d1718fab646a3649e";

export default node;
