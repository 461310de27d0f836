// Mocha root hook plugin (registered in .mocharc.json): the shared control plane is stopped after
// all tests, whether they passed or not.
import { stopSharedControlPlane } from './index.js';

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await stopSharedControlPlane();
  },
};
