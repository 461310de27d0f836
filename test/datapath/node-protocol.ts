// What a test hands the node-datapath process (fixtures/node-datapath.ts) and what it answers.
import type { Datapath } from '../../datapath/types.js';

type Call<M extends keyof Datapath> = Datapath[M] extends (...args: infer A) => unknown ? { method: M; args: A } : never;

export type NodeRequest =
  | Call<'setupNode'>
  | Call<'syncNodeRoutes'>
  | Call<'upsertEndpoint'>
  | Call<'syncIPCache'>
  | Call<'syncPolicy'>
  | { method: 'drainEvents'; args: [] }
  | { method: 'metrics'; args: [] };

export type NodeAnswer = { id: number; result: unknown } | { id: number; error: string };

export const NODE_READY_MARK = 'node-datapath ready';
export const NODE_ANSWER_MARK = 'node-datapath answer: ';
