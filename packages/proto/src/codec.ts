import './long-off.js'
import * as generated from '../gen/meshvirt.js'

/** The generated message classes of the `meshvirt.v1` package. */
export const pb = generated.meshvirt.v1
export type { meshvirt } from '../gen/meshvirt.js'
