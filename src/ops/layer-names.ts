/**
 * Every name a spec may give a layer's `type`: its record's `type`, its
 * `aliases`, and the Keras names of the classes it imports
 * (`kerasImport.classes`): each class name itself (`MaxPooling2D`) and the
 * name Keras gives such a layer (`max_pooling2d`), derived here with Keras's
 * own snake_case rule rather than listed twice. A layer record that claims a
 * Keras class is thereby typed by its Keras names with no further entry.
 *
 * `layerNameTable` resolves every name to one record; a name two records
 * claim goes to the first claim in precedence order (canonical types, then
 * explicit aliases, then Keras names) and is reported as a collision, which
 * test/frontend/keras-names.test.ts requires to be none.
 */
import { isImportable } from './keras-def.js';
import type { LayerDef } from './op-def.js';

/**
 * Keras's `to_snake_case` (keras/src/utils/naming.py), the prefix of its
 * automatic layer names: an uppercase letter that starts a capitalized word
 * and an uppercase letter after a lowercase one start a new word, so
 * `MaxPooling2D` -> `max_pooling2d`, `UpSampling2D` -> `up_sampling2d`,
 * `Conv2DTranspose` -> `conv2d_transpose`, `ReLU` -> `re_lu`.
 */
export function kerasSnakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** The Keras names of a layer record: its classes and their snake_case forms, in class order. */
export function kerasLayerNames(def: LayerDef): string[] {
  if (!isImportable(def.kerasImport)) return [];
  return [...new Set(def.kerasImport.classes.flatMap((c) => [kerasSnakeCase(c), c]))];
}

/** A name that two layer records claim: the record it resolves to and the one it would also name. */
export interface LayerNameCollision {
  readonly name: string;
  readonly kept: string;
  readonly dropped: string;
}

export interface LayerNameTable {
  readonly byName: ReadonlyMap<string, LayerDef>;
  readonly collisions: readonly LayerNameCollision[];
}

/** Every name of every layer record, resolved; first claim wins (types, then aliases, then Keras names). */
export function layerNameTable(layers: readonly LayerDef[]): LayerNameTable {
  const byName = new Map<string, LayerDef>();
  const collisions: LayerNameCollision[] = [];
  const claim = (name: string, def: LayerDef) => {
    const owner = byName.get(name);
    if (owner === undefined) byName.set(name, def);
    else if (owner !== def) collisions.push({ name, kept: owner.type, dropped: def.type });
  };
  for (const l of layers) claim(l.type, l);
  for (const l of layers) for (const a of l.aliases ?? []) claim(a, l);
  for (const l of layers) for (const k of kerasLayerNames(l)) claim(k, l);
  return { byName, collisions };
}
