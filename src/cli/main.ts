#!/usr/bin/env node
// Entry point of the `tollgate` command (package bin): runs the program on process streams and sets the exit code.
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
