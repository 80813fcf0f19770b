/**
 * @generated SignedSource<<c6984e267b2b1df102161a0eeb2f0b50>>
 * @lightSyntaxTransform
 */

/* tslint:disable */
/* eslint-disable */
// @ts-nocheck

import { ReaderFragment } from 'relay-runtime';
export type SyncRunStatus = "CANCELLED" | "FAILED" | "QUEUED" | "RUNNING" | "SUCCEEDED" | "%future added value";
import { FragmentRefs } from "relay-runtime";
export type RunProgress_run$data = {
  readonly finishedAt: any | null | undefined;
  readonly id: string;
  readonly membersAdded: any;
  readonly membersRemoved: any;
  readonly phase: string;
  readonly progress: number;
  readonly startedAt: any | null | undefined;
  readonly status: SyncRunStatus;
  readonly " $fragmentType": "RunProgress_run";
};
export type RunProgress_run$key = {
  readonly " $data"?: RunProgress_run$data;
  readonly " $fragmentSpreads": FragmentRefs<"RunProgress_run">;
};

const node: ReaderFragment = {
  "argumentDefinitions": [],
  "kind": "Fragment",
  "metadata": null,
  "name": "RunProgress_run",
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
      "name": "status",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "phase",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "progress",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "membersAdded",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "membersRemoved",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "startedAt",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "finishedAt",
      "storageKey": null
    }
  ],
  "type": "SyncRun",
  "abstractKey": null
};

(node as any).hash = "105c9285292e800f7aed3fcf60bdef46";

export default node;
