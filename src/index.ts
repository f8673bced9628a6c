/**
 * modelc's public API: the same pieces the CLI uses.
 *
 *   import { compile, lowerFile, printGraph } from 'modelc';
 *   console.log(printGraph(lowerFile('examples/seed_mlp.nn').graph));   // the IR
 *   const { files } = await compile({ path: 'examples/seed_mlp.nn' });   // the module, in memory
 */
export { ModelcError, codes, type Diagnostic, type DiagnosticCode } from './diagnostics/diagnostic.js';
export { renderDiagnostic, renderDiagnostics } from './diagnostics/render.js';
export { SourceFile, type Span } from './diagnostics/source.js';

export type { Graph, InitSpec, InputDecl, Node, ParamDecl } from './ir/graph.js';
export { users, valueTypes } from './ir/graph.js';
export type { AttrValue, Attrs, Dim, TensorType } from './ir/types.js';
export { fromF32, tensorOf, zeros, type Tensor } from './ir/tensor.js';
export { interpret, interpretAll, type InterpretOptions } from './interp/interpret.js';
export { formatType } from './ir/types.js';
export { printGraph } from './ir/print.js';
export { parseGraph } from './ir/parse.js';
export { checkGraph, verifyGraph } from './ops/verify.js';
export type { OpSignature, OpSignatures } from './ir/verify.js';

export type { LayerDef, LowerContext, OpDef, Trait } from './ops/op-def.js';
export { getLayer, getOp, layers, ops, opsByName } from './ops/registry.js';

export { ModelSpec, schemaDocument, type LayerSpec, type ReuseSpec } from './frontend/spec.js';
export { parseDsl } from './frontend/dsl/parse.js';
export { printDsl } from './frontend/dsl/print.js';
export { parseJsonSpec, printJsonSpec } from './frontend/json.js';
export { compileFile, loadSpec, loadSpecAsync, lowerFile, lowerFileAsync, lowerLoaded, parseSpecSource, type LoadedSpec, type SpecFormat } from './frontend/load.js';
export { lowerSpec, type LayerInfo, type Lowered } from './frontend/lower.js';

export {
  computeFans,
  distributionOf,
  initializerNames,
  isInitializerName,
  materialize,
  sampleInit,
  type Distribution,
  type Fans,
  type InitializerName,
} from './ops/init.js';
export { fnv1a64, paramStream, Pcg32 } from './util/prng.js';
export {
  readSafetensors,
  writeSafetensors,
  type ReadTensor,
  type Safetensors,
  type SafetensorsDtype,
  type WriteTensor,
} from './formats/safetensors.js';
export { attachWeights, extractWeights, type AttachOptions, type Weight } from './weights/attach.js';

// Graph rewriting: the API the built-in passes are written with.
export { GraphEditor } from './rewrite/editor.js';
export { type OpAttrs, type OpName, type TypedNode } from './rewrite/ops.js';
export {
  hasSingleUser,
  hasWeightValues,
  matchAt,
  op,
  ownsItsWeights,
  where,
  withTrait,
  type Guard,
  type Match,
  type NodeTest,
  type Pattern,
  type RewriteOutcome,
  type Rule,
} from './rewrite/pattern.js';
export { editorPass, PassManager, rulePass, type Pass, type PassContext, type PassResult, type RunOptions } from './rewrite/pass.js';
export { ExplainLog, type ExplainEntry } from './rewrite/explain.js';
export { builtinPasses, createPassManager, defaultPipeline } from './passes/pipeline.js';
export { batchnormAffine, foldAfter, foldBefore, kernelLayout, type ChannelAffine, type KernelLayout } from './passes/fold-bn-math.js';
export { checkFoldExactly, compareOnRandomInputs, compareTensors, randomFeeds, type Difference } from './passes/equivalence.js';

// The whole pipeline, spec or graph -> passes -> generated files: what `modelc compile` and `modelc train` run.
export {
  compile,
  fileStem,
  parsePassList,
  pipelineFor,
  runPasses,
  withWeights,
  type CompiledFile,
  type CompileInput,
  type CompileOptions,
  type CompileResult,
  type PassRun,
  type WeightsInput,
} from './compile/index.js';
export type { TrainingProgram } from './autodiff/training.js';
export { OptimizerSpec, TrainingSpec, lossNames, type LossName } from './spec/training.js';

// Batch normalization added to a trained model without changing what it computes: what `modelc insert-bn` runs.
export {
  batchNormSites,
  channelStatistics,
  insertBatchNorm,
  withBatchNorm,
  type BatchNormSite,
  type ChannelStatistics,
  type InsertBatchNormOptions,
  type InsertBatchNormResult,
  type InsertedBatchNorm,
  type WeightedModel,
} from './compile/insert-bn.js';

// Code generation: standalone inference modules (what `compile()` assembles).
export {
  commentText,
  generateGoldenTest,
  generateInferenceModule,
  Namer,
  safeIdentifier,
  str,
  type GeneratedModule,
  type GoldenTestOptions,
  type GoldenVectors,
  type InferenceOptions,
} from './codegen/index.js';
export type { AliasCode, Emitted, EmitRequest, KernelCode, KernelPlan, RuntimeHelper } from './ops/emit.js';

// Interop: ONNX export (opset 17) and TF.js LayersModel import.
export { exportOnnx, type OnnxExportOptions } from './formats/onnx.js';
export { importableClasses, importTfjs, isTfjsModelJson, type TfjsImport } from './frontend/tfjs.js';
