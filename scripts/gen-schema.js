#!/usr/bin/env node
// Writes grammar/model.schema.json from the TypeBox definitions in src/frontend/spec.ts
// (via the build in dist/). test/frontend/schema.test.ts fails when the file is stale.
import { writeFileSync } from 'node:fs';
import { schemaDocument } from '../dist/frontend/spec.js';

const path = new URL('../grammar/model.schema.json', import.meta.url);
writeFileSync(path, JSON.stringify(schemaDocument(), null, 2) + '\n');
console.log('wrote grammar/model.schema.json');
