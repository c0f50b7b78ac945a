// Edge coverage for JavaScript under libFuzzer (test/fuzz/js_driver.cpp): a target's module
// graph is bundled into one ES module (esbuild), and every branch point of that code gets an
// 8-bit counter in a Uint8Array libFuzzer watches: function entry, both arms of if (an empty
// else included), ?:, the right side of && || ??, loop bodies, switch cases and catch blocks.
// Counters count 1..255 and wrap to 1, never back to 0 (0 means "not reached").
import { parse } from 'acorn';
import { simple } from 'acorn-walk';
import { build } from 'esbuild';
import type { Node } from 'acorn';

export const COUNTERS = '__gpt2FuzzCounters';

interface Edit { at: number; text: string; order: number }

/** The source with counters inserted, and how many counters it uses. */
export function instrument(source: string): { code: string; counters: number } {
  const edits: Edit[] = [];
  let next = 0;
  const hit = (): string => { const id = next++; return `${COUNTERS}[${id}] = (${COUNTERS}[${id}] % 255) + 1`; };
  const insert = (at: number, text: string) => edits.push({ at, text, order: edits.length });
  // an expression: (hit, expr)
  const wrapExpression = (n: Node) => { insert(n.start, `(${hit()}, `); insert(n.end, ')'); };
  // a statement: { hit; stmt }, or the hit first inside a block
  const wrapStatement = (n: Node) => {
    if (n.type === 'BlockStatement') insert(n.start + 1, ` ${hit()};`);
    else { insert(n.start, `{ ${hit()}; `); insert(n.end, ' }'); }
  };
  type Any = Node & Record<string, any>;
  const fn = (n: Any) => { if (n.body.type === 'BlockStatement') wrapStatement(n.body); else wrapExpression(n.body); };
  const ast = parse(source, { ecmaVersion: 'latest', sourceType: 'module' });
  simple(ast, {
    FunctionDeclaration: fn, FunctionExpression: fn, ArrowFunctionExpression: fn,
    IfStatement(n: Any) {
      wrapStatement(n.consequent);
      if (n.alternate) wrapStatement(n.alternate);
      else insert(n.end, ` else { ${hit()}; }`);
    },
    ConditionalExpression(n: Any) { wrapExpression(n.consequent); wrapExpression(n.alternate); },
    LogicalExpression(n: Any) { wrapExpression(n.right); },
    ForStatement(n: Any) { wrapStatement(n.body); },
    ForInStatement(n: Any) { wrapStatement(n.body); },
    ForOfStatement(n: Any) { wrapStatement(n.body); },
    WhileStatement(n: Any) { wrapStatement(n.body); },
    DoWhileStatement(n: Any) { wrapStatement(n.body); },
    SwitchCase(n: Any) { insert(n.consequent.length > 0 ? n.consequent[0].start : n.end, `${hit()}; `); },
    CatchClause(n: Any) { wrapStatement(n.body); },
  });
  // from the end, so that earlier positions stay valid; at one position, the later edit first
  edits.sort((a, b) => b.at - a.at || b.order - a.order);
  let code = source;
  for (const e of edits) code = code.slice(0, e.at) + e.text + code.slice(e.at);
  return { code, counters: Math.max(next, 1) };
}

/** The entry module and everything it imports, as one instrumented ES module's source. */
export async function instrumentedBundle(entry: string): Promise<{ code: string; counters: number }> {
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', target: 'node20', write: false, logLevel: 'error' });
  return instrument(out.outputFiles[0]!.text);
}
