/**
 * The last step of codegen: prettier for layout, and TypeScript's own
 * transpiler (the one ts-morph bundles) for the plain-ESM `.js` twin.
 * Both are deterministic: the same text in gives the same bytes out.
 */
import { format } from 'prettier';
import { ts } from 'ts-morph';

const style = { printWidth: 110, trailingComma: 'all', singleQuote: false } as const;

/**
 * Babel's TypeScript parser: the same printed output as the `typescript`
 * parser on generated modules (every example's module, trainer and test byte
 * for byte) in half the time (1 s instead of 2 s for a DenseNet121). The file
 * name says the text is not TSX, sparing a JSX-sniffing regex over the whole text
 * and a second parse.
 */
export function formatTypeScript(text: string): Promise<string> {
  return format(text, { ...style, parser: 'babel-ts', filepath: 'module.ts' });
}

/** Types stripped, comments kept, ES2022 modules. */
export function formatJavaScript(typescript: string): Promise<string> {
  const { outputText } = ts.transpileModule(typescript, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false },
  });
  return format(outputText, { ...style, parser: 'babel' });
}

/**
 * A placeholder for a large literal (the embedded weights) that the text
 * does not otherwise contain, so it can be swapped in after formatting
 * without prettier having to read megabytes of base64.
 */
export function placeholderFor(text: string, stem: string): string {
  let k = 0;
  while (text.includes(`${stem}${k}`)) k++;
  return `${stem}${k}`;
}

/** `text` with the one occurrence of `placeholder` replaced. */
export function fill(text: string, placeholder: string, value: string): string {
  const at = text.indexOf(placeholder);
  if (at < 0 || text.indexOf(placeholder, at + 1) >= 0) throw new Error(`placeholder ${placeholder} must occur exactly once`);
  return text.slice(0, at) + value + text.slice(at + placeholder.length);
}

/**
 * Base64 characters per string literal of embedded weights. V8 compiles one
 * long literal in superlinear time (a VGG16's 200 MB: 17 s of CPU to import
 * the module); the same data as 16 MiB literals joined at load takes 1.3 s.
 */
export const LITERAL_PIECE = 1 << 24;

/** Base64 characters of `floats` float32 values. */
export function base64Length(floats: number): number {
  return 4 * Math.ceil((4 * floats) / 3);
}

/**
 * The expression that holds `chars` characters of embedded base64 around
 * `placeholder` (see dataText): one string literal when they fit in one
 * piece, else an array of literals joined at load.
 */
export function dataExpression(placeholder: string, chars: number): string {
  return chars <= LITERAL_PIECE ? `"${placeholder}"` : `["${placeholder}"].join("")`;
}

/** What replaces the placeholder of dataExpression: the data, cut into pieces (one per line) when it is long. */
export function dataText(data: string): string {
  if (data.length <= LITERAL_PIECE) return data;
  const pieces: string[] = [];
  for (let at = 0; at < data.length; at += LITERAL_PIECE) pieces.push(data.slice(at, at + LITERAL_PIECE));
  return pieces.join('",\n  "');
}
