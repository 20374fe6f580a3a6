// The agent speaks placement's resource arithmetic (the ledger and brokers must agree on it).
export { NO_RESOURCES, type Resources } from '@meshvirt/placement'
