/**
 * apps/coordinator/src has no import cycle, type-only imports included: the coordinator's parts
 * reach each other through context.ts (issue 15), and http.ts reads an interface of its own.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

/** Relative module specifiers of a source text: static, type-only, re-exports and dynamic. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;
  for (const match of text.matchAll(pattern)) found.push(match[1]!);
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

/** One cycle of the graph (its files in order, first repeated last), or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

function importGraph(files: string[]): Map<string, string[]> {
  return new Map(
    files.map((file) => [
      file,
      relativeImports(readFileSync(file, 'utf8')).map((spec) => resolve(dirname(file), spec)),
    ]),
  );
}

describe('apps/coordinator/src import graph', () => {
  it('finds a cycle where there is one, type-only imports counted', () => {
    expect(
      relativeImports(`import type { A } from './a.ts';\nexport { b } from '../b.ts';`),
    ).toEqual(['./a.ts', '../b.ts']);
    expect(relativeImports(`const m = await import('./m.ts'); import './side.ts';`)).toEqual([
      './m.ts',
      './side.ts',
    ]);
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(findCycle(graph)).toEqual(['a', 'b', 'c', 'a']);
    graph.set('c', []);
    expect(findCycle(graph)).toBeUndefined();
  });

  it('has none', () => {
    const files = sourceFiles(srcDir);
    expect(files.length).toBeGreaterThan(20);
    const cycle = findCycle(importGraph(files));
    expect(cycle?.map((f) => f.slice(srcDir.length + 1))).toBeUndefined();
  });
});
