#!/usr/bin/env node
// Entry point of the `tollgate` command (package bin): runs the program on process streams and sets the exit code.
import { runCli } from './program.js';

// A reader that closed the pipe (`tollgate report --all | head -1`) makes the next write fail
// with EPIPE; without a listener that is an unhandled 'error' event and a stack trace.
// The report stops at its next write (writeReport sees the stream closed) and the command exits quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
