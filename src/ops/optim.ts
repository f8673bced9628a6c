import type { OpDef } from './op-def.js';

export const optimizerOps: readonly OpDef[] = [];
