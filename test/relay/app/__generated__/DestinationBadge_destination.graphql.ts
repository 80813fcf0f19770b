/**
 * @generated SignedSource<<8ac016cbcf08e0187bfaa6ef926f87fb>>
 * @lightSyntaxTransform
 */

/* tslint:disable */
/* eslint-disable */
// @ts-nocheck

import { ReaderFragment } from 'relay-runtime';
export type Platform = "GOOGLE" | "LINKEDIN" | "META" | "WEBHOOK" | "X" | "%future added value";
import { FragmentRefs } from "relay-runtime";
export type DestinationBadge_destination$data = {
  readonly credentialsConfigured: boolean;
  readonly id: string;
  readonly name: string;
  readonly platform: Platform;
  readonly " $fragmentType": "DestinationBadge_destination";
};
export type DestinationBadge_destination$key = {
  readonly " $data"?: DestinationBadge_destination$data;
  readonly " $fragmentSpreads": FragmentRefs<"DestinationBadge_destination">;
};

const node: ReaderFragment = {
  "argumentDefinitions": [],
  "kind": "Fragment",
  "metadata": null,
  "name": "DestinationBadge_destination",
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
      "name": "platform",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "credentialsConfigured",
      "storageKey": null
    }
  ],
  "type": "Destination",
  "abstractKey": null
};

(node as any).hash = "0d9c3ea00ce0b17f9517bbf0054905c2";

export default node;
