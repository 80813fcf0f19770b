import { afterAll, afterEach, beforeAll } from 'vitest';
import type { FakeGoogle } from '../fakes/google-server.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { startFakeGoogleWithList } from './google.js';
import { META_TOKEN, metaSyncScenario } from './scenario.js';

/**
 * Gives a test file its gateway, started before its tests and stopped after them. The fake
 * platform servers a test opens through the suite close when it ends; with `reset`, the data goes too.
 */
export function useGatewaySuite(options: { reset?: boolean; settings?: Record<string, string> } = {}) {
  let gateway: TestGateway | undefined;
  const fakes: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    gateway = await startTestGateway(options.settings);
  });
  afterEach(async () => {
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
    if (options.reset) await gateway!.reset();
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  const suite = {
    get gateway(): TestGateway {
      if (!gateway) throw new Error('The gateway starts in beforeAll: use it inside tests');
      return gateway;
    },
    /** Closes a fake platform server when the test ends; returns it. */
    closeAfterTest<Fake extends { close(): Promise<void> }>(fake: Fake): Fake {
      fakes.push(fake);
      return fake;
    },
    async fakeMeta(): Promise<FakeMeta> {
      return suite.closeAfterTest(await startFakeMeta({ accessToken: META_TOKEN }));
    },
    async fakeGoogle(): Promise<FakeGoogle> {
      return suite.closeAfterTest(await startFakeGoogleWithList());
    },
    async metaSyncScenario(emails: string[], mode?: 'MIRROR' | 'ADD') {
      const scenario = await metaSyncScenario(suite.gateway, emails, mode);
      suite.closeAfterTest(scenario.fake);
      return scenario;
    },
  };
  return suite;
}
