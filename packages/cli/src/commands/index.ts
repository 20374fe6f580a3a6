import type { Command } from '../command.js'
import { agent } from './agent.js'
import { clusterInit } from './cluster-init.js'
import { clusterStatus, hostLs } from './host-ls.js'

/** Every `meshvirt` subcommand, in the order `meshvirt --help` lists them. */
export const COMMANDS: Command[] = [agent, clusterInit, clusterStatus, hostLs]
