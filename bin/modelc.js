#!/usr/bin/env node
// Launcher: the CLI is compiled to dist/ by `npm run build` (run by `prepare` on `npm ci`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
