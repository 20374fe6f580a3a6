/**
 * Prepared statements kept by their SQL text. Preparing is SQLite parsing and planning the
 * statement again: measured here it was 5–7 % of all CPU while 10 agents placed VMs (every
 * ledger decision, claim, commit and every gossip-driven read prepared its statements afresh).
 * A statement prepared once and reused gives the same rows: SQLite re-prepares it by itself
 * when the schema changes.
 */
export const MAX_CACHED_STATEMENTS = 256

export class StatementCache<S> {
  private readonly bySql = new Map<string, S>()

  /** `max` bounds the SQL texts kept (some are built per call: UPDATE … SET of the fields given). */
  constructor (private readonly prepare: (sql: string) => S, private readonly max = MAX_CACHED_STATEMENTS) {}

  get (sql: string): S {
    const cached = this.bySql.get(sql)
    if (cached !== undefined) return cached
    const statement = this.prepare(sql)
    // Shapes are few; past the bound something builds SQL with values in it: start over rather than grow.
    if (this.bySql.size >= this.max) this.bySql.clear()
    this.bySql.set(sql, statement)
    return statement
  }

  get size (): number {
    return this.bySql.size
  }
}
