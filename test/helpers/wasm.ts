/**
 * The part of the WebAssembly API the kernel tests use (lib es2023 declares
 * none of it), typed once for every test that instantiates a module.
 */
export interface Wasm {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
}

export const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
