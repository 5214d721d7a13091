#!/usr/bin/env node
// A native-solc-compatible command-line front end for solc-js, so that forge can drive it with
// `--use .tools/bin/solc`. scripts/install-tools.sh installs this file as .tools/lib/solc-wrapper.cjs
// and .tools/bin/solc as a tiny launcher for it.
//
// Supported, the way forge (foundry-compilers) calls a local solc:
//   solc --version                     -> same two-line format as native solc
//   solc --standard-json [options...]  -> Standard JSON on stdin, Standard JSON on stdout
// Options: --base-path P, --include-path P (repeatable), --allow-paths P1,P2 (accepted; reads are
// limited to the base path, include paths, allowed paths and the working directory), everything
// else is rejected loudly rather than silently ignored.
'use strict';

const fs = require('fs');
const path = require('path');

const TOOLS = path.resolve(__dirname, '..');
const SOLC_MODULE = path.join(TOOLS, 'node_modules', 'solc');
const VERSION_CACHE = path.join(__dirname, 'solc-version.txt');

function die(msg, code = 1) {
  process.stderr.write(`solc (solc-js wrapper): ${msg}\n`);
  process.exit(code);
}

function loadSolc() {
  try {
    return require(SOLC_MODULE);
  } catch (e) {
    die(`cannot load solc-js from ${SOLC_MODULE}: ${e.message}\nrun \`make tools\``);
  }
}

// solc-js reports e.g. "0.8.37+commit.abcdef12.Emscripten.clang"; native Linux builds say
// "0.8.37+commit.abcdef12.Linux.g++", which is what version parsers expect to see.
function nativeVersionString() {
  try {
    const cached = fs.readFileSync(VERSION_CACHE, 'utf8').trim();
    if (cached) return cached;
  } catch (_) { /* fall through: compute it */ }
  const raw = loadSolc().version();
  const m = /^(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\+commit\.([0-9a-f]+)/.exec(raw);
  const v = m ? `${m[1]}+commit.${m[2]}.Linux.g++` : raw;
  try { fs.writeFileSync(VERSION_CACHE, v + '\n'); } catch (_) { /* read-only is fine */ }
  return v;
}

function readStdin() {
  const chunks = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function main(argv) {
  let standardJson = false;
  let basePath = null;
  const includePaths = [];
  const allowPaths = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) die(`option ${a} needs a value`);
      return argv[++i];
    };
    if (a === '--version' || a === '-v') {
      process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${nativeVersionString()}\n`);
      return 0;
    } else if (a === '--license') {
      process.stdout.write(loadSolc().license() + '\n');
      return 0;
    } else if (a === '--standard-json') {
      standardJson = true;
    } else if (a === '--base-path') {
      basePath = value();
    } else if (a.startsWith('--base-path=')) {
      basePath = a.slice('--base-path='.length);
    } else if (a === '--include-path') {
      includePaths.push(value());
    } else if (a.startsWith('--include-path=')) {
      includePaths.push(a.slice('--include-path='.length));
    } else if (a === '--allow-paths') {
      allowPaths.push(...value().split(',').filter(Boolean));
    } else if (a.startsWith('--allow-paths=')) {
      allowPaths.push(...a.slice('--allow-paths='.length).split(',').filter(Boolean));
    } else if (a === '-' ) {
      // "read from stdin" marker: standard JSON always reads stdin here.
    } else {
      die(`unsupported argument ${JSON.stringify(a)} (only --version and --standard-json mode are supported)`, 2);
    }
  }
  if (!standardJson) die('only --standard-json mode is supported (and --version)', 2);

  const input = readStdin();
  const roots = [basePath, ...includePaths, ...allowPaths, process.cwd()]
    .filter(Boolean)
    .map((p) => path.resolve(p));
  // Sources normally arrive inline ("content"); this callback covers "urls"/unresolved imports.
  const findImports = (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : [basePath, ...includePaths, process.cwd()].filter(Boolean).map((r) => path.resolve(r, importPath));
    for (const c of candidates) {
      const resolved = path.resolve(c);
      if (!roots.some((r) => resolved === r || resolved.startsWith(r + path.sep))) continue;
      try {
        return { contents: fs.readFileSync(resolved, 'utf8') };
      } catch (_) { /* try next */ }
    }
    return { error: `File not found: ${importPath}` };
  };
  const output = loadSolc().compile(input, { import: findImports });
  process.stdout.write(output);
  process.stdout.write('\n');
  return 0;
}

process.exitCode = main(process.argv.slice(2));
