import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Answers 400 to a GraphQL multipart request whose `operations` is not an object (e.g. `null`) or
 * whose `map` is not an object of lists of paths: yoga's parser fails on those with a TypeError,
 * which would be a 500. Its own refusals (missing or non-JSON fields, body too large) pass through.
 */
export function useMultipartGuard(): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (!requestParser || !/^multipart\/form-data/i.test(request.headers.get('content-type') ?? '')) return;
      setRequestParser(async (incoming) => {
        try {
          return await requestParser(incoming);
        } catch (error) {
          if (error instanceof GraphQLError || (error instanceof Error && error.name === 'AbortError')) throw error;
          throw new GraphQLError(
            'Malformed multipart request: "operations" must be a JSON object and "map" a JSON object of lists of variable paths',
            { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } },
          );
        }
      });
    },
  };
}
