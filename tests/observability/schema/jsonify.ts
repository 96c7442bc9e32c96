/**
 * Dashboards are JSON, and JSON has no TypeScript enums: a string enum such as
 * `FieldColorModeId` is written as its value ("palette-classic"). `Jsonify<T>` turns every
 * string enum inside `T` into the union of its literal values (and leaves every other type,
 * numeric enums included, as it is), so that a dashboard's JSON can be checked against the
 * published `Dashboard` type with excess-property checks.
 */
export type Jsonify<T> = T extends string
  ? `${T}`
  : T extends ReadonlyArray<infer U>
    ? Array<Jsonify<U>>
    : T extends object
      ? { [K in keyof T]: Jsonify<T[K]> }
      : T;
