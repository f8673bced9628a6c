import type { OpDef } from './op-def.js';

export const convGradOps: readonly OpDef[] = [];
