// Entry points import this first: see @meshvirt/mesh/polyfill for why.
import '@meshvirt/mesh/polyfill'
