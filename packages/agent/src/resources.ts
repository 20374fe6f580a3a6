/** An amount of the three resources a host hands out (bytes for memory and disk). */
export interface Resources {
  vcpus: number
  memoryBytes: number
  diskBytes: number
}

export const NO_RESOURCES: Resources = Object.freeze({ vcpus: 0, memoryBytes: 0, diskBytes: 0 })
