/** What the gateway tells its GraphiQL page, in the page's `#graphiql-options` JSON block. */
export interface GraphiQLPageOptions {
  /** The GraphQL endpoint, on the page's own origin. */
  endpoint: string;
  /** The tabs a first visit opens with (persisted tab state wins afterwards). */
  defaultTabs: { query: string }[];
}

export const PAGE_OPTIONS_ELEMENT_ID = 'graphiql-options';
