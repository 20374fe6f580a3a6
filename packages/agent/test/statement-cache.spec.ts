import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { StatementCache } from '../src/store/statement-cache.js'

describe('StatementCache', () => {
  it('prepares each SQL text once and hands the same statement back', () => {
    const prepared: string[] = []
    const cache = new StatementCache((sql) => { prepared.push(sql); return { sql } })
    const a = cache.get('SELECT 1')
    expect(cache.get('SELECT 1')).toBe(a)
    expect(cache.get('SELECT 2')).not.toBe(a)
    expect(prepared).toEqual(['SELECT 1', 'SELECT 2'])
  })

  it.each([
    { max: 1, texts: 3, size: 1 },
    { max: 2, texts: 2, size: 2 },
    { max: 2, texts: 3, size: 1 },
    { max: 4, texts: 9, size: 1 }
  ])('never keeps more than its bound (max $max, $texts texts → $size kept)', ({ max, texts, size }) => {
    const cache = new StatementCache((sql) => ({ sql }), max)
    for (let i = 0; i < texts; i++) cache.get(`SELECT ${i}`)
    expect(cache.size).toBe(size)
    // The newest is always kept.
    expect(cache.get(`SELECT ${texts - 1}`).sql).toBe(`SELECT ${texts - 1}`)
  })

  it('a reused SQLite statement reads what is there now, also after the schema changed', () => {
    const db = new Database(':memory:')
    db.exec('CREATE TABLE t (a INTEGER)')
    const cache = new StatementCache((sql) => db.prepare(sql))
    cache.get('INSERT INTO t (a) VALUES (?)').run(1)
    expect(cache.get('SELECT * FROM t').all()).toEqual([{ a: 1 }])
    db.exec('ALTER TABLE t ADD COLUMN b TEXT DEFAULT \'x\'')
    cache.get('INSERT INTO t (a) VALUES (?)').run(2)
    expect(cache.get('SELECT a FROM t ORDER BY a').all()).toEqual([{ a: 1 }, { a: 2 }])
    expect(cache.get('SELECT COUNT(*) n FROM t WHERE b = ?').get('x')).toEqual({ n: 2 })
    db.close()
  })
})
