import type { Command } from '../command.js'
import { agent } from './agent.js'
import { clusterInit } from './cluster-init.js'
import { clusterBalance } from './cluster-balance.js'
import { clusterStatus, hostLs } from './host-ls.js'
import { vmCreate, vmDelete, vmLs, vmShow, vmStart, vmStop } from './vm.js'
import { vmConsole } from './vm-console.js'
import { vmResize } from './vm-resize.js'
import { events } from './events.js'
import { vmMigrate } from './vm-migrate.js'
import { vmFailover, vmReplicate } from './vm-replicas.js'
import { hostDrain, hostUndrain } from './host-drain.js'
import { netCreate, netDelete, netLs, netShow } from './net.js'
import { imageImport, imageLs, imageRm, imageShow } from './image.js'
import { groupCreate, groupDelete, groupLs, groupScale, groupShow } from './group.js'

/** Every `meshvirt` subcommand, in the order `meshvirt --help` lists them. */
export const COMMANDS: Command[] = [agent, clusterInit, clusterStatus, clusterBalance, hostLs, hostDrain, hostUndrain, vmCreate, vmLs, vmShow, vmStart, vmStop, vmDelete, vmMigrate, vmResize, vmReplicate, vmFailover, vmConsole, groupCreate, groupScale, groupLs, groupShow, groupDelete, netCreate, netLs, netShow, netDelete, imageImport, imageLs, imageShow, imageRm, events]
