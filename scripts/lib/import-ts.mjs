// Lets the generators import the project's TypeScript sources (the CEL rule table, the support
// table) directly: Node strips the types, and this hook maps the `.js` specifiers that NodeNext
// sources use to the `.ts` files beside them.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (specifier.startsWith('.') && specifier.endsWith('.js')) {
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      }
      throw error;
    }
  },
});

/** Imports a source file given relative to the repository root, e.g. `src/config/support.ts`. */
export function importSource(path) {
  return import(new URL(`../../${path}`, import.meta.url).href);
}
