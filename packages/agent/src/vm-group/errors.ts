/** A group request refused before anything was done: the message says what to change. */
export class GroupInputError extends Error {
  readonly code = 'GROUP_INPUT'
  constructor (message: string) {
    super(message)
    this.name = 'GroupInputError'
  }
}
