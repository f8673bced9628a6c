/**
 * The built-in passes and the default inference pipeline (`-O`), in the order
 * they run. Read top to bottom:
 *   1. remove what inference does not need (dropout, identities),
 *   2. merge duplicates,
 *   3. fold batchnorm into weights, then fuse activations into the producers,
 *   4. fold constants and drop what became dead.
 */
import { PassManager, type Pass } from '../rewrite/pass.js';
import { constFold } from './const-fold.js';
import { cse } from './cse.js';
import { dce } from './dce.js';
import { foldBn } from './fold-bn.js';
import { fuseActivation } from './fuse-activation.js';
import { removeDropout } from './remove-dropout.js';
import { removeIdentity } from './remove-identity.js';

export const builtinPasses: readonly Pass[] = [removeDropout, removeIdentity, cse, foldBn, fuseActivation, constFold, dce];

export const defaultPipeline: readonly string[] = ['remove-dropout', 'remove-identity', 'cse', 'fold-bn', 'fuse-activation', 'const-fold', 'dce'];

/** A pass manager with the built-in passes registered (add your own with `register`). */
export function createPassManager(extra: readonly Pass[] = []): PassManager {
  return new PassManager([...builtinPasses, ...extra]);
}
