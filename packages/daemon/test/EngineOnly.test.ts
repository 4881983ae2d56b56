import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import ts from "typescript"

// One refresh engine: only `packages/core/src/RefreshEngine.ts` asks Strava to refresh a grant or writes a
// refreshed grant; every other path (the daemon's loop and helper, `token`, `refresh --local`, apps' TokenSource)
// goes through it. This test reads the sources of every package and fails when another module does it itself.
//
// The rule, by symbol (the TypeScript checker resolves each name to its declaration, so an alias, another
// variable name or `oauth["refresh"]` is caught as well as `oauth.refresh(`; a method that happens to be called
// `refresh` on something else, like the engine's own `engine.refresh`, is not):
// - `StravaOAuthShape.refresh` (the refresh request at Strava) is used in RefreshEngine.ts only.
// - `GrantStoreShape.put` (writing a grant to a store) is used in RefreshEngine.ts only; the stores that implement
//   it (GrantStore.ts's memory store, TokenFile.ts's file store) define it, they do not call it.
// - `TokenFile.write` (writing a token file) is used in TokenFile.ts (the file store's `put`) and in Login.ts,
//   which writes a NEW grant from a code exchange, never a refreshed one.

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../..")
const sourcesOf = (pkg: string) => {
  const dir = Path.join(root, "packages", pkg, "src")
  return Fs.readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
    .map((name) => Path.join(dir, name))
}

const relative = (file: string) => Path.relative(root, file)

interface Use {
  readonly file: string
  readonly line: number
  readonly text: string
}

/** Every use of each watched declaration in the packages' sources (the declaration itself excluded). */
const scan = () => {
  const files = ["core", "daemon", "testing"].flatMap(sourcesOf)
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ["node"],
    baseUrl: root,
    paths: {
      "@strava-auth/core": ["packages/core/src/index.ts"],
      "@strava-auth/testing": ["packages/testing/src/index.ts"]
    }
  })
  const checker = program.getTypeChecker()
  const member = (file: string, iface: string, name: string): ts.Node => {
    const source = program.getSourceFile(Path.join(root, file))!
    let found: ts.Node | undefined
    const visit = (node: ts.Node) => {
      if (ts.isInterfaceDeclaration(node) && node.name.text === iface) {
        found = node.members.find((m) => m.name !== undefined && ts.isIdentifier(m.name) && m.name.text === name)
      }
      if (found === undefined) ts.forEachChild(node, visit)
    }
    visit(source)
    assert.isDefined(found, `${iface}.${name} in ${file}`)
    return found!
  }
  const exported = (file: string, name: string): ts.Node => {
    const source = program.getSourceFile(Path.join(root, file))!
    const declaration = source.statements.filter(ts.isVariableStatement).flatMap((s) => s.declarationList.declarations)
      .find((d) => ts.isIdentifier(d.name) && d.name.text === name)
    assert.isDefined(declaration, `${name} in ${file}`)
    return declaration!
  }
  const watched = {
    "StravaOAuthShape.refresh": member("packages/core/src/StravaOAuth.ts", "StravaOAuthShape", "refresh"),
    "GrantStoreShape.put": member("packages/core/src/GrantStore.ts", "GrantStoreShape", "put"),
    "TokenFile.write": exported("packages/daemon/src/TokenFile.ts", "write")
  }
  const uses: Record<keyof typeof watched, Array<Use>> = {
    "StravaOAuthShape.refresh": [],
    "GrantStoreShape.put": [],
    "TokenFile.write": []
  }
  const resolve = (symbol: ts.Symbol | undefined) =>
    symbol !== undefined && (symbol.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(symbol) : symbol
  for (const file of files) {
    const source = program.getSourceFile(file)!
    const visit = (node: ts.Node) => {
      if (ts.isIdentifier(node) || ts.isStringLiteral(node)) {
        const declarations = resolve(checker.getSymbolAtLocation(node))?.declarations ?? []
        for (const [name, declaration] of Object.entries(watched) as Array<[keyof typeof watched, ts.Node]>) {
          const own = (declaration as ts.NamedDeclaration).name === node
          if (!own && declarations.includes(declaration as ts.Declaration)) {
            const { line } = source.getLineAndCharacterOfPosition(node.getStart())
            uses[name].push({ file: relative(file), line: line + 1, text: node.parent.getText().slice(0, 80) })
          }
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return uses
}

const where = (uses: ReadonlyArray<Use>) => uses.map((u) => `${u.file}:${u.line} ${u.text}`).join("\n")

describe("one refresh engine", () => {
  it("only RefreshEngine.ts refreshes at Strava or writes a refreshed grant (Login.ts writes new grants)", () => {
    const uses = scan()
    const allowed: Record<keyof typeof uses, ReadonlyArray<string>> = {
      "StravaOAuthShape.refresh": ["packages/core/src/RefreshEngine.ts"],
      "GrantStoreShape.put": ["packages/core/src/RefreshEngine.ts"],
      "TokenFile.write": ["packages/daemon/src/TokenFile.ts", "packages/daemon/src/Login.ts"]
    }
    const violations = (Object.entries(uses) as Array<[keyof typeof uses, Array<Use>]>).flatMap(([name, found]) => {
      const outside = found.filter((u) => !allowed[name].includes(u.file))
      return outside.length === 0 ? [] : [`${name} used outside ${allowed[name].join(", ")}:\n${where(outside)}`]
    })
    assert.deepStrictEqual(violations, [], violations.join("\n"))
    // The scan finds what is there (it is not passing because it resolves nothing): the engine's own calls.
    assert.isTrue(uses["StravaOAuthShape.refresh"].some((u) => u.file === "packages/core/src/RefreshEngine.ts"))
    assert.isTrue(uses["GrantStoreShape.put"].some((u) => u.file === "packages/core/src/RefreshEngine.ts"))
    assert.isTrue(uses["TokenFile.write"].some((u) => u.file === "packages/daemon/src/Login.ts"))
  }, 120_000)
})
