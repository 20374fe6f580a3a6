import { readFile, rename, writeFile } from 'node:fs/promises'

/** Writes through a temporary file and a rename (dnsmasq never reads half a file); false when unchanged. */
export async function writeIfChanged (file: string, text: string): Promise<boolean> {
  if (await readFile(file, 'utf8').catch(() => undefined) === text) return false
  await writeFile(`${file}.tmp`, text, { mode: 0o644 })
  await rename(`${file}.tmp`, file)
  return true
}
