// Measures the functions of a TypeScript source with the compiler's own parser, for the
// function-length check (docs/architecture.md "Layers").
import ts from 'typescript';

/** One function-like node: its name as a reader would look it up, and its length in lines. */
export interface FunctionSpan {
  name: string;
  line: number;
  lines: number;
}

const ownName = (n: ts.Node): string | undefined => {
  const name = (n as { name?: ts.Node }).name;
  return name && (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isPrivateIdentifier(name)) ? name.text : undefined;
};

/**
 * The name a reader finds a function by: `f`, `Class.method`, `const f = () =>`, `{ key: () => }`;
 * a callback is named after what it is passed to (`app.post callback`). Nested functions carry
 * their enclosing function's name (`outer/inner`), so no name depends on a line number.
 */
function nameOf(node: ts.SignatureDeclaration, sf: ts.SourceFile, outer: string | undefined): string {
  const p = node.parent;
  let own: string;
  if (ts.isConstructorDeclaration(node)) own = `${ownName(p) ?? '<class>'}.constructor`;
  else if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) && ts.isClassLike(p)) own = `${ownName(p) ?? '<class>'}.${ownName(node) ?? '<computed>'}`;
  else if (ownName(node)) own = ownName(node)!;
  else if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p)) && ownName(p)) own = ownName(p)!;
  else if (ts.isPropertyDeclaration(p) && ownName(p)) own = `${ownName(p.parent) ?? '<class>'}.${ownName(p)}`;
  else if (ts.isCallExpression(p) && p.arguments.includes(node as unknown as ts.Expression)) own = `${p.expression.getText(sf)} callback`;
  else if (ts.isNewExpression(p) && p.arguments?.includes(node as unknown as ts.Expression)) own = `new ${p.expression.getText(sf)} callback`;
  else own = '<anonymous>';
  return outer ? `${outer}/${own}` : own;
}

/** Every function, method, accessor, constructor, function expression and arrow function with a body, outermost first. */
export function functionSpans(text: string, fileName = 'x.ts'): FunctionSpan[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, fileName.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const out: FunctionSpan[] = [];
  const visit = (node: ts.Node, outer: string | undefined) => {
    let inner = outer;
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      inner = nameOf(node, sf, outer);
      out.push({ name: inner, line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, (child) => visit(child, inner));
  };
  visit(sf, undefined);
  return out;
}
