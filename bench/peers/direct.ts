/** No proxy at all: the load generator talks to the backend. The ceiling every ratio refers to. */
import { APP_HOST, type PeerFactory, type RunningPeer } from './peer';

export const directPeer: PeerFactory = {
  name: 'direct',
  needs: [],
  async unavailable() {
    return undefined;
  },
  async start(ctx): Promise<RunningPeer> {
    return {
      name: 'direct',
      baseUrl: `http://127.0.0.1:${ctx.backends.appPort}`,
      host: APP_HOST,
      async stop() {},
    };
  },
};
